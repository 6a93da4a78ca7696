package provider

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/fleetform/terraform-provider-thingspace/internal/sim"
	"github.com/fleetform/terraform-provider-thingspace/internal/thingspace"
	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

func testAccServicePlanAssignmentConfig_basic(plan string, eids []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "resource \"thingspace_service_plan_assignment\" \"a\" {\n  service_plan = %q\n  devices = [\n", plan)
	for _, e := range eids {
		fmt.Fprintf(&b, "    { eid = %q },\n", e)
	}
	b.WriteString("  ]\n}\n")
	return b.String()
}

func TestAccServicePlanAssignment_basic(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true, Preactivated: 60, Devices: 62})
	us := env.plansOfType("US")
	var few, many []string
	for i := range 60 {
		many = append(many, env.device(t, i).EID)
	}
	few = many[:12]
	addr := "thingspace_service_plan_assignment.a"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				// A pre-active device cannot take a plan: an error naming it, and nothing sent.
				Config:      env.providerBlock() + testAccServicePlanAssignmentConfig_basic(us[1], append([]string{env.device(t, 61).EID}, few[:2]...)),
				ExpectError: regexp.MustCompile(`(?s)` + env.device(t, 61).EID + `.*pre-active.*Nothing was sent`),
			},
			{
				Config: env.providerBlock() + testAccServicePlanAssignmentConfig_basic(us[1], few),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("devices"), knownvalue.ListSizeExact(12)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("last_request_ids"), knownvalue.ListSizeExact(1)),
				},
				Check: resource.ComposeTestCheckFunc(
					testAccCheckActions(env, map[string]int{"serviceplan": 1}), // one bulk call
					checkSim(func() error {
						for _, e := range few {
							if d := env.deviceByEID(t, e); d.ServicePlan != us[1] {
								return fmt.Errorf("%s is on %s", e, d.ServicePlan)
							}
						}
						return nil
					}),
				),
			},
			emptyPlanStep(env.providerBlock() + testAccServicePlanAssignmentConfig_basic(us[1], few)),
			{
				// Import by account, plan and EIDs gives back the same state (the request ids
				// belong to the applies, not to the devices).
				ResourceName:            addr,
				ImportState:             true,
				ImportStateId:           env.Sim.Account() + "/" + us[1] + "/" + strings.Join(few, ","),
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"last_request_ids"},
			},
			{
				// The short form takes the provider's account.
				ResourceName:            addr,
				ImportState:             true,
				ImportStateId:           us[1] + "/" + strings.Join(few, ","),
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"last_request_ids"},
			},
			{
				// Drift: one device's plan changed outside Terraform shows as an update, and only
				// that device is sent again.
				PreConfig: func() {
					p := us[0]
					if err := env.Sim.UpdateDevice(few[3], sim.DevicePatch{ServicePlan: &p}); err != nil {
						t.Fatal(err)
					}
				},
				Config: env.providerBlock() + testAccServicePlanAssignmentConfig_basic(us[1], few),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)}},
				Check: checkSim(func() error {
					if n := devicesSent(env, "serviceplan"); n != 13 {
						return fmt.Errorf("devices sent with serviceplan = %d, want 12 + the drifted one", n)
					}
					return nil
				}),
			},
			{
				// Sixty devices are read with the paged list; the 12 already on the plan are not sent.
				Config: env.providerBlock() + testAccServicePlanAssignmentConfig_basic(us[1], many),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("devices"), knownvalue.ListSizeExact(60)),
				},
				Check: checkSim(func() error {
					if n := devicesSent(env, "serviceplan"); n != 13+48 {
						return fmt.Errorf("devices sent with serviceplan = %d, want 61", n)
					}
					return nil
				}),
			},
			emptyPlanStep(env.providerBlock() + testAccServicePlanAssignmentConfig_basic(us[1], many)),
		},
		CheckDestroy: func(*terraform.State) error {
			// Destroy sends nothing: the devices keep their plan.
			for _, e := range many {
				if d := env.deviceByEID(t, e); d.ServicePlan != us[1] || d.State != "active" {
					return fmt.Errorf("after destroy %s is %s on %s", e, d.State, d.ServicePlan)
				}
			}
			if n := env.actionCount("deactivate"); n != 0 {
				return fmt.Errorf("destroy sent %d deactivate requests", n)
			}
			return nil
		},
	})
}

