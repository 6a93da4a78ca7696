package provider

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/fleetform/terraform-provider-thingspace/internal/sim"
)

// TestAccESIMFleet_basic: the life of a fleet, with every change touching only the devices
// whose settings changed, actions sent in bulk, and a drift step after each apply.
func TestAccESIMFleet_basic(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, envOptions{Relay: true})
	us := env.plansOfType("US")
	base, other := us[0], us[1]
	eid := func(i int) string { return env.device(t, i).EID }

	// 0..7 with the fleet's plan, 8 and 9 on their own plan.
	create := fleetOf(0, 10)
	create[8], create[9] = fmt.Sprintf(", service_plan = %q", other), fmt.Sprintf(", service_plan = %q", other)
	// One device's plan changed.
	onePlan := fleetOf(0, 10)
	onePlan[8], onePlan[9] = create[8], create[9]
	onePlan[3] = fmt.Sprintf(", service_plan = %q", other)
	// Devices 10 and 11 added, 0 removed, 1 suspended on its own.
	reshaped := fleetOf(1, 12)
	reshaped[8], reshaped[9], reshaped[3] = create[8], create[9], onePlan[3]
	reshaped[1] = ", suspended = true"

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: testAccESIMFleetConfig_basic(t, env, fleetSpec{plan: base, protection: true, devices: create}),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(fleetAddr, statusPath(eid(0)).AtMapKey("state"), knownvalue.StringExact("active")),
					statecheck.ExpectKnownValue(fleetAddr, statusPath(eid(9)).AtMapKey("service_plan"), knownvalue.StringExact(other)),
					statecheck.ExpectKnownValue(fleetAddr, statusPath(eid(5)).AtMapKey("error"), knownvalue.StringExact("")),
					statecheck.ExpectKnownValue(fleetAddr, tfjsonpath.New("create_confirmed"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(fleetAddr, tfjsonpath.New("deletion_protection"), knownvalue.Bool(true)),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					expectDevices(t, env, "active", base, 0, 1, 2, 7),
					expectDevices(t, env, "active", other, 8, 9),
					testAccCheckActions(env, map[string]int{"activate": 2}),
					checkSim(func() error {
						// One bulk activate per body: the two plans.
						if got := requestSizes(env, "activate"); !slices.Equal(slices.Sorted(slices.Values(got)), []int{2, 8}) {
							return fmt.Errorf("activate requests carried %v devices, want one of 8 and one of 2", got)
						}
						return nil
					}),
				),
			},
			// Drift step: nothing changed, nothing planned.
			emptyPlanStep(testAccESIMFleetConfig_basic(t, env, fleetSpec{plan: base, protection: true, devices: create})),
			{
				// One device's plan: only its status is unknown in the plan, one serviceplan for one device.
				Config: testAccESIMFleetConfig_basic(t, env, fleetSpec{plan: base, protection: true, devices: onePlan}),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(fleetAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectUnknownValue(fleetAddr, statusPath(eid(3))),
					plancheck.ExpectKnownValue(fleetAddr, statusPath(eid(4)).AtMapKey("state"), knownvalue.StringExact("active")),
					plancheck.ExpectKnownValue(fleetAddr, statusPath(eid(8)).AtMapKey("service_plan"), knownvalue.StringExact(other)),
				}},
				Check: resource.ComposeAggregateTestCheckFunc(
					expectDevices(t, env, "active", other, 3),
					testAccCheckActions(env, map[string]int{"activate": 2, "serviceplan": 1}),
					checkSim(func() error {
						if got := requestSizes(env, "serviceplan"); !slices.Equal(got, []int{1}) {
							return fmt.Errorf("serviceplan requests carried %v devices, want one of 1", got)
						}
						return nil
					}),
				),
			},
			emptyPlanStep(testAccESIMFleetConfig_basic(t, env, fleetSpec{plan: base, protection: true, devices: onePlan})),
			{
				// Removing an active device from a protected fleet is refused at plan time.
				Config:      testAccESIMFleetConfig_basic(t, env, fleetSpec{plan: base, protection: true, devices: reshaped}),
				ExpectError: regexp.MustCompile(`(?s)Deletion protection is on.*` + eid(0)),
			},
			{
				// Devices added, removed and changed in one apply.
				Config: testAccESIMFleetConfig_basic(t, env, fleetSpec{plan: base, protection: false, devices: reshaped}),
				Check: resource.ComposeAggregateTestCheckFunc(
					expectDevices(t, env, "active", base, 10, 11, 2),
					expectDevices(t, env, "deactive", "", 0),
					expectDevices(t, env, "suspended", base, 1),
					testAccCheckDeviceActions(env, map[string][]string{eid(0): {"activate", "deactivate"}, eid(1): {"activate", "device_suspend"},
						eid(10): {"activate"}, eid(2): {"activate"}}),
					// One more activate, for both added devices; no serviceplan: no plan changed.
					testAccCheckActions(env, map[string]int{"activate": 3, "serviceplan": 1, "deactivate": 1, "device_suspend": 1}),
					checkSim(func() error { return noActionWhileOpen(env) }),
				),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(fleetAddr, statusPath(eid(1)).AtMapKey("state"), knownvalue.StringExact("suspended")),
					statecheck.ExpectKnownValue(fleetAddr, statusPath(eid(1)).AtMapKey("last_action"), knownvalue.StringExact("device_suspend")),
				},
			},
			emptyPlanStep(testAccESIMFleetConfig_basic(t, env, fleetSpec{plan: base, protection: false, devices: reshaped})),
			{
				// The whole fleet suspended: one bulk device_suspend for the devices not suspended yet.
				Config: testAccESIMFleetConfig_basic(t, env, fleetSpec{plan: base, suspended: true, protection: false, devices: reshaped}),
				Check: resource.ComposeAggregateTestCheckFunc(
					expectDevices(t, env, "suspended", "", 1, 2, 3, 11),
					testAccCheckActions(env, map[string]int{"activate": 3, "serviceplan": 1, "deactivate": 1, "device_suspend": 2}),
					checkSim(func() error {
						if got := requestSizes(env, "device_suspend"); !slices.Equal(got, []int{1, 10}) {
							return fmt.Errorf("device_suspend requests carried %v devices, want [1 10]", got)
						}
						return noActionWhileOpen(env)
					}),
				),
			},
			emptyPlanStep(testAccESIMFleetConfig_basic(t, env, fleetSpec{plan: base, suspended: true, protection: false, devices: reshaped})),
		},
		CheckDestroy: func(*terraform.State) error {
			for i := 1; i < 12; i++ {
				if d := env.deviceByEID(t, eid(i)); d.State != "deactive" {
					return fmt.Errorf("device %d is %s after destroy, want deactive", i, d.State)
				}
			}
			if got := requestSizes(env, "deactivate"); !slices.Equal(got, []int{1, 11}) {
				return fmt.Errorf("deactivate requests carried %v devices, want [1 11] (the removed device, then the fleet)", got)
			}
			if err := checkActions(env.Sim, map[string]int{"activate": 3, "serviceplan": 1, "deactivate": 2, "device_suspend": 2}); err != nil {
				return err
			}
			return noActionWhileOpen(env)
		},
	})
}

