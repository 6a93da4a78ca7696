package provider

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/fleetform/terraform-provider-thingspace/internal/relayapi"
	"github.com/fleetform/terraform-provider-thingspace/internal/sim"
	"github.com/fleetform/terraform-provider-thingspace/internal/thingspace"
	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// The rows of the table "What Create sends" of docs/resources/esim_profile.md: the device's state
// when Create runs decides what is sent.

// pre-active → activate; active on the same plan → adopt with no request; suspended → adopt
// then resume (or adopt with no request when suspended = true); deactive → activate again
// (reactivation).
func TestAccESIMProfile_createStates(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true})
	us := env.plansOfType("US")
	pre, same, susp, deact, keep := env.device(t, 0), env.device(t, 1), env.device(t, 2), env.device(t, 3), env.device(t, 4)
	setState(t, env, same.EID, sim.DevicePatch{State: ptr("active"), ServicePlan: ptr(us[0])})
	setState(t, env, susp.EID, sim.DevicePatch{State: ptr("suspended"), ServicePlan: ptr(us[0])})
	setState(t, env, keep.EID, sim.DevicePatch{State: ptr("suspended"), ServicePlan: ptr(us[0])})
	setState(t, env, deact.EID, sim.DevicePatch{State: ptr("active"), ServicePlan: ptr(us[0])})
	setState(t, env, deact.EID, sim.DevicePatch{State: ptr("deactive")})
	if v := env.deviceByEID(t, deact.EID); v.State != "deactive" {
		t.Fatalf("setup: %+v", v)
	}
	config := testAccESIMProfileConfig_many(env,
		testAccESIMProfileConfig_basic(env, "pre", pre.EID, us[0]), testAccESIMProfileConfig_basic(env, "same", same.EID, us[0]),
		testAccESIMProfileConfig_basic(env, "susp", susp.EID, us[0]), testAccESIMProfileConfig_basic(env, "deact", deact.EID, us[0]),
		testAccESIMProfileConfig_basic(env, "keep", keep.EID, us[0], "suspended = true"))
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("thingspace_esim_profile.same", tfjsonpath.New("state"), knownvalue.StringExact("active")),
					statecheck.ExpectKnownValue("thingspace_esim_profile.same", tfjsonpath.New("mdn"), knownvalue.StringRegexp(regexp.MustCompile(`^\d{10}$`))),
					statecheck.ExpectKnownValue("thingspace_esim_profile.susp", tfjsonpath.New("state"), knownvalue.StringExact("active")),
					statecheck.ExpectKnownValue("thingspace_esim_profile.deact", tfjsonpath.New("state"), knownvalue.StringExact("active")),
					statecheck.ExpectKnownValue("thingspace_esim_profile.keep", tfjsonpath.New("state"), knownvalue.StringExact("suspended")),
				},
				Check: resource.ComposeTestCheckFunc(
					testAccCheckDeviceActions(env, map[string][]string{
						pre.EID: {"activate"}, same.EID: nil, susp.EID: {"device_resume"}, deact.EID: {"activate"}, keep.EID: nil}),
					checkSim(func() error {
						for _, a := range env.Sim.Stats().Actions {
							for _, d := range a.Devices {
								if d.EID == deact.EID && d.StateBefore != "deactive" {
									return fmt.Errorf("reactivation saw state %q", d.StateBefore)
								}
							}
						}
						return noActionWhileOpen(env)
					}),
				),
			},
			emptyPlanStep(config),
		},
	})
}

// active on another plan → an error with an import block and nothing sent; adopt_existing =
// true → serviceplan only. A device not in the account → an error naming EID and account.
func TestAccESIMProfile_createActiveOtherPlan(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true})
	us := env.plansOfType("US")
	dev := env.device(t, 0)
	missing := otherEID(t, env)
	setState(t, env, dev.EID, sim.DevicePatch{State: ptr("active"), ServicePlan: ptr(us[1])})
	addr := "thingspace_esim_profile.p"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      env.providerBlock() + testAccESIMProfileConfig_basic(env, "p", dev.EID, us[0]),
				ExpectError: regexp.MustCompile(`(?s)already\s+active.*import \{\s+to = thingspace_esim_profile\.<name>\s+id = "` + dev.EID + `"`),
			},
			{
				Config:      env.providerBlock() + testAccESIMProfileConfig_basic(env, "m", missing, us[0]),
				ExpectError: regexp.MustCompile(`(?s)EID\s+` + missing + `.*account.*` + regexp.QuoteMeta(env.Sim.Account())),
			},
			{
				PreConfig: func() {
					expectActions(t, env.Sim, nil) // nothing for the failed creates
				},
				Config: env.providerBlock() + testAccESIMProfileConfig_basic(env, "p", dev.EID, us[0], "adopt_existing = true"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("service_plan"), knownvalue.StringExact(us[0])),
				},
				Check: testAccCheckDeviceActions(env, map[string][]string{dev.EID: {"serviceplan"}, missing: nil}),
			},
			emptyPlanStep(env.providerBlock() + testAccESIMProfileConfig_basic(env, "p", dev.EID, us[0], "adopt_existing = true")),
		},
	})
}