func TestAccServicePlanAssignment_claimedAlsoByProfile(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true, Preactivated: 2})
	us := env.plansOfType("US")
	eid := env.device(t, 0).EID
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config:      env.providerBlock() + testAccServicePlanAssignmentConfig_basic(us[1], []string{eid}) + testAccESIMProfileConfig_basic(env, "p", eid, us[0]),
			ExpectError: regexp.MustCompile(`(?s)EID ` + eid + `.*thingspace_(esim_profile|service_plan_assignment).*thingspace_(esim_profile|service_plan_assignment)`),
		}},
	})
	expectActions(t, env.Sim, nil) // the configuration is rejected at plan time
}

// Devices often come from a variable or another resource, unknown until apply: validation and
// planning must wait for them instead of failing, and the apply sets them as usual.
func TestAccServicePlanAssignment_devicesKnownAfterApply(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true, Preactivated: 3})
	us := env.plansOfType("US")
	var b strings.Builder
	b.WriteString("resource \"terraform_data\" \"fleet\" {\n  input = [\n")
	for i := range 3 {
		fmt.Fprintf(&b, "    { eid = %q },\n", env.device(t, i).EID)
	}
	b.WriteString("  ]\n}\n")
	cfg := env.providerBlock() + b.String() + fmt.Sprintf(`
resource "thingspace_service_plan_assignment" "a" {
  service_plan = %q
  devices      = [for d in terraform_data.fleet.output : { eid = d.eid }]
}
`, us[1])
	addr := "thingspace_service_plan_assignment.a"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectUnknownValue(addr, tfjsonpath.New("devices")),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("devices"), knownvalue.ListSizeExact(3)),
				},
				Check: checkSim(func() error {
					for i := range 3 {
						if d := env.deviceByEID(t, env.device(t, i).EID); d.ServicePlan != us[1] {
							return fmt.Errorf("device %d is on %s, want %s", i, d.ServicePlan, us[1])
						}
					}
					return checkActions(env.Sim, map[string]int{"serviceplan": 1})
				}),
			},
			emptyPlanStep(cfg),
		},
	})
}

// Devices already on a plan are taken under an assignment with an import block: nothing is
// sent for them. A listed device on another plan is dropped by the import's read, so the
// plan shows it being set, and only that device is sent.
func TestAccServicePlanAssignment_importBlock(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true, Preactivated: 4})
	us := env.plansOfType("US")
	var eids []string
	for i := range 4 {
		eids = append(eids, env.device(t, i).EID)
	}
	onPlan := env.device(t, 0).ServicePlan
	other := us[0]
	if other == onPlan {
		other = us[1]
	}
	if err := env.Sim.UpdateDevice(eids[3], sim.DevicePatch{ServicePlan: &other}); err != nil {
		t.Fatal(err)
	}
	addr := "thingspace_service_plan_assignment.a"
	cfg := env.providerBlock() + testAccServicePlanAssignmentConfig_basic(onPlan, eids) + fmt.Sprintf(`
import {
  to = %s
  id = "%s/%s/%s"
}
`, addr, env.Sim.Account(), onPlan, strings.Join(eids, ","))
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue(addr, tfjsonpath.New("devices"), knownvalue.ListSizeExact(4)),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("devices"), knownvalue.ListSizeExact(4)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("id"), knownvalue.StringExact(env.Sim.Account()+"/"+onPlan)),
				},
				Check: resource.ComposeTestCheckFunc(
					testAccCheckDeviceActions(env, map[string][]string{eids[0]: nil, eids[1]: nil, eids[2]: nil, eids[3]: {"serviceplan"}}),
					checkSim(func() error {
						if d := env.deviceByEID(t, eids[3]); d.ServicePlan != onPlan {
							return fmt.Errorf("%s is on %s, want %s", eids[3], d.ServicePlan, onPlan)
						}
						return nil
					}),
				),
			},
			emptyPlanStep(cfg),
		},
	})
}