// TestAccESIMFleet_drift: a device's plan changed and a device suspended outside Terraform show
// as those two entries in the next plan, and the apply puts them back with one action each; a
// device deactivated outside Terraform is dropped and the next apply reactivates it.
func TestAccESIMFleet_drift(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, envOptions{Relay: true})
	us := env.plansOfType("US")
	cfg := testAccESIMFleetConfig_basic(t, env, fleetSpec{plan: us[0], devices: fleetOf(0, 5)})
	eid := func(i int) string { return env.device(t, i).EID }
	patch := func(i int, p sim.DevicePatch) {
		if err := env.Sim.UpdateDevice(eid(i), p); err != nil {
			t.Fatal(err)
		}
	}
	str := func(s string) *string { return &s }
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: cfg},
			{
				PreConfig: func() {
					patch(1, sim.DevicePatch{ServicePlan: str(us[1])})
					patch(2, sim.DevicePatch{State: str("suspended")})
					patch(4, sim.DevicePatch{State: str("deactive")})
				},
				Config: cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(fleetAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectUnknownValue(fleetAddr, statusPath(eid(1))),
					plancheck.ExpectUnknownValue(fleetAddr, statusPath(eid(2))),
					plancheck.ExpectUnknownValue(fleetAddr, statusPath(eid(4))),
					plancheck.ExpectKnownValue(fleetAddr, statusPath(eid(3)).AtMapKey("state"), knownvalue.StringExact("active")),
				}},
				Check: resource.ComposeAggregateTestCheckFunc(
					expectDevices(t, env, "active", us[0], 0, 1, 2, 3, 4),
					testAccCheckDeviceActions(env, map[string][]string{
						eid(0): {"activate"}, eid(1): {"activate", "serviceplan"}, eid(2): {"activate", "device_resume"},
						eid(3): {"activate"}, eid(4): {"activate", "activate"},
					}),
				),
			},
			emptyPlanStep(testAccESIMFleetConfig_basic(t, env, fleetSpec{plan: us[0], devices: fleetOf(0, 5)})),
		},
	})
}

