package provider

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"

	"github.com/fleetform/terraform-provider-thingspace/internal/sim"
)

// listRoute is the simulator's request-count key of the v1 device list (single reads and
// listing pages alike).
const listRoute = "POST /api/m2m/v1/devices/actions/list"

// listRequests is how many v1 list requests the simulator answered.
func (e *testEnv) listRequests() int { return e.Sim.Stats().Requests[listRoute] }

// listRequestsAtMost is a plan check: the v1 list requests since *since are at most limit.
type listRequestsAtMost struct {
	t     *testing.T
	env   *testEnv
	since *int
	limit int
	what  string
}

func (c listRequestsAtMost) CheckPlan(_ context.Context, _ plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	n := c.env.listRequests() - *c.since
	c.t.Logf("%s: %d v1 device list requests (at most %d allowed)", c.what, n, c.limit)
	if n > c.limit {
		resp.Error = fmt.Errorf("%s made %d v1 device list requests, want at most %d", c.what, n, c.limit)
	}
}

// envInt is a positive whole number from the environment, or def.
func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// A refresh of many profiles reads the account through shared listings, not once per profile:
// the plan of 60 profiles (READS_PROFILES) in an account of 4,500 devices (READS_ACCOUNT, three
// v1 pages of 2,000) costs at most one listing of the account and the two single reads before
// it. Then drift made outside Terraform still shows in the next plan and is set back.
//
// The bound does not rest on timing: the first two devices are read one by one, every later
// read accepts a listing that started within the read TTL (30 s), and such a listing, running
// or done, serves every one of them; nothing acts on the account during the plan.
func TestAccESIMProfileRefreshSharesListings(t *testing.T) {
	n := envInt("READS_PROFILES", 60)
	account := envInt("READS_ACCOUNT", 4500)
	env := newTestEnv(t, envOptions{Relay: true, Devices: account, Preactivated: n})
	us := env.plansOfType("US")
	plan := env.device(t, 0).ServicePlan
	config := fleetConfig(env, n, plan, false)
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
					if a := totalActions(env); a != 0 {
						return fmt.Errorf("%d actions accepted, want 0", a)
					}
					return nil
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
					if got := env.acceptedFor(drifted); len(got) != 1 || got[0] != "serviceplan" {
						return fmt.Errorf("actions for the drifted device: %v, want one serviceplan", got)
					}
					return noActionWhileOpen(env)
				}),
			},
		},
	})
}
