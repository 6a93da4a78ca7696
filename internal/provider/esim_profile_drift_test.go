package provider

import (
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/fleetform/terraform-provider-thingspace/internal/sim"
)

// Drift made outside Terraform (in the simulator) shows in the next plan: a changed plan is an
// update, a suspension a diff on suspended, a deactivation a create (reactivation). Applying
// it sends exactly the actions that restore the configuration.
func TestAccESIMProfile_drift(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true})
	us := env.plansOfType("US")
	planned, susp, deact := env.device(t, 0), env.device(t, 1), env.device(t, 2)
	config := testAccESIMProfileConfig_many(env, testAccESIMProfileConfig_basic(env, "plan", planned.EID, us[0]),
		testAccESIMProfileConfig_basic(env, "susp", susp.EID, us[0]), testAccESIMProfileConfig_basic(env, "deact", deact.EID, us[0]))
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: config},
			{
				PreConfig: func() {
					setState(t, env, planned.EID, sim.DevicePatch{ServicePlan: ptr(us[1])})
					setState(t, env, susp.EID, sim.DevicePatch{State: ptr("suspended")})
					setState(t, env, deact.EID, sim.DevicePatch{State: ptr("deactive")})
				},
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("thingspace_esim_profile.plan", plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue("thingspace_esim_profile.plan", tfjsonpath.New("service_plan"), knownvalue.StringExact(us[0])),
					plancheck.ExpectResourceAction("thingspace_esim_profile.susp", plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue("thingspace_esim_profile.susp", tfjsonpath.New("suspended"), knownvalue.Bool(false)),
					plancheck.ExpectResourceAction("thingspace_esim_profile.deact", plancheck.ResourceActionCreate),
				}},
				Check: testAccCheckDeviceActions(env, map[string][]string{
					planned.EID: {"activate", "serviceplan"},
					susp.EID:    {"activate", "device_resume"},
					deact.EID:   {"activate", "activate"},
				}),
			},
			emptyPlanStep(config),
		},
	})
}

// A global profile whose device was suspended as a whole outside Terraform (device_suspend):
// the plan shows suspended = false, and applying it resumes the device. Then its Global plan
// is changed outside Terraform.
func TestAccESIMProfile_driftGlobalDeviceSuspended(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true})
	us, gl := env.plansOfType("US"), env.plansOfType("Global")
	dev := env.device(t, 0)
	addr := "thingspace_esim_profile.g"
	config := env.providerBlock() + testAccESIMProfileConfig_global(env, "g", dev.EID, us[0], gl[0])
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: config},
			{
				PreConfig: func() { setState(t, env, dev.EID, sim.DevicePatch{State: ptr("suspended")}) },
				Config:    config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue(addr, tfjsonpath.New("suspended"), knownvalue.Bool(false)),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("state"), knownvalue.StringExact("active")),
				},
				Check: checkSim(func() error {
					if v := env.deviceByEID(t, dev.EID); v.State != "active" {
						return fmt.Errorf("device = %s after the apply, want active", v.State)
					}
					return nil
				}),
			},
			{
				// The Global plan changed outside Terraform: an update sending serviceplan.
				PreConfig: func() { setState(t, env, dev.EID, sim.DevicePatch{ServicePlan: ptr(gl[1])}) },
				Config:    config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue(addr, tfjsonpath.New("global_service_plan"), knownvalue.StringExact(gl[0])),
				}},
				Check: testAccCheckDeviceActions(env, map[string][]string{dev.EID: {"activate", "download_enable", "device_resume", "serviceplan"}}),
			},
			emptyPlanStep(config),
		},
	})
}
