package provider

import (
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

func TestAccServicePlansDataSource_basic(t *testing.T) {
	env := newTestEnv(t, envOptions{})
	plans := env.Sim.Plans()
	codes := make([]knownvalue.Check, 0, len(plans))
	for _, p := range plans {
		codes = append(codes, knownvalue.StringExact(p.Code))
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: env.providerBlock() + plansDataSource,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("data.thingspace_service_plans.all", tfjsonpath.New("account_name"), knownvalue.StringExact(env.Sim.Account())),
					statecheck.ExpectKnownValue("data.thingspace_service_plans.all", tfjsonpath.New("codes"), knownvalue.ListExact(codes)),
					statecheck.ExpectKnownValue("data.thingspace_service_plans.all", tfjsonpath.New("plans").AtSliceIndex(0).AtMapKey("code"), knownvalue.StringExact(plans[0].Code)),
				},
			},
			emptyPlanStep(env.providerBlock() + plansDataSource),
			{
				// An account ThingSpace does not know is an error that names it.
				Config:      env.providerBlock() + `data "thingspace_service_plans" "all" { account_name = "0000999999-00001" }`,
				ExpectError: regexp.MustCompile(`0000999999-00001`),
			},
		},
	})
}