// TestAccESIMFleet_import: a fleet that already exists is imported by a device filter and by a
// list of EIDs, without a carrier action, and the next plan is empty.
func TestAccESIMFleet_import(t *testing.T) {
	skipUnlessCLI(t, featureRemovedBlockDestroyFalse)
	t.Parallel()
	env := newTestEnv(t, envOptions{Relay: true, Preactivated: 12})
	plan := env.device(t, 0).ServicePlan
	cfg := testAccESIMFleetConfig_basic(t, env, fleetSpec{plan: plan, protection: true, devices: fleetOf(0, 12)})
	eids := make([]string, 0, 3)
	for i := range 3 {
		eids = append(eids, env.device(t, i).EID)
	}
	small := testAccESIMFleetConfig_basic(t, env, fleetSpec{plan: plan, protection: true, devices: fleetOf(0, 3)})
	forget := env.providerBlock() + "\nremoved {\n  from = thingspace_esim_fleet.f\n  lifecycle {\n    destroy = false\n  }\n}\n"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: cfg, ResourceName: fleetAddr, ImportState: true, ImportStatePersist: true,
				ImportStateId: env.Sim.Account() + "/state=active",
				ImportStateCheck: func(s []*terraform.InstanceState) error {
					if len(s) != 1 {
						return fmt.Errorf("%d instances imported, want 1", len(s))
					}
					if n := s[0].Attributes["devices.%"]; n != "12" {
						return fmt.Errorf("devices.%% = %s, want 12", n)
					}
					if p := s[0].Attributes["service_plan"]; p != plan {
						return fmt.Errorf("service_plan = %q, want %q", p, plan)
					}
					return nil
				},
			},
			{
				Config:           cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				Check:            testAccCheckActions(env, nil),
			},
			{
				// Stop managing it without deactivating anything.
				Config: forget,
				Check:  testAccCheckActions(env, nil),
			},
			{
				// Import again, by EIDs, into a configuration of three devices.
				Config: small, ResourceName: fleetAddr, ImportState: true, ImportStatePersist: true,
				ImportStateId: env.Sim.Account() + "/" + strings.Join(eids, ","),
				ImportStateCheck: func(s []*terraform.InstanceState) error {
					if n := s[0].Attributes["devices.%"]; n != "3" {
						return fmt.Errorf("devices.%% = %s, want 3", n)
					}
					return nil
				},
			},
			{
				Config:           small,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				Check:            testAccCheckActions(env, nil),
			},
			{
				// A protected fleet is not destroyed (and the import sets the protection on).
				Config:      env.providerBlock(),
				ExpectError: regexp.MustCompile(`Deletion protection is on`),
			},
			{
				Config: forget,
				Check:  testAccCheckActions(env, nil),
			},
		},
	})
}

// TestESIMFleet_importIDErrors: import ids that cannot work say why, before any call.
func TestESIMFleet_importIDErrors(t *testing.T) {
	for _, c := range []struct{ spec, want string }{
		{"89049032995470350104029245073231,89049032995470350104029245073231", "listed twice"},
		{"8904903299547035010402924507323", "EID"},
		{"state=pre-active", "active or suspended devices only"},
		{"plan=X1", `unknown filter "plan"`},
		{"service_plan=M2M10GB", "needs state=active"},
	} {
		var err error
		if strings.Contains(c.spec, "=") {
			_, err = (&esimFleetResource{cfg: &Config{}}).findEIDsByFilter(t.Context(), "0000123456-00001", c.spec)
		} else {
			_, err = parseEIDList(c.spec)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one containing %q", c.spec, err, c.want)
		}
	}
}

// TestAccESIMFleet_partialFailure: 1,000 devices, 2 % of them fail. The first apply keeps every
// device with its status, names the failed ones and taints the fleet; the second (the failures
// gone) destroys the tainted fleet without a carrier action, adopts the devices that are done
// and activates only the failed ones. deletion_protection (on, the default) does not stand in
// the way: the tainted fleet's destroy deactivates nothing.
func TestAccESIMFleet_partialFailure(t *testing.T) {
	t.Parallel()
	const n = 1000
	env := newTestEnv(t, envOptions{Relay: true, Devices: n + 10, Faults: "fail=0.02", Seed: 7})
	plan := env.plansOfType("US")[0]
	cfg := testAccESIMFleetConfig_basic(t, env, fleetSpec{plan: plan, protection: true, devices: fleetOf(0, n)})
	failedFirst := map[string]bool{}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      cfg,
				ExpectError: regexp.MustCompile(`(?s)The eSIM fleet was not confirmed.*devices are not as configured.*- EID \d{32}: .*fail`),
			},
			{
				PreConfig: func() {
					for _, a := range env.Sim.Stats().Actions {
						for _, d := range a.Devices {
							if env.Sim.ActionOutcome(a.RequestID, d.EID) != "Success" {
								failedFirst[d.EID] = true
							}
						}
					}
					if len(failedFirst) == 0 || len(failedFirst) > n/10 {
						t.Fatalf("%d devices failed the first apply; the fault should fail about 2 %%", len(failedFirst))
					}
					if err := env.Sim.SetFaults(""); err != nil {
						t.Fatal(err)
					}
				},
				Config: cfg,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(fleetAddr, tfjsonpath.New("create_confirmed"), knownvalue.Bool(true)),
				},
				Check: checkSim(func() error {
					if n := requestSizes(env, "deactivate"); len(n) != 0 {
						return fmt.Errorf("deactivate sent %v while replacing the tainted fleet; want none", n)
					}
					want := map[string][]string{}
					for i := range n {
						e := env.device(t, i).EID
						want[e] = []string{"activate"}
						if failedFirst[e] {
							want[e] = []string{"activate", "activate"}
						}
					}
					if err := checkDeviceActions(env.Sim, want); err != nil {
						return err
					}
					return noActionWhileOpen(env)
				}),
			},
			emptyPlanStep(cfg),
			{
				// Protection off, so that the test's destroy can deactivate the fleet.
				Config: testAccESIMFleetConfig_basic(t, env, fleetSpec{plan: plan, devices: fleetOf(0, n)}),
				Check:  checkSim(func() error { return noActionWhileOpen(env) }),
			},
		},
	})
}

