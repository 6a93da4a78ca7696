package provider

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"

	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// Resource identity (Terraform 1.12 and later): Create and import set it, and an `import` block
// with `identity` instead of `id` adopts a device or a callback registration.

// An active device adopted with `identity = { eid = ... }` (the provider's account), a profile
// created next to it; both get their identity, and both import again by identity with an
// empty plan. No carrier action for the adopted device.
func TestAccESIMProfile_identity(t *testing.T) {
	skipUnlessCLI(t, featureIdentity)
	env := newTestEnv(t, envOptions{Relay: true, Preactivated: 2})
	account := env.Sim.Account()
	adopted, created := env.device(t, 0), env.device(t, 5)
	us := env.plansOfType("US")
	resources := func() string {
		return env.providerBlock() + testAccESIMProfileConfig_basic(env, "adopted", adopted.EID, adopted.ServicePlan) +
			testAccESIMProfileConfig_basic(env, "created", created.EID, us[0])
	}
	importBlock := func(eid string) string {
		return fmt.Sprintf("\nimport {\n  to       = thingspace_esim_profile.adopted\n  identity = { eid = %q }\n}\n", eid)
	}
	identity := func(eid string) map[string]knownvalue.Check {
		return map[string]knownvalue.Check{"account_name": knownvalue.StringExact(account), "eid": knownvalue.StringExact(eid)}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      resources() + importBlock("8904903200"),
				ExpectError: regexp.MustCompile(`Invalid import identity`),
			},
			{
				Config: resources() + importBlock(adopted.EID),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("thingspace_esim_profile.adopted", plancheck.ResourceActionNoop),
					plancheck.ExpectResourceAction("thingspace_esim_profile.created", plancheck.ResourceActionCreate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectIdentity("thingspace_esim_profile.adopted", identity(adopted.EID)),
					statecheck.ExpectIdentity("thingspace_esim_profile.created", identity(created.EID)),
				},
				Check: testAccCheckDeviceActions(env, map[string][]string{adopted.EID: nil}),
			},
			emptyPlanStep(resources()),
			{
				Config:          resources(),
				ResourceName:    "thingspace_esim_profile.created",
				ImportState:     true,
				ImportStateKind: resource.ImportBlockWithResourceIdentity,
			},
			{
				Config:          resources(),
				ResourceName:    "thingspace_esim_profile.adopted",
				ImportState:     true,
				ImportStateKind: resource.ImportBlockWithResourceIdentity,
			},
		},
	})
}

// A registration made outside Terraform adopted with `identity = { service_name = ... }`, then
// imported again by its full identity with an empty plan.
func TestAccCallbackListener_identity(t *testing.T) {
	skipUnlessCLI(t, featureIdentity)
	e := newListenerEnv(t)
	e.register(t, relayURL, "relay", "")
	config := testAccCallbackListenerConfig_basic(e, `  username = "relay"`)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config + fmt.Sprintf("\nimport {\n  to       = %s\n  identity = { service_name = %q }\n}\n",
					listenerAddr, tsapi.ServiceDeviceProfile),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(listenerAddr, plancheck.ResourceActionNoop),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectIdentity(listenerAddr, map[string]knownvalue.Check{
						"account_name": knownvalue.StringExact(e.Sim.Account()),
						"service_name": knownvalue.StringExact(tsapi.ServiceDeviceProfile),
					}),
				},
			},
			emptyPlanStep(config),
			{
				Config:          config,
				ResourceName:    listenerAddr,
				ImportState:     true,
				ImportStateKind: resource.ImportBlockWithResourceIdentity,
			},
		},
	})
}