// A device whose line has a request in flight that the relay does not know (sent outside
// Terraform; its PENDING_ACTIVATION state is the only sign) is waited for, never sent to.
func TestAccServicePlanAssignment_waitsForPendingDevice(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true, Preactivated: 1, CallbackDelay: 3 * time.Second})
	us := env.plansOfType("US")
	active, fresh := env.device(t, 0), env.device(t, 1)
	target := us[1]
	if target == active.ServicePlan {
		target = us[0]
	}
	activatedOn := us[0]
	if activatedOn == target {
		activatedOn = us[1]
	}
	client := env.simClient(t)
	cfg := env.providerBlock() + testAccServicePlanAssignmentConfig_basic(target, []string{active.EID, fresh.EID})
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				PreConfig: func() {
					if _, err := client.Activate(context.Background(), tsapi.ActivateRequest{AccountName: env.Sim.Account(),
						ServicePlan: activatedOn, Devices: thingspace.Devices(tsapi.DeviceIDs{
							{Kind: tsapi.KindEID, ID: fresh.EID}, {Kind: tsapi.KindICCID, ID: fresh.ICCID},
							{Kind: tsapi.KindIMEI, ID: fresh.IMEI}})}); err != nil {
						t.Fatal(err)
					}
				},
				Config: cfg,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("thingspace_service_plan_assignment.a", tfjsonpath.New("devices"), knownvalue.ListSizeExact(2)),
				},
				Check: resource.ComposeTestCheckFunc(
					testAccCheckDeviceActions(env, map[string][]string{active.EID: {"serviceplan"}, fresh.EID: {"activate", "serviceplan"}}),
					checkSim(func() error {
						if d := env.deviceByEID(t, fresh.EID); d.ServicePlan != target {
							return fmt.Errorf("%s is on %s, want %s", fresh.EID, d.ServicePlan, target)
						}
						return noActionWhileOpen(env)
					}),
				),
			},
			emptyPlanStep(cfg),
		},
	})
}

