package provider

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

func profileConfig(env *testEnv, name, eid, plan string, extra ...string) string {
	body := ""
	for _, l := range extra {
		body += "  " + l + "\n"
	}
	return fmt.Sprintf(`
resource "thingspace_esim_profile" %q {
  eid          = %q
  service_plan = %q
%s}
`, name, eid, plan, body)
}

// checkSim asserts on the simulator from a test step.
func checkSim(f func() error) resource.TestCheckFunc {
	return func(*terraform.State) error { return f() }
}

func TestAccESIMProfileVerizonUSLifecycle(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true})
	us := env.plansOfType("US")
	dev := env.device(t, 0)
	addr := "thingspace_esim_profile.p"
	cfg := func(plan string, extra ...string) string {
		return env.providerBlock() + profileConfig(env, "p", dev.EID, plan, extra...)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: cfg(us[0]),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("state"), knownvalue.StringExact("active")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("iccid"), knownvalue.StringExact(dev.ICCID)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("profile_role"), knownvalue.StringExact("LEAD")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("profile_status"), knownvalue.StringExact("ENABLE")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("mdn"), knownvalue.StringRegexp(regexp.MustCompile(`^\d{10}$`))),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("last_request_id"), knownvalue.NotNull()),
				},
				Check: checkSim(func() error {
					if got := env.acceptedFor(dev.EID); fmt.Sprint(got) != "[activate]" {
						return fmt.Errorf("actions for the device = %v, want [activate]", got)
					}
					if d := env.deviceByEID(t, dev.EID); d.State != "active" || d.ServicePlan != us[0] {
						return fmt.Errorf("simulator device = %+v", d)
					}
					return nil
				}),
			},
			{
				// Drift step: the same configuration plans nothing.
				Config:           cfg(us[0]),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			{
				Config: cfg(us[1]),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("service_plan"), knownvalue.StringExact(us[1])),
				},
				Check: checkSim(func() error {
					if got := env.acceptedFor(dev.EID); fmt.Sprint(got) != "[activate serviceplan]" {
						return fmt.Errorf("actions = %v", got)
					}
					return nil
				}),
			},
			{
				Config: cfg(us[1], "suspended = true"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("state"), knownvalue.StringExact("suspended")),
				},
				Check: checkSim(func() error {
					if d := env.deviceByEID(t, dev.EID); d.State != "suspended" {
						return fmt.Errorf("simulator state = %s", d.State)
					}
					return nil
				}),
			},
			{Config: cfg(us[1], "suspended = true"), PlanOnly: true},
			{
				Config: cfg(us[1]),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("state"), knownvalue.StringExact("active")),
				},
				Check: checkSim(func() error {
					if got := env.acceptedFor(dev.EID); fmt.Sprint(got) != "[activate serviceplan device_suspend device_resume]" {
						return fmt.Errorf("actions = %v", got)
					}
					return nil
				}),
			},
			{
				ResourceName:            addr,
				ImportState:             true,
				ImportStateId:           dev.EID,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"profile_status", "profile_role", "last_request_id", "timeouts"},
			},
		},
		CheckDestroy: func(*terraform.State) error {
			if d := env.deviceByEID(t, dev.EID); d.State != "deactive" {
				return fmt.Errorf("after destroy the device is %s, want deactive", d.State)
			}
			if got := env.acceptedFor(dev.EID); got[len(got)-1] != "deactivate" {
				return fmt.Errorf("last action = %v", got)
			}
			return nil
		},
	})
}
