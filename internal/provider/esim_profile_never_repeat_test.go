package provider

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/fleetform/terraform-provider-thingspace/internal/sim"
)

// The behaviours behind "never repeat, never reverse": each test is named after what a user
// relies on, and each failed before the decision engine decided from observed truth. (The
// coalescer's and the client's share are in internal/thingspace; the engine's own table is in
// internal/reconcile; the randomized proof is TestChaos.)

// A device suspended on another plan is not adopted silently: like an active one, it is an
// error with an import block and nothing is sent; with adopt_existing it is adopted, resumed
// and moved to the configured plan, never deactivated and activated again.
func TestAccESIMProfile_suspendedOnAnotherPlanIsNotAdopted(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true})
	us := env.plansOfType("US")
	dev := env.device(t, 0)
	setState(t, env, dev.EID, sim.DevicePatch{State: ptr("active"), ServicePlan: ptr(us[1])})
	setState(t, env, dev.EID, sim.DevicePatch{State: ptr("suspended")})
	addr := "thingspace_esim_profile.p"
	adopt := env.providerBlock() + testAccESIMProfileConfig_basic(env, "p", dev.EID, us[0], "adopt_existing = true")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      env.providerBlock() + testAccESIMProfileConfig_basic(env, "p", dev.EID, us[0], "suspended = true"),
				ExpectError: regexp.MustCompile(`(?s)already\s+suspended.*` + regexp.QuoteMeta(us[1]) + `.*import \{`),
			},
			{
				PreConfig: func() {
					expectActions(t, env.Sim, nil) // for the refused create
				},
				Config: adopt,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("service_plan"), knownvalue.StringExact(us[0])),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("state"), knownvalue.StringExact("active")),
				},
				Check: checkSim(func() error {
					got := env.acceptedFor(dev.EID)
					if slices.Contains(got, "deactivate") || slices.Contains(got, "activate") {
						return fmt.Errorf("actions for the suspended device: %v; it must never be deactivated or activated again", got)
					}
					if d := env.deviceByEID(t, dev.EID); d.ServicePlan != us[0] {
						return fmt.Errorf("the device is on %s, want %s", d.ServicePlan, us[0])
					}
					return noActionWhileOpen(env)
				}),
			},
			emptyPlanStep(adopt),
		},
	})
}

// An update that timed out after ThingSpace accepted download_enable leaves the prior settings
// in state; the next apply waits for that request (found at the relay, or in the instance's
// journal without one) and sends no second download_enable.
func TestAccESIMProfile_timedOutDownloadIsNotSentAgain(t *testing.T) {
	t.Parallel() // waits on slow callbacks: overlaps with the other waiting tests
	for _, relay := range []bool{true, false} {
		t.Run(fmt.Sprintf("relay=%v", relay), func(t *testing.T) {
			t.Parallel()
			// Callbacks take 8 s, the update's time-out is 3 s: the update always times out
			// after its POST and before the outcome (the premise is checked below).
			env := newTestEnv(t, envOptions{Relay: relay, CallbackDelay: 8 * time.Second})
			us, gl := env.plansOfType("US"), env.plansOfType("Global")
			dev := env.device(t, 0)
			cfg := func(download bool, extra ...string) string {
				return env.providerBlock() + testAccESIMProfileConfig_global(env, "g", dev.EID, us[0], gl[0],
					append([]string{fmt.Sprintf("download = %v", download)}, extra...)...)
			}
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
				Steps: []resource.TestStep{
					{Config: cfg(false)},
					{
						Config:      cfg(true, `timeouts = { update = "3s" }`),
						ExpectError: regexp.MustCompile(`(?s)EID\s+` + dev.EID + `.*(pending|still open|waiting)`),
					},
					{
						PreConfig: func() {
							if n := env.actionCount("download_enable"); n != 1 {
								t.Fatalf("premise: the timed-out update sent %d download_enable, want 1", n)
							}
						},
						Config: cfg(true),
						ConfigStateChecks: []statecheck.StateCheck{
							statecheck.ExpectKnownValue("thingspace_esim_profile.g", tfjsonpath.New("download"), knownvalue.Bool(true)),
						},
						Check: resource.ComposeTestCheckFunc(
							testAccCheckDeviceActions(env, map[string][]string{dev.EID: {"activate", "download_enable"}}),
							checkSim(func() error { return noActionWhileOpen(env) }),
						),
					},
					emptyPlanStep(cfg(true)),
				},
			})
		})
	}
}