// A request in flight for the device is waited on, never repeated: one known to the relay's
// device index (registered as the provider would), and one the relay does not know (the
// device's PENDING_ACTIVATION state is the only sign).
func TestAccESIMProfile_createWaitsForOpenRequest(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true, CallbackDelay: 5 * time.Second})
	us := env.plansOfType("US")
	known, pending := env.device(t, 0), env.device(t, 1)
	client := env.simClient(t)
	relayClient := relayapi.NewClient(env.RelayAPIURL, testRelayToken, nil)

	startActivate := func(d sim.DeviceView, register bool) {
		ctx := context.Background()
		res, err := client.Activate(ctx, tsapi.ActivateRequest{AccountName: env.Sim.Account(), ServicePlan: us[0],
			Devices: thingspace.Devices(activateIDs(d))})
		if err != nil {
			t.Fatal(err)
		}
		if register {
			if err := relayClient.Register(ctx, res.Requests[0].RequestID, env.Sim.Account(), tsapi.ActionActivate,
				[]tsapi.DeviceIDs{activateIDs(d)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	config := testAccESIMProfileConfig_many(env, testAccESIMProfileConfig_basic(env, "known", known.EID, us[0]), testAccESIMProfileConfig_basic(env, "pending", pending.EID, us[0]))
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				PreConfig: func() {
					startActivate(known, true)
					startActivate(pending, false)
				},
				Config: config,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("thingspace_esim_profile.known", tfjsonpath.New("state"), knownvalue.StringExact("active")),
					statecheck.ExpectKnownValue("thingspace_esim_profile.pending", tfjsonpath.New("state"), knownvalue.StringExact("active")),
				},
				Check: resource.ComposeTestCheckFunc(
					testAccCheckDeviceActions(env, map[string][]string{known.EID: {"activate"}, pending.EID: {"activate"}}),
					testAccCheckActions(env, map[string]int{"activate": 2}), // the 2 sent before the apply
					checkSim(func() error { return noActionWhileOpen(env) }),
				),
			},
			emptyPlanStep(config),
		},
	})
}

// An active device adopted as a global or local profile still gets its profile downloaded:
// "active, same plan" adopts the line, but the Global or local profile the configuration asks
// for is not there yet, and state must not claim it is.
func TestAccESIMProfile_createActiveAdoptsLineAndDownloads(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true, Preactivated: 2})
	gl := env.plansOfType("Global")
	g, l := env.device(t, 0), env.device(t, 1)
	const oid = "1.3.6.1.4.1.31746.1.500.200.101.5"
	config := testAccESIMProfileConfig_many(env,
		testAccESIMProfileConfig_global(env, "g", g.EID, g.ServicePlan, gl[0]),
		testAccESIMProfileConfig_basic(env, "l", l.EID, l.ServicePlan, `profile_type = "local"`, fmt.Sprintf("smsr_oid = %q", oid)))
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config,
				Check: resource.ComposeTestCheckFunc(
					testAccCheckDeviceActions(env, map[string][]string{g.EID: {"download_enable"}, l.EID: {"download_enable"}}),
					checkSim(func() error {
						if p := env.deviceByEID(t, g.EID).Profiles[1]; p.Status != "ENABLE" || p.ServicePlan != gl[0] {
							return fmt.Errorf("Global profile = %+v", p)
						}
						if p := env.deviceByEID(t, l.EID).Profiles[2]; p.Status != "ENABLE" || p.SmsrOid != oid {
							return fmt.Errorf("local profile = %+v", p)
						}
						return nil
					}),
				),
			},
			emptyPlanStep(config),
		},
	})
}