// TestAccESIMFleet_withoutRelay: without a relay the fleet waits by polling the request status
// and keeps its journal in private state; create, a change and destroy each send one bulk
// request.
func TestAccESIMFleet_withoutRelay(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, envOptions{})
	us := env.plansOfType("US")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: testAccESIMFleetConfig_basic(t, env, fleetSpec{plan: us[0], devices: fleetOf(0, 4)}),
				Check:  expectDevices(t, env, "active", us[0], 0, 1, 2, 3),
			},
			{
				Config: testAccESIMFleetConfig_basic(t, env, fleetSpec{plan: us[1], devices: fleetOf(0, 4)}),
				Check: resource.ComposeAggregateTestCheckFunc(
					expectDevices(t, env, "active", us[1], 0, 1, 2, 3),
					testAccCheckActions(env, map[string]int{"activate": 1, "serviceplan": 1}),
					checkSim(func() error {
						if got := requestSizes(env, "serviceplan"); !slices.Equal(got, []int{4}) {
							return fmt.Errorf("serviceplan requests carried %v devices, want one of 4", got)
						}
						return nil
					}),
				),
			},
			emptyPlanStep(testAccESIMFleetConfig_basic(t, env, fleetSpec{plan: us[1], devices: fleetOf(0, 4)})),
		},
		CheckDestroy: func(*terraform.State) error {
			if got := requestSizes(env, "deactivate"); !slices.Equal(got, []int{4}) {
				return fmt.Errorf("deactivate requests carried %v devices, want one of 4", got)
			}
			return checkActions(env.Sim, map[string]int{"activate": 1, "serviceplan": 1, "deactivate": 1})
		},
	})
}

// TestAccESIMFleet_planTimeErrors: configuration mistakes are diagnostics at plan time, before
// anything is sent.
func TestAccESIMFleet_planTimeErrors(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, envOptions{})
	us := env.plansOfType("US")
	d := env.device(t, 0)
	fleet := func(body string) string {
		return env.providerBlock() + "resource \"thingspace_esim_fleet\" \"f\" {\n" + body + "\n}\n"
	}
	steps := []resource.TestStep{
		{Config: fleet(fmt.Sprintf("service_plan = %q\nprofile_type = \"global\"\ndevices = { %q = {} }", us[0], d.EID)),
			ExpectError: regexp.MustCompile(`Missing global_service_plan`)},
		{Config: fleet(fmt.Sprintf("service_plan = %q\ndevices = { %q = {} }", us[0], badCheckDigits(d.EID))),
			ExpectError: regexp.MustCompile(`(?i)check digits`)},
		{Config: fleet(fmt.Sprintf("service_plan = %q\ndevices = { %q = { service_plan = \"NOSUCHPLAN\" } }", us[0], d.EID)),
			ExpectError: regexp.MustCompile(`(?s)Unknown service plan.*NOSUCHPLAN`)},
		{Config: fleet(fmt.Sprintf("service_plan = %q\ndevices = {}", us[0])),
			ExpectError: regexp.MustCompile(`(?i)at least 1`)},
		{Config: fleet(fmt.Sprintf("service_plan = %q\ndevices = { %q = {} }", us[0], d.EID)) + fmt.Sprintf(
			"resource \"thingspace_esim_profile\" \"p\" {\n  eid = %q\n  service_plan = %q\n}\n", d.EID, us[0]),
			ExpectError: regexp.MustCompile(`(?s)Device claimed twice.*` + d.EID)},
	}
	for i := range steps {
		steps[i].PlanOnly = true
	}
	resource.Test(t, resource.TestCase{ProtoV6ProviderFactories: testAccProtoV6ProviderFactories, Steps: steps})
	expectActions(t, env.Sim, nil)
}
