package provider

import (
	"fmt"
	"regexp"
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

func assignmentConfig(plan string, eids []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "resource \"thingspace_service_plan_assignment\" \"a\" {\n  service_plan = %q\n  devices = [\n", plan)
	for _, e := range eids {
		fmt.Fprintf(&b, "    { eid = %q },\n", e)
	}
	b.WriteString("  ]\n}\n")
	return b.String()
}

func TestAccServicePlanAssignment(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true, Preactivated: 60, Devices: 62})
	us := env.plansOfType("US")
	var few, many []string
	for i := range 60 {
		many = append(many, env.device(t, i).EID)
	}
	few = many[:12]
	addr := "thingspace_service_plan_assignment.a"
	serviceplanDevices := func() int {
		n := 0
		for _, a := range env.Sim.Stats().Actions {
			if a.Action == "serviceplan" {
				n += len(a.Devices)
			}
		}
		return n
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				// A pre-active device cannot take a plan: an error naming it, and nothing sent.
				Config:      env.providerBlock() + assignmentConfig(us[1], append([]string{env.device(t, 61).EID}, few[:2]...)),
				ExpectError: regexp.MustCompile(`(?s)` + env.device(t, 61).EID + `.*pre-active.*Nothing was sent`),
			},
			{
				Config: env.providerBlock() + assignmentConfig(us[1], few),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("devices"), knownvalue.ListSizeExact(12)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("last_request_ids"), knownvalue.ListSizeExact(1)),
				},
				Check: checkSim(func() error {
					if n := env.actionCount("serviceplan"); n != 1 {
						return fmt.Errorf("serviceplan requests = %d, want 1 bulk call", n)
					}
					for _, e := range few {
						if d := env.deviceByEID(t, e); d.ServicePlan != us[1] {
							return fmt.Errorf("%s is on %s", e, d.ServicePlan)
						}
					}
					return nil
				}),
			},
			{
				Config:           env.providerBlock() + assignmentConfig(us[1], few),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
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
				Config: env.providerBlock() + assignmentConfig(us[1], few),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)}},
				Check: checkSim(func() error {
					if n := serviceplanDevices(); n != 13 {
						return fmt.Errorf("devices sent with serviceplan = %d, want 12 + the drifted one", n)
					}
					return nil
				}),
			},
			{
				// Sixty devices are read with the paged list; the 12 already on the plan are not sent.
				Config: env.providerBlock() + assignmentConfig(us[1], many),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("devices"), knownvalue.ListSizeExact(60)),
				},
				Check: checkSim(func() error {
					if n := serviceplanDevices(); n != 13+48 {
						return fmt.Errorf("devices sent with serviceplan = %d, want 61", n)
					}
					return nil
				}),
			},
			{
				Config:           env.providerBlock() + assignmentConfig(us[1], many),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
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

func TestAccServicePlanAssignmentAndProfileClaimOneDevice(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true, Preactivated: 2})
	us := env.plansOfType("US")
	eid := env.device(t, 0).EID
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config:      env.providerBlock() + assignmentConfig(us[1], []string{eid}) + profileConfig(env, "p", eid, us[0]),
			ExpectError: regexp.MustCompile(`(?s)EID ` + eid + `.*thingspace_(esim_profile|service_plan_assignment).*thingspace_(esim_profile|service_plan_assignment)`),
		}},
	})
	if n := len(env.Sim.Stats().Actions); n != 0 {
		t.Fatalf("%d actions were accepted for a configuration rejected at plan time", n)
	}
}

// Devices often come from a variable or another resource, unknown until apply: validation and
// planning must wait for them instead of failing, and the apply sets them as usual.
func TestAccServicePlanAssignmentDevicesKnownAfterApply(t *testing.T) {
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
					if n := env.actionCount("serviceplan"); n != 1 {
						return fmt.Errorf("serviceplan requests = %d, want 1", n)
					}
					return nil
				}),
			},
			{
				Config:           cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
		},
	})
}
