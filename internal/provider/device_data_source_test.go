package provider

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

func TestAccDeviceDataSource_basic(t *testing.T) {
	env := newTestEnv(t, envOptions{Devices: 8, Preactivated: 2})
	devs := env.Sim.Devices()
	active, fresh := devs[0], devs[5]
	plan := env.Sim.Plans()[0].Code
	at := func(key string) tfjsonpath.Path { return tfjsonpath.New(key) }
	const byEID, byICCID = "data.thingspace_device.by_eid", "data.thingspace_device.by_iccid"
	lookups := env.providerBlock() + fmt.Sprintf(`
data "thingspace_device" "by_eid" {
  eid = %q
}

data "thingspace_device" "by_iccid" {
  iccid = %q
}
`, active.EID, fresh.ICCID)

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		// The error cases come first: the post-test destroy runs with the last step's configuration.
		Steps: []resource.TestStep{
			{
				// A malformed EID fails at plan time with internal/ids' message.
				Config: env.providerBlock() + `
data "thingspace_device" "bad" {
  eid = "8904903200000000"
}
`,
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid EID.*EID "8904903200000000" has 16 digits; an EID has 32`),
			},
			{
				// Exactly one identifier.
				Config: env.providerBlock() + fmt.Sprintf(`
data "thingspace_device" "two" {
  eid  = %q
  imei = %q
}
`, active.EID, active.IMEI),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid Attribute Combination.*eid.*imei`),
			},
			{
				// A well-formed EID the account does not have: an error naming it and the account.
				Config: env.providerBlock() + `
data "thingspace_device" "missing" {
  eid = "89049032000000000000000000000001"
}
`,
				ExpectError: regexp.MustCompile(`(?s)Device not found.*` + env.Sim.Account() + `.*EID\s+89049032000000000000000000000001`),
			},
			{
				Config: lookups,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(byEID, at("id"), knownvalue.StringExact(active.EID)),
					statecheck.ExpectKnownValue(byEID, at("account_name"), knownvalue.StringExact(env.Sim.Account())),
					statecheck.ExpectKnownValue(byEID, at("iccid"), knownvalue.StringExact(active.ICCID)),
					statecheck.ExpectKnownValue(byEID, at("imei"), knownvalue.StringExact(active.IMEI)),
					statecheck.ExpectKnownValue(byEID, at("mdn"), knownvalue.StringExact(active.MDN)),
					statecheck.ExpectKnownValue(byEID, at("msisdn"), knownvalue.StringExact(active.MSISDN)),
					statecheck.ExpectKnownValue(byEID, at("state"), knownvalue.StringExact(string(tsapi.StateActive))),
					statecheck.ExpectKnownValue(byEID, at("service_plan"), knownvalue.StringExact(plan)),
					statecheck.ExpectKnownValue(byEID, at("carrier_name"), knownvalue.StringExact("Verizon Wireless")),
					statecheck.ExpectKnownValue(byEID, at("connected"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(byEID, at("group_names"), knownvalue.ListSizeExact(1)),
					statecheck.ExpectKnownValue(byEID, at("last_activation_date"), knownvalue.NotNull()),

					statecheck.ExpectKnownValue(byICCID, at("eid"), knownvalue.StringExact(fresh.EID)),
					statecheck.ExpectKnownValue(byICCID, at("state"), knownvalue.StringExact(string(tsapi.StatePreActive))),
					// A line never activated has no MDN yet.
					statecheck.ExpectKnownValue(byICCID, at("mdn"), knownvalue.Null()),
					statecheck.ExpectKnownValue(byICCID, at("connected"), knownvalue.Bool(false)),
				},
			},
			emptyPlanStep(lookups),
		},
	})
}