// ThingSpace applies a serviceplan but answers 500: the engine never sends an action of
// unknown outcome again; it reads the device until the plan shows, and records it. One
// serviceplan, with and without a relay.
func TestAccESIMProfile_unknownServicePlanOutcomeIsNotSentAgain(t *testing.T) {
	t.Parallel() // waits on slow callbacks: overlaps with the other waiting tests
	for _, relay := range []bool{true, false} {
		t.Run(fmt.Sprintf("relay=%v", relay), func(t *testing.T) {
			t.Parallel()
			env := newTestEnv(t, envOptions{Relay: relay})
			us := env.plansOfType("US")
			dev := env.device(t, 0)
			cfg := func(plan string) string {
				return env.providerBlock() + testAccESIMProfileConfig_basic(env, "p", dev.EID, plan)
			}
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
				Steps: []resource.TestStep{
					{Config: cfg(us[0])},
					{
						PreConfig: func() {
							if err := env.Sim.SetFaults("5xx-after=1"); err != nil {
								t.Fatal(err)
							}
						},
						Config: cfg(us[1]),
						ConfigStateChecks: []statecheck.StateCheck{
							statecheck.ExpectKnownValue("thingspace_esim_profile.p", tfjsonpath.New("service_plan"), knownvalue.StringExact(us[1])),
						},
						Check: resource.ComposeTestCheckFunc(
							checkSim(func() error {
								if n := env.Sim.Stats().FaultsFired["5xx-after"]; n < 1 {
									return fmt.Errorf("premise: 5xx-after fired %d times", n)
								}
								return nil
							}),
							testAccCheckDeviceActions(env, map[string][]string{dev.EID: {"activate", "serviceplan"}}),
						),
					},
					emptyPlanStep(cfg(us[1])),
				},
			})
		})
	}
}

// A profile_suspend is registered at the relay under every identifier of the device (EID,
// both ICCIDs, IMEI, MDN), so that the open-request check of a later apply, whichever
// identifier it starts from, sees it.
func TestAccESIMProfile_suspendIsRegisteredByEveryIdentifier(t *testing.T) {
	t.Parallel() // waits on slow callbacks: overlaps with the other waiting tests
	env := newTestEnv(t, envOptions{Relay: true})
	us, gl := env.plansOfType("US"), env.plansOfType("Global")
	dev := env.device(t, 0)
	cfg := func(suspended bool) string {
		return env.providerBlock() + testAccESIMProfileConfig_global(env, "g", dev.EID, us[0], gl[0], fmt.Sprintf("suspended = %v", suspended))
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: cfg(false)},
			{
				Config: cfg(true),
				Check: checkSim(func() error {
					var rid string
					for _, a := range env.Sim.Stats().Actions {
						if a.Action == "profile_suspend" {
							rid = a.RequestID
						}
					}
					if rid == "" {
						return fmt.Errorf("no profile_suspend was accepted; actions: %v", env.acceptedFor(dev.EID))
					}
					d := env.deviceByEID(t, dev.EID)
					for _, id := range [][2]string{{"eid", dev.EID}, {"iccid", dev.Profiles[0].ICCID}, {"iccid", dev.Profiles[1].ICCID},
						{"imei", d.IMEI}, {"mdn", d.MDN}} {
						if id[1] == "" {
							return fmt.Errorf("the simulator shows no %s for the device", id[0])
						}
						if got := relayRequestIDs(t, env, id[0], id[1]); !slices.Contains(got, rid) {
							return fmt.Errorf("the relay's requests for %s:%s are %v; profile_suspend %s is missing", id[0], id[1], got, rid)
						}
					}
					return nil
				}),
			},
			emptyPlanStep(cfg(true)),
		},
	})
}

