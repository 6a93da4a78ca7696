package provider

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
	acc "github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

const (
	listenerAddr = "thingspace_callback_listener.relay"
	relayURL     = "https://relay.example.com/callbacks/v1/thingspace/path-token-1"
	foreignURL   = "https://other.example.net:8443/callbacks/secret-path-token"
)

func TestAccCallbackListener_basic(t *testing.T) {
	e := newListenerEnv(t)
	account := e.Sim.Account()
	at := func(k string) tfjsonpath.Path { return tfjsonpath.New(k) }
	withPassword := func(p string) string {
		return testAccCallbackListenerConfig_basic(e, fmt.Sprintf("  username = \"relay\"\n  password = %q", p))
	}
	acc.Test(t, acc.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			if r := e.registration(t); r != nil {
				return fmt.Errorf("registration of %s still there after destroy", urlOrigin(r.URL))
			}
			return nil
		},
		Steps: []acc.TestStep{
			{
				Config: withPassword("first-secret"),
				ConfigPlanChecks: acc.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(listenerAddr, plancheck.ResourceActionCreate)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(listenerAddr, at("id"), knownvalue.StringExact(account+"/DeviceProfileService")),
					statecheck.ExpectKnownValue(listenerAddr, at("account_name"), knownvalue.StringExact(account)),
					statecheck.ExpectKnownValue(listenerAddr, at("service_name"), knownvalue.StringExact("DeviceProfileService")),
					statecheck.ExpectKnownValue(listenerAddr, at("overwrite_existing"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue(listenerAddr, at("password_sha256"), knownvalue.StringExact(sha256Hex("first-secret"))),
				},
				Check: e.expectRegistration(t, relayURL, "relay", "first-secret"),
			},
			// Drift check: the same configuration plans nothing.
			emptyPlanStep(withPassword("first-secret")),
			{
				Config: withPassword("second-secret"),
				ConfigPlanChecks: acc.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(listenerAddr, plancheck.ResourceActionUpdate)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(listenerAddr, at("password_sha256"), knownvalue.StringExact(sha256Hex("second-secret"))),
				},
				Check: e.expectRegistration(t, relayURL, "relay", "second-secret"),
			},
			{
				// The password changed outside Terraform: the refreshed hash differs, the plan updates.
				PreConfig: func() { e.register(t, relayURL, "relay", "changed-outside") },
				Config:    withPassword("second-secret"),
				ConfigPlanChecks: acc.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(listenerAddr, plancheck.ResourceActionUpdate)},
				},
				Check: e.expectRegistration(t, relayURL, "relay", "second-secret"),
			},
			{
				// A new provider default account does not move an existing listener.
				Config:   strings.Replace(withPassword("second-secret"), fmt.Sprintf("%q", account), `"0000999999-00001"`, 1),
				PlanOnly: true,
			},
			{
				// Deleted outside Terraform: forgotten on refresh, the plan creates it again.
				PreConfig: func() { e.unregister(t) },
				Config:    withPassword("second-secret"),
				ConfigPlanChecks: acc.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(listenerAddr, plancheck.ResourceActionCreate)},
				},
				Check: e.expectRegistration(t, relayURL, "relay", "second-secret"),
			},
			{
				// A new URL (a rotated path token) is registered in place.
				Config: strings.Replace(withPassword("second-secret"), relayURL, relayURL+"-rotated", 1),
				ConfigPlanChecks: acc.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(listenerAddr, plancheck.ResourceActionUpdate)},
				},
				Check: e.expectRegistration(t, relayURL+"-rotated", "relay", "second-secret"),
			},
			{
				ResourceName:            listenerAddr,
				ImportState:             true,
				ImportStateId:           account + "/DeviceProfileService",
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"password", "password_wo", "password_wo_version"},
			},
			{
				// The short form takes the provider's account.
				ResourceName:            listenerAddr,
				ImportState:             true,
				ImportStateId:           "DeviceProfileService",
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"password", "password_wo", "password_wo_version"},
			},
		},
	})
}

