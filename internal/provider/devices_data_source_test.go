package provider

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/fleetform/terraform-provider-thingspace/internal/sim"
)

func TestAccDevicesDataSource_basic(t *testing.T) {
	env := newTestEnv(t, envOptions{Devices: 12, Preactivated: 5})
	devs := env.Sim.Devices()
	plans := env.Sim.Plans()
	// One more active device on the second US plan, so the plan filter has something to exclude.
	otherPlan := plans[1].Code
	if err := env.Sim.UpdateDevice(devs[4].EID, sim.DevicePatch{ServicePlan: &otherPlan}); err != nil {
		t.Fatal(err)
	}
	activeEIDs := make([]knownvalue.Check, 0, 5)
	for _, d := range devs[:5] {
		activeEIDs = append(activeEIDs, knownvalue.StringExact(d.EID))
	}
	at := func(keys ...any) tfjsonpath.Path {
		p := tfjsonpath.New(keys[0].(string))
		for _, k := range keys[1:] {
			switch k := k.(type) {
			case string:
				p = p.AtMapKey(k)
			case int:
				p = p.AtSliceIndex(k)
			}
		}
		return p
	}

	filters := env.providerBlock() + fmt.Sprintf(`
data "thingspace_devices" "active" {
  state = "active"
}

data "thingspace_devices" "pre_active" {
  state = "pre-active"
}

data "thingspace_devices" "first_plan" {
  service_plan = %q
}

data "thingspace_devices" "limited" {
  max_results = 3
}

data "thingspace_devices" "by_eid" {
  identifier_filter = {
    kind     = "eid"
    contains = %q
  }
}

data "thingspace_devices" "group" {
  group_name = "Default: %s"
  state      = "active"
}

data "thingspace_devices" "no_group" {
  group_name = "No such group"
}
`, plans[0].Code, devs[7].EID[10:], env.Sim.Account())

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: env.providerBlock() + `
data "thingspace_devices" "bad_state" {
  state = "activated"
}
`,
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)state.*value must be one of`),
			},
			{
				Config: filters,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("data.thingspace_devices.active", at("eids"), knownvalue.ListExact(activeEIDs)),
					statecheck.ExpectKnownValue("data.thingspace_devices.active", at("devices"), knownvalue.ListSizeExact(5)),
					statecheck.ExpectKnownValue("data.thingspace_devices.active", at("devices", 0, "state"), knownvalue.StringExact("active")),
					statecheck.ExpectKnownValue("data.thingspace_devices.active", at("devices", 0, "iccid"), knownvalue.StringExact(devs[0].ICCID)),
					statecheck.ExpectKnownValue("data.thingspace_devices.active", at("devices", 4, "service_plan"), knownvalue.StringExact(otherPlan)),
					statecheck.ExpectKnownValue("data.thingspace_devices.active", at("truncated"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue("data.thingspace_devices.active", at("max_results"), knownvalue.Int64Exact(10000)),
					statecheck.ExpectKnownValue("data.thingspace_devices.active", at("account_name"), knownvalue.StringExact(env.Sim.Account())),
					statecheck.ExpectKnownValue("data.thingspace_devices.pre_active", at("eids"), knownvalue.ListSizeExact(7)),
					statecheck.ExpectKnownValue("data.thingspace_devices.pre_active", at("devices", 0, "eid"), knownvalue.StringExact(devs[5].EID)),
					statecheck.ExpectKnownValue("data.thingspace_devices.first_plan", at("eids"), knownvalue.ListSizeExact(4)),
					statecheck.ExpectKnownValue("data.thingspace_devices.limited", at("eids"), knownvalue.ListSizeExact(3)),
					statecheck.ExpectKnownValue("data.thingspace_devices.limited", at("truncated"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue("data.thingspace_devices.by_eid", at("eids"),
						knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact(devs[7].EID)})),
					statecheck.ExpectKnownValue("data.thingspace_devices.group", at("eids"), knownvalue.ListSizeExact(5)),
					statecheck.ExpectKnownValue("data.thingspace_devices.no_group", at("eids"), knownvalue.ListSizeExact(0)),
				},
			},
			emptyPlanStep(filters),
		},
	})
}
