package provider

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/fleetform/terraform-provider-thingspace/internal/sim"
)

// A failure callback: the error carries ThingSpace's code, the device is unchanged, and no
// state is written (the next plan is a plain create, not the replacement of a tainted one).
func TestAccESIMProfile_failureCallback(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true, Faults: "fail=1"})
	config, dev, _ := oneProfile(t, env)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      config,
				ExpectError: regexp.MustCompile(`(?s)EID\s+` + dev.EID + `.*UnexpectedError.*nothing\s+is\s+stored\s+in\s+state`),
			},
			{
				PreConfig: func() {
					expectDeviceActions(t, env.Sim, map[string][]string{dev.EID: {"activate"}})
					if v := env.deviceByEID(t, dev.EID); v.State != "pre-active" {
						t.Errorf("device state = %s, want pre-active", v.State)
					}
				},
				Config:             config,
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("thingspace_esim_profile.p", plancheck.ResourceActionCreate)}},
			},
		},
		CheckDestroy: func(s *terraform.State) error {
			if n := len(s.RootModule().Resources); n != 0 {
				return fmt.Errorf("%d resources in state after the failed create", n)
			}
			return nil
		},
	})
}

// "warning" callbacks are progress: the create succeeds after them (verizon_us and global).
func TestAccESIMProfile_warningThenSuccess(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true, Faults: "warning=1"})
	p := newUSAndGlobalProfiles(t, env)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: p.createSteps(env,
			statecheck.ExpectKnownValue("thingspace_esim_profile.gl", tfjsonpath.New("profile_status"), knownvalue.StringExact("ENABLE")),
			func() error {
				if st := env.Sim.Stats().Callbacks; st.Messages < 6 {
					return fmt.Errorf("callback messages = %d: the warning callbacks were not sent", st.Messages)
				}
				return nil
			}),
	})
}

// The heart of the promise (design/decision-engine.md): a create that times out after ThingSpace accepted the activate
// fails naming the EID and the request id and leaves a tainted instance; the next apply (with
// a longer timeout) waits for that request, sends no deactivate for the tainted instance and
// adopts the device: zero extra carrier actions.
func TestAccESIMProfile_timeoutThenApply(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true, CallbackDelay: 4 * time.Second})
	us, gl := env.plansOfType("US"), env.plansOfType("Global")
	dev, gdev := env.device(t, 0), env.device(t, 1)
	addr := "thingspace_esim_profile.p"
	cfg := func(timeout string) string {
		to := fmt.Sprintf("timeouts = { create = %q }", timeout)
		// A global profile whose activate times out gets its download on the next apply.
		return testAccESIMProfileConfig_many(env, testAccESIMProfileConfig_basic(env, "p", dev.EID, us[0], to),
			testAccESIMProfileConfig_global(env, "g", gdev.EID, us[0], gl[0], to))
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      cfg("2s"),
				ExpectError: regexp.MustCompile(`(?s)EID\s+` + dev.EID + `:\s+activate\s+request\s+[0-9A-Za-z-]{6,}\s+is\s+pending.*tainted`),
			},
			{
				PreConfig: func() {
					expectActions(t, env.Sim, map[string]int{"activate": 1}) // both devices' activates, coalesced
				},
				Config: cfg("2m"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(addr, plancheck.ResourceActionDestroyBeforeCreate)}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("state"), knownvalue.StringExact("active")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("service_plan"), knownvalue.StringExact(us[0])),
				},
				Check: resource.ComposeTestCheckFunc(
					// The two activates were coalesced into one request; no deactivate.
					testAccCheckActions(env, map[string]int{"activate": 1, "download_enable": 1}),
					checkSim(func() error { return noActionWhileOpen(env) }),
					testAccCheckDeviceActions(env, map[string][]string{dev.EID: {"activate"}, gdev.EID: {"activate", "download_enable"}}),
				),
			},
			emptyPlanStep(cfg("2m")),
		},
	})
}

// A failure callback leaves no state for every row of the create table that sends an action:
// a reactivation of a deactive device and the serviceplan of an adopted device, too.
func TestAccESIMProfile_failureCallbackAdoptAndReactivate(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true, Faults: "fail=1"})
	us := env.plansOfType("US")
	deact, other := env.device(t, 0), env.device(t, 1)
	setState(t, env, deact.EID, sim.DevicePatch{State: ptr("active")})
	setState(t, env, deact.EID, sim.DevicePatch{State: ptr("deactive")})
	setState(t, env, other.EID, sim.DevicePatch{State: ptr("active"), ServicePlan: ptr(us[1])})
	config := testAccESIMProfileConfig_many(env, testAccESIMProfileConfig_basic(env, "deact", deact.EID, us[0]),
		testAccESIMProfileConfig_basic(env, "other", other.EID, us[0], "adopt_existing = true"))
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      config,
				ExpectError: regexp.MustCompile(`(?s)UnexpectedError.*nothing\s+is\s+stored\s+in\s+state`),
			},
			{
				PreConfig: func() {
					expectDeviceActions(t, env.Sim, map[string][]string{deact.EID: {"activate"}, other.EID: {"serviceplan"}})
				},
				Config:             config,
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("thingspace_esim_profile.deact", plancheck.ResourceActionCreate),
					plancheck.ExpectResourceAction("thingspace_esim_profile.other", plancheck.ResourceActionCreate)}},
			},
		},
	})
}