func TestAccCallbackListener_foreignRegistration(t *testing.T) {
	e := newListenerEnv(t)
	e.register(t, foreignURL, "them", "their-secret")
	plain := testAccCallbackListenerConfig_basic(e, `  password = "ours"`)
	acc.Test(t, acc.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []acc.TestStep{
			{
				// Another URL holds the registration: refused, naming the service and only the
				// other URL's scheme and host, and saying how to proceed.
				Config: plain,
				ExpectError: regexp.MustCompile(`(?s)different\s+URL.*DeviceProfileService.*https://other\.example\.net:8443\s+\(path` +
					`.*overwrite_existing\s+=\s+true.*terraform\s+import`),
			},
			{
				Config: testAccCallbackListenerConfig_basic(e, "  password = \"ours\"\n  overwrite_existing = true"),
				Check:  e.expectRegistration(t, relayURL, "", "ours"),
			},
			emptyPlanStep(testAccCallbackListenerConfig_basic(e, "  password = \"ours\"\n  overwrite_existing = true")),
			{
				// Taken over again by someone else: refresh lets go of it (the next plan would
				// create it), and removing it from the configuration deletes nothing.
				PreConfig: func() { e.register(t, foreignURL, "them", "their-secret") },
				Config:    e.providerBlock(),
				Check:     e.expectRegistration(t, foreignURL, "them", "their-secret"),
			},
		},
	})
	if strings.Contains(foreignRegistrationDetail("a", "s", foreignURL), "secret-path-token") {
		t.Fatal("the error shows the other URL's path")
	}
}