// A create interrupted after ThingSpace accepted the activate leaves an unconfirmed, tainted
// instance. After `terraform untaint` and a successful update, the instance is confirmed:
// destroying it deactivates the line, as the configuration asked, instead of warning that
// the device stays active and leaving a billed line on.
func TestESIMProfile_untaintedThenUpdatedIsDeactivatedByDestroy(t *testing.T) {
	t.Parallel() // waits on slow callbacks: overlaps with the other waiting tests
	env, core, eid, us := untaintedAfterInterruptedCreate(t)
	ctx := context.Background()
	cfg := func(plan string) map[string]coreConfig {
		return map[string]coreConfig{"p": {"eid": eid, "service_plan": plan}}
	}
	// An update that succeeds, then the destroy.
	if res := core.apply(ctx, cfg(us[1]), applyHooks{}); res.PlanErr != "" || len(res.Errs) > 0 {
		t.Fatalf("update: %s %v", res.PlanErr, res.Errs)
	}

	if res := core.apply(ctx, map[string]coreConfig{}, applyHooks{}); res.PlanErr != "" || len(res.Errs) > 0 {
		t.Fatalf("destroy: %s %v", res.PlanErr, res.Errs)
	}
	expectDeviceActions(t, env.Sim, map[string][]string{eid: {"activate", "serviceplan", "deactivate"}})
	if v, _ := env.Sim.Device(eid); v.State != "deactive" {
		t.Fatalf("the device is %s after the destroy, want deactive", v.State)
	}
}

// A Global profile whose enable failed after the download (the callback's profileStatus, or
// without a relay the request status, says so) is not adopted as enabled by the replacement
// Create: it sends the enable, and only the enable.
func TestAccESIMProfile_enableFailedIsEnabledByTheReplacement(t *testing.T) {
	t.Parallel() // waits on slow callbacks: overlaps with the other waiting tests
	for _, relay := range []bool{true, false} {
		t.Run(fmt.Sprintf("relay=%v", relay), func(t *testing.T) {
			t.Parallel()
			env := newTestEnv(t, envOptions{Relay: relay, Faults: "enable-failed=1"})
			us, gl := env.plansOfType("US"), env.plansOfType("Global")
			dev := env.device(t, 0)
			cfg := env.providerBlock() + testAccESIMProfileConfig_global(env, "g", dev.EID, us[0], gl[0])
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
				Steps: []resource.TestStep{
					{Config: cfg, ExpectError: regexp.MustCompile(`(?s)EID\s+` + dev.EID)},
					{
						PreConfig: func() {
							if n := env.Sim.Stats().FaultsFired["enable-failed"]; n != 1 {
								t.Fatalf("premise: enable-failed fired %d times, want 1", n)
							}
							if err := env.Sim.SetFaults(""); err != nil {
								t.Fatal(err)
							}
						},
						Config: cfg,
						ConfigStateChecks: []statecheck.StateCheck{
							statecheck.ExpectKnownValue("thingspace_esim_profile.g", tfjsonpath.New("enabled"), knownvalue.Bool(true)),
						},
						Check: resource.ComposeTestCheckFunc(
							testAccCheckDeviceActions(env, map[string][]string{dev.EID: {"activate", "download_enable", "enable"}}),
							checkSim(func() error {
								if d := env.deviceByEID(t, dev.EID); d.ProfileStatus != "ENABLE" || d.ICCID != dev.Profiles[1].ICCID {
									return fmt.Errorf("the simulator shows %s on %s enabled, want the Global profile %s", d.ProfileStatus, d.ICCID, dev.Profiles[1].ICCID)
								}
								return nil
							}),
						),
					},
					emptyPlanStep(cfg),
				},
			})
		})
	}
}