// Bad configuration fails at plan time with messages that say what to fix, and nothing is sent.
func TestAccServicePlanAssignment_planTimeErrors(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true, Preactivated: 2})
	us := env.plansOfType("US")
	a, b := env.device(t, 0).EID, env.device(t, 1).EID
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:   env.providerBlock() + testAccServicePlanAssignmentConfig_basic("NOSUCHPLAN", []string{a}),
				PlanOnly: true,
				ExpectError: regexp.MustCompile(fmt.Sprintf(`(?s)Unknown service plan.*"NOSUCHPLAN".*%s.*Valid\s+plans:.*%s`,
					env.Sim.Account(), regexp.QuoteMeta(us[0]))),
			},
			{
				Config:      env.providerBlock() + testAccServicePlanAssignmentConfig_basic(us[1], []string{a, b, a}),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Device listed twice.*EID ` + a + `.*positions 1 and 3`),
			},
			{
				Config:      env.providerBlock() + testAccServicePlanAssignmentConfig_basic(us[1], []string{a, "8904903200000000"}),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid EID.*8904903200000000.*32`),
			},
			{
				Config:      env.providerBlock() + testAccServicePlanAssignmentConfig_basic(us[1], nil),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)devices.*at least 1`),
			},
			{
				// Neither the resource nor the provider names an account.
				Config: regexp.MustCompile(`(?m)^\s*account_name\s*=.*\n`).ReplaceAllString(env.providerBlock(), "") +
					testAccServicePlanAssignmentConfig_basic(us[1], []string{a}),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)No ThingSpace account.*account_name`),
			},
			{
				Config:      env.providerBlock() + testAccServicePlanAssignmentConfig_basic("x", []string{a}),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid service plan code.*"x"`),
			},
		},
	})
	expectActions(t, env.Sim, nil) // the configurations are rejected at plan time
}

func TestServicePlanAssignment_parseImportID(t *testing.T) {
	const (
		eid1 = "89049032995470350104029245073231"
		acct = "0000123456-00001"
	)
	account, plan, eids, err := parseAssignmentImportID(acct+"/M2M10GB/"+eid1, "")
	if err != nil || account != acct || plan != "M2M10GB" || len(eids) != 1 || eids[0] != eid1 {
		t.Fatalf("full form: %q %q %v %v", account, plan, eids, err)
	}
	account, _, _, err = parseAssignmentImportID("M2M10GB/"+eid1, "0000999999-00002")
	if err != nil || account != "0000999999-00002" {
		t.Fatalf("short form: account %q, %v", account, err)
	}
	// Verizon plan codes may be all digits, like an account name: one EID after one is still
	// the short form, not the resource's own id.
	account, plan, eids, err = parseAssignmentImportID("84777/"+eid1, "0000999999-00002")
	if err != nil || account != "0000999999-00002" || plan != "84777" || len(eids) != 1 || eids[0] != eid1 {
		t.Fatalf("short form with a numeric plan code: %q %q %v %v", account, plan, eids, err)
	}
	for id, want := range map[string]string{
		acct + "/M2M10GB":                      "names no devices",
		"M2M10GB/" + eid1:                      "no `account_name`",
		acct + "/M2M10GB/" + eid1 + "," + eid1: "twice",
		acct + "/M2M10GB/123":                  "has 3 digits",
		acct + "/x/" + eid1:                    `"x" is not a plan code`,
		"a/b/c/d":                              "expected",
		"bad account/M2M10GB/" + eid1:          "account name",
	} {
		_, _, _, err := parseAssignmentImportID(id, "")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one containing %q", id, err, want)
		}
	}
}

// Failure callbacks: the apply fails with ThingSpace's reason, the failed devices stay out of
// the state, and the next apply sends them again, once.
func TestAccServicePlanAssignment_failureCallbacks(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true, Preactivated: 3})
	us := env.plansOfType("US")
	target := us[1]
	if target == env.device(t, 0).ServicePlan {
		target = us[0]
	}
	eids := []string{env.device(t, 0).EID, env.device(t, 1).EID, env.device(t, 2).EID}
	cfg := env.providerBlock() + testAccServicePlanAssignmentConfig_basic(target, eids)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				PreConfig: func() {
					if err := env.Sim.SetFaults("fail=1"); err != nil {
						t.Fatal(err)
					}
				},
				Config:      cfg,
				ExpectError: regexp.MustCompile(`(?s)did not take the plan.*0 of the listed devices.*EID\s+` + eids[0] + `.*REQUEST_FAILED\.UnexpectedError`),
			},
			{
				PreConfig: func() {
					if err := env.Sim.SetFaults(""); err != nil {
						t.Fatal(err)
					}
				},
				Config: cfg,
				// The failed create left no state (no device was on the plan): a plain create,
				// not the replacement of a tainted, empty instance.
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("thingspace_service_plan_assignment.a", plancheck.ResourceActionCreate)}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("thingspace_service_plan_assignment.a", tfjsonpath.New("devices"), knownvalue.ListSizeExact(3)),
				},
				Check: checkSim(func() error {
					// The 3 that failed, then the same 3 again, once.
					twice := []string{"serviceplan", "serviceplan"}
					if err := checkDeviceActions(env.Sim, map[string][]string{eids[0]: twice, eids[1]: twice, eids[2]: twice}); err != nil {
						return err
					}
					for _, e := range eids {
						if d := env.deviceByEID(t, e); d.ServicePlan != target {
							return fmt.Errorf("%s is on %s, want %s", e, d.ServicePlan, target)
						}
					}
					return noActionWhileOpen(env)
				}),
			},
			emptyPlanStep(cfg),
		},
	})
}

// A timeout names the pending devices and request; the next apply waits for that request
// instead of sending the plan change again.
func TestAccServicePlanAssignment_timeoutThenApply(t *testing.T) {
	t.Parallel() // waits on slow callbacks: overlaps with the other waiting tests
	env := newTestEnv(t, envOptions{Relay: true, Preactivated: 2, CallbackDelay: 8 * time.Second})
	us := env.plansOfType("US")
	target := us[1]
	if target == env.device(t, 0).ServicePlan {
		target = us[0]
	}
	eids := []string{env.device(t, 0).EID, env.device(t, 1).EID}
	withTimeout := func(d string) string {
		return strings.Replace(testAccServicePlanAssignmentConfig_basic(target, eids), "  devices = [", fmt.Sprintf("  timeouts = { create = %q }\n  devices = [", d), 1)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      env.providerBlock() + withTimeout("1s"),
				ExpectError: regexp.MustCompile(`(?s)no\s+final\s+result\s+from\s+ThingSpace\s+when\s+the\s+timeout\s+ran\s+out.*EID ` + eids[0] + `: serviceplan request \S+ is pending`),
			},
			{
				Config: env.providerBlock() + withTimeout("5m"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("thingspace_service_plan_assignment.a", plancheck.ResourceActionCreate)}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("thingspace_service_plan_assignment.a", tfjsonpath.New("devices"), knownvalue.ListSizeExact(2)),
				},
				Check: resource.ComposeTestCheckFunc(
					testAccCheckActions(env, map[string]int{"serviceplan": 1}), // the 1 sent before the timeout
					checkSim(func() error { return noActionWhileOpen(env) }),
				),
			},
			emptyPlanStep(env.providerBlock() + withTimeout("5m")),
		},
	})
}