// ThingSpace applies the activate but answers 500 (outcome unknown). The engine never sends an
// action whose outcome is unknown again: it reads the device and the relay until the outcome
// shows (here the device turns active and, with a relay, the callback arrives) and then adopts
// it. One activate in all, with and without a relay, and the next plan is empty.
func TestAccESIMProfile_outcomeUnknownIsResolvedNotResent(t *testing.T) {
	t.Parallel() // waits on slow callbacks: overlaps with the other waiting tests
	for _, relay := range []bool{true, false} {
		t.Run(fmt.Sprintf("relay=%v", relay), func(t *testing.T) {
			t.Parallel()
			env := newTestEnv(t, envOptions{Relay: relay, Faults: "5xx-after=1"})
			config, dev, _ := oneProfile(t, env)
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
				Steps: []resource.TestStep{
					{
						Config: config,
						ConfigStateChecks: []statecheck.StateCheck{
							statecheck.ExpectKnownValue("thingspace_esim_profile.p", tfjsonpath.New("state"), knownvalue.StringExact("active")),
						},
						Check: resource.ComposeTestCheckFunc(
							checkSim(func() error {
								if n := env.Sim.Stats().FaultsFired["5xx-after"]; n != 1 {
									return fmt.Errorf("5xx-after fired %d times, want 1 (the premise of the test)", n)
								}
								return nil
							}),
							testAccCheckDeviceActions(env, map[string][]string{dev.EID: {"activate"}}),
						),
					},
					emptyPlanStep(config),
				},
			})
		})
	}
}

// A confirmed instance tainted by the user (terraform taint) is still replaced for real:
// deactivate, then activate. Only an unconfirmed create skips the deactivation.
func TestAccESIMProfile_userTaintReplaces(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true})
	config, dev, _ := oneProfile(t, env)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: config},
			{
				Config: config,
				Taint:  []string{"thingspace_esim_profile.p"},
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("thingspace_esim_profile.p", plancheck.ResourceActionDestroyBeforeCreate)}},
				Check: testAccCheckDeviceActions(env, map[string][]string{dev.EID: {"activate", "deactivate", "activate"}}),
			},
			emptyPlanStep(config),
		},
	})
}

// An update that times out after ThingSpace accepted the serviceplan: the next apply waits for
// it (or finds the plan already changed) and sends no second serviceplan.
func TestAccESIMProfile_updateTimeoutThenApply(t *testing.T) {
	t.Parallel() // waits on slow callbacks: overlaps with the other waiting tests
	env := newTestEnv(t, envOptions{Relay: true, CallbackDelay: 3 * time.Second})
	us := env.plansOfType("US")
	dev := env.device(t, 0)
	cfg := func(plan, timeout string) string {
		return env.providerBlock() + testAccESIMProfileConfig_basic(env, "p", dev.EID, plan, fmt.Sprintf("timeouts = { update = %q }", timeout))
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: cfg(us[0], "1s")},
			{
				Config:      cfg(us[1], "1s"),
				ExpectError: regexp.MustCompile(`(?s)EID\s+` + dev.EID + `:\s+serviceplan\s+request\s+[0-9A-Za-z-]{6,}\s+is\s+pending`),
			},
			{
				Config: cfg(us[1], "1m"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("thingspace_esim_profile.p", tfjsonpath.New("service_plan"), knownvalue.StringExact(us[1])),
				},
				Check: resource.ComposeTestCheckFunc(
					testAccCheckDeviceActions(env, map[string][]string{dev.EID: {"activate", "serviceplan"}}),
					checkSim(func() error { return noActionWhileOpen(env) }),
				),
			},
			emptyPlanStep(cfg(us[1], "1m")),
		},
	})
}

// A global profile whose download fails (the device is offline) after the activate succeeded:
// the instance is saved tainted; once the device is back, the next apply sends no deactivate
// and no second activate, only the download again.
func TestAccESIMProfile_globalDownloadFailsThenApply(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true, Faults: "offline=1"})
	us, gl := env.plansOfType("US"), env.plansOfType("Global")
	dev := env.device(t, 0)
	addr := "thingspace_esim_profile.g"
	config := env.providerBlock() + testAccESIMProfileConfig_global(env, "g", dev.EID, us[0], gl[0])
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      config,
				ExpectError: regexp.MustCompile(`(?s)EID\s+` + dev.EID + `.*NotReachable`),
			},
			{
				PreConfig: func() {
					if err := env.Sim.SetFaults(""); err != nil {
						t.Fatal(err)
					}
				},
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(addr, plancheck.ResourceActionDestroyBeforeCreate)}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("profile_status"), knownvalue.StringExact("ENABLE")),
				},
				Check: testAccCheckDeviceActions(env, map[string][]string{dev.EID: {"activate", "download_enable", "download_enable"}}),
			},
			emptyPlanStep(config),
		},
	})
}