// Two identical resources for one device (same EID, plan and type) are two claims, not one:
// removing either would otherwise deactivate the line the other manages.
func TestAccESIMProfile_identicalResourcesAreClaimedTwice(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true})
	us := env.plansOfType("US")
	dev := env.device(t, 0)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      testAccESIMProfileConfig_many(env, testAccESIMProfileConfig_basic(env, "a", dev.EID, us[0]), testAccESIMProfileConfig_basic(env, "b", dev.EID, us[0])),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Device claimed twice.*EID\s+` + dev.EID),
			},
		},
	})
	expectActions(t, env.Sim, nil)
}

// Destroying a staged Global profile (download = false, delete_profile = true) deactivates the
// line and sends no delete: there is no Global profile on the device to delete, and ThingSpace
// would refuse a delete of the lead profile at every retry.
func TestAccESIMProfile_stagedGlobalDestroySendsNoDelete(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true})
	us, gl := env.plansOfType("US"), env.plansOfType("Global")
	dev := env.device(t, 0)
	cfg := env.providerBlock() + testAccESIMProfileConfig_global(env, "g", dev.EID, us[0], gl[0], "download = false", "delete_profile = true")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: cfg, Check: testAccCheckDeviceActions(env, map[string][]string{dev.EID: {"activate"}})},
			emptyPlanStep(cfg),
			{
				Config: env.providerBlock(),
				Check:  testAccCheckDeviceActions(env, map[string][]string{dev.EID: {"activate", "deactivate"}}),
			},
		},
	})
}

// A create interrupted after ThingSpace accepted the activate leaves an unconfirmed, tainted
// instance. `terraform untaint` with the configuration unchanged says "keep this instance":
// the next plan must not be empty (an empty plan would leave it unconfirmed for good, and its
// destroy would then leave the line active without a word). The plan shows an update, which
// adopts the device without another activate; the destroy that follows deactivates it.
func TestESIMProfile_untaintedUnchangedIsConfirmedByTheNextApply(t *testing.T) {
	t.Parallel() // waits on slow callbacks: overlaps with the other waiting tests
	env, core, eid, us := untaintedAfterInterruptedCreate(t)
	ctx := context.Background()
	cfg := map[string]coreConfig{"p": {"eid": eid, "service_plan": us[0]}}
	if got := core.planIsEmpty(ctx, cfg); got == "" {
		t.Fatal("the plan after untainting an unconfirmed instance is empty; want an update that confirms it")
	}
	if res := core.apply(ctx, cfg, applyHooks{}); res.PlanErr != "" || len(res.Errs) > 0 {
		t.Fatalf("apply after untaint: %s %v", res.PlanErr, res.Errs)
	}
	if s := stateAttr(core.state["p"].val, "state"); s != "active" {
		t.Fatalf("state after the apply = %v, want active (confirmed)", s)
	}
	if got := core.planIsEmpty(ctx, cfg); got != "" {
		t.Fatalf("the plan after the confirming apply is not empty: %s", got)
	}
	if res := core.apply(ctx, map[string]coreConfig{}, applyHooks{}); res.PlanErr != "" || len(res.Errs) > 0 {
		t.Fatalf("destroy: %s %v", res.PlanErr, res.Errs)
	}
	expectDeviceActions(t, env.Sim, map[string][]string{eid: {"activate", "deactivate"}})
}

// deletion_protection guards against deactivating a line; the destroy of a tainted instance
// whose create was not confirmed deactivates nothing, so it does not stand in the way of the
// replacement that adopts the device. (The create is interrupted right after ThingSpace
// answered the activate: the instance is tainted whatever the machine's speed.)
func TestESIMProfile_protectedTaintedIsReplaced(t *testing.T) {
	t.Parallel() // waits on slow callbacks: overlaps with the other waiting tests
	if testing.Short() {
		t.Skip("starts a simulator and a relay")
	}
	env := newChaosEnv(t, 1, true, func(o *sim.Options) { o.CallbackDelayMin, o.CallbackDelayMax = 3*time.Second, 3*time.Second })
	us := simPlansOfType(env.Sim, "US")
	var eid string
	for _, d := range env.Sim.Devices() {
		if d.State == "pre-active" {
			eid = d.EID
			break
		}
	}
	core := newProtoCore("thingspace_esim_profile", chaosProviderConfig(env, true))
	ctx := context.Background()
	cfg := map[string]coreConfig{"p": {"eid": eid, "service_plan": us[0], "deletion_protection": true}}
	env.proxy.arm(core, map[int]string{1: "interrupt"})
	res := core.apply(ctx, cfg, applyHooks{})
	if in := core.state["p"]; len(res.Errs) == 0 || in == nil || !in.tainted {
		t.Fatalf("premise: the interrupted create should leave a tainted instance; errors %v, instance saved: %v", res.Errs, in != nil)
	}
	env.proxy.arm(core, nil)
	if res := core.apply(ctx, cfg, applyHooks{}); res.PlanErr != "" || len(res.Errs) > 0 {
		t.Fatalf("the replacement of the protected, tainted instance failed: %s %v", res.PlanErr, res.Errs)
	}
	if s := stateAttr(core.state["p"].val, "state"); s != "active" {
		t.Fatalf("state after the replacement = %v, want active", s)
	}
	expectDeviceActions(t, env.Sim, map[string][]string{eid: {"activate"}}) // the replacement adopts the device
}