func TestAccCallbackListener_writeOnlyPassword(t *testing.T) {
	skipUnlessCLI(t, featureWriteOnly)
	e := newListenerEnv(t)
	at := func(k string) tfjsonpath.Path { return tfjsonpath.New(k) }
	wo := func(p string, version int) string {
		return testAccCallbackListenerConfig_basic(e, fmt.Sprintf("  password_wo = %q\n  password_wo_version = %d", p, version))
	}
	acc.Test(t, acc.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []acc.TestStep{
			{
				Config:      testAccCallbackListenerConfig_basic(e, "  password = \"a\"\n  password_wo = \"b\""),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid Attribute Combination.*password`),
			},
			{
				Config: wo("wo-first", 1),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(listenerAddr, at("password_wo"), knownvalue.Null()),
					statecheck.ExpectKnownValue(listenerAddr, at("password"), knownvalue.Null()),
					statecheck.ExpectKnownValue(listenerAddr, at("password_sha256"), knownvalue.StringExact(sha256Hex("wo-first"))),
				},
				Check: e.expectRegistration(t, relayURL, "", "wo-first"),
			},
			emptyPlanStep(wo("wo-first", 1)),
			{
				Config: wo("wo-second", 2),
				ConfigPlanChecks: acc.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(listenerAddr, plancheck.ResourceActionUpdate)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(listenerAddr, at("password_wo"), knownvalue.Null()),
					statecheck.ExpectKnownValue(listenerAddr, at("password_sha256"), knownvalue.StringExact(sha256Hex("wo-second"))),
				},
				Check: e.expectRegistration(t, relayURL, "", "wo-second"),
			},
			{
				// Changed outside Terraform: the write-only password converges too.
				PreConfig: func() { e.register(t, relayURL, "", "changed-outside") },
				Config:    wo("wo-second", 2),
				ConfigPlanChecks: acc.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(listenerAddr, plancheck.ResourceActionUpdate)},
				},
				Check: e.expectRegistration(t, relayURL, "", "wo-second"),
			},
		},
	})
}

// TestCallbackListener_deleteLeavesForeignRegistration calls Delete directly: through
// Terraform, the refresh before a destroy already lets go of a registration taken over, so
// only a take-over between refresh and delete reaches this compare-and-delete.
func TestCallbackListener_deleteLeavesForeignRegistration(t *testing.T) {
	e := newListenerEnv(t)
	e.register(t, foreignURL, "them", "their-secret")
	r := &callbackListenerResource{cfg: &Config{Client: e.client, AccountName: e.Sim.Account(), Registration: &registrationGuard{checked: map[string]bool{}}}}
	ctx := context.Background()
	var sr resource.SchemaResponse
	r.Schema(ctx, resource.SchemaRequest{}, &sr)
	state := tfsdk.State{Schema: sr.Schema, Raw: tftypes.NewValue(sr.Schema.Type().TerraformType(ctx), nil)}
	diags := state.Set(ctx, &callbackListenerModel{
		ID: types.StringValue(e.Sim.Account() + "/DeviceProfileService"), AccountName: types.StringValue(e.Sim.Account()),
		ServiceName: types.StringValue("DeviceProfileService"), URL: types.StringValue(relayURL),
		Username: types.StringNull(), Password: types.StringValue("ours"), PasswordWO: types.StringNull(),
		PasswordWOVersion: types.Int64Null(), OverwriteExisting: types.BoolValue(false), PasswordSHA256: types.StringValue(sha256Hex("ours")),
	})
	if diags.HasError() {
		t.Fatal(diags)
	}
	resp := resource.DeleteResponse{State: state}
	r.Delete(ctx, resource.DeleteRequest{State: state}, &resp)
	if resp.Diagnostics.HasError() {
		t.Fatal(resp.Diagnostics)
	}
	if !hasWarning(resp.Diagnostics, "left in place") {
		t.Fatalf("want a warning that the registration was left in place, got %v", resp.Diagnostics)
	}
	for _, d := range resp.Diagnostics {
		if strings.Contains(d.Detail(), "secret-path-token") {
			t.Fatalf("a diagnostic shows the other URL's path: %s", d.Detail())
		}
	}
	if reg := e.registration(t); reg == nil || reg.URL != foreignURL {
		t.Fatalf("the foreign registration was not left in place: %+v", reg)
	}

	// Pointing at our URL again, it is deleted.
	e.register(t, relayURL, "", "ours")
	resp = resource.DeleteResponse{State: state}
	r.Delete(ctx, resource.DeleteRequest{State: state}, &resp)
	if resp.Diagnostics.HasError() || len(resp.Diagnostics) != 0 {
		t.Fatal(resp.Diagnostics)
	}
	if reg := e.registration(t); reg != nil {
		t.Fatalf("our registration was not deleted: %s", urlOrigin(reg.URL))
	}
}

func TestCallbackListener_urlValidation(t *testing.T) {
	cases := []struct {
		url            string
		error, warning bool
	}{
		{"https://relay.example.com/callbacks/v1/thingspace/tok", false, false},
		{"http://203.0.113.7:9001/callbacks/v1/thingspace/tok", false, false},
		{"https://relay.example.com:28210/x", false, false},
		{"https://relay.example.com:8443/callbacks/v1/thingspace/tok", false, true},
		{"ftp://relay.example.com/tok", true, false},
		{"https:///tok", true, false},
		{"https://relay.example.com/tok?token=1", true, false},
		{"https://user:pw@relay.example.com/tok", true, false},
		{"relay.example.com/tok", true, false},
	}
	for _, tc := range cases {
		var resp validator.StringResponse
		req := validator.StringRequest{Path: path.Root("url"), ConfigValue: types.StringValue(tc.url)}
		callbackURLValidator{}.ValidateString(context.Background(), req, &resp)
		if got := resp.Diagnostics.HasError(); got != tc.error {
			t.Errorf("%s: error = %v, want %v (%v)", tc.url, got, tc.error, resp.Diagnostics)
		}
		if got := resp.Diagnostics.WarningsCount() > 0; got != tc.warning {
			t.Errorf("%s: warning = %v, want %v (%v)", tc.url, got, tc.warning, resp.Diagnostics)
		}
		for _, d := range resp.Diagnostics {
			if strings.Contains(d.Detail(), "tok") {
				t.Errorf("%s: the diagnostic quotes the URL: %s", tc.url, d.Detail())
			}
		}
	}
}

func TestCallbackListener_sameURLAndOrigin(t *testing.T) {
	if !sameURL("HTTPS://Relay.Example.com/p/Tok", "https://relay.example.com/p/Tok") {
		t.Error("scheme and host case should not matter")
	}
	if sameURL("https://relay.example.com/p/Tok", "https://relay.example.com/p/tok") {
		t.Error("the path is compared exactly")
	}
	if got := urlOrigin(foreignURL); got != "https://other.example.net:8443" {
		t.Errorf("urlOrigin = %q", got)
	}
	if got := urlOrigin("https://u:p@h.example/x"); got != "https://h.example" {
		t.Errorf("urlOrigin with user info = %q", got)
	}
}
