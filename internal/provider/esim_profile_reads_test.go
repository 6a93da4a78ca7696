package provider

import (
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"

	"github.com/fleetform/terraform-provider-thingspace/internal/sim"
)

// A refresh of many profiles reads the account through shared listings, not once per profile:
// the plan of 60 profiles (READS_PROFILES) in an account of 4,500 devices (READS_ACCOUNT, three
// v1 pages of 2,000) costs at most one listing of the account and the two single reads before
// it. Then drift made outside Terraform still shows in the next plan and is set back.
//
// The bound does not rest on timing: the first two devices are read one by one, every later
// read accepts a listing that started within the read TTL (30 s), and such a listing, running
// or done, serves every one of them; nothing acts on the account during the plan.
func TestAccESIMProfile_refreshSharesListings(t *testing.T) {
	n := envInt("READS_PROFILES", 60)
	account := envInt("READS_ACCOUNT", 4500)
	env := newTestEnv(t, envOptions{Relay: true, Devices: account, Preactivated: n})
	us := env.plansOfType("US")
	plan := env.device(t, 0).ServicePlan
	config := testAccESIMProfileConfig_fleet(env, n, plan, false)
	limit := (account+1999)/2000 + 2
	var before int
	drifted := env.device(t, n/2).EID
	var other string
	for _, p := range us {
		if p != plan {
			other = p
			break
		}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				// The devices are active on the plan: every instance adopts its device.
				Config: config,
				Check: checkSim(func() error {
					t.Logf("creating %d profiles (adopting) made %d v1 device list requests", n, env.listRequests())
					return checkActions(env.Sim, nil)
				}),
			},
			{
				// Re-apply: the refresh of every instance, then an empty plan.
				PreConfig: func() { before = env.listRequests() },
				Config:    config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
					listRequestsAtMost{t: t, env: env, since: &before, limit: limit,
						what: fmt.Sprintf("the refresh of %d profiles in an account of %d devices", n, account)},
				}},
			},
			{
				// A plan changed outside Terraform shows as an update and is set back.
				PreConfig: func() { setState(t, env, drifted, sim.DevicePatch{ServicePlan: &other}) },
				Config:    config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(fmt.Sprintf("thingspace_esim_profile.d[%d]", n/2), plancheck.ResourceActionUpdate),
				}},
				Check: checkSim(func() error {
					if d := env.deviceByEID(t, drifted); d.ServicePlan != plan {
						return fmt.Errorf("EID %s is on %s after the apply, want %s", drifted, d.ServicePlan, plan)
					}
					if err := checkDeviceActions(env.Sim, map[string][]string{drifted: {"serviceplan"}}); err != nil {
						return err
					}
					return noActionWhileOpen(env)
				}),
			},
		},
	})
}
