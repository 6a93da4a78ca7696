package provider

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
)

// Onboarding 50 devices that are already active with import blocks and for_each: 50 imported,
// zero carrier actions, then an empty plan.
func TestAccESIMProfile_importBlockForEach(t *testing.T) {
	skipUnlessCLI(t, featureImportForEach)
	env := newTestEnv(t, envOptions{Relay: true, Preactivated: 50})
	plan := env.device(t, 0).ServicePlan
	config := testAccESIMProfileConfig_fleet(env, 50, plan, true)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("thingspace_esim_profile.d[0]", plancheck.ResourceActionNoop),
					plancheck.ExpectResourceAction("thingspace_esim_profile.d[49]", plancheck.ResourceActionNoop),
				}},
				Check: func(s *terraform.State) error {
					if n := len(s.RootModule().Resources); n != 50 {
						return fmt.Errorf("%d resources in state, want 50", n)
					}
					return checkActions(env.Sim, nil) // the import sends nothing
				},
			},
			emptyPlanStep(config),
		},
		CheckDestroy: func(*terraform.State) error {
			// Each device is deactivated once, and the 50 destroys are coalesced too. At the
			// default -parallelism=10 a request carries at most 10 devices, and how Terraform's
			// waves of 10 line up with the batch window varies, so the bound is loose: far fewer
			// requests than devices (one per device would be 50).
			want := map[string][]string{}
			for i := range 50 {
				want[env.device(t, i).EID] = []string{"deactivate"}
			}
			if err := checkDeviceActions(env.Sim, want); err != nil {
				return err
			}
			n := env.actionCount("deactivate")
			t.Logf("%d deactivate requests for 50 devices", n)
			if n > 25 {
				return fmt.Errorf("%d deactivate requests for 50 devices, want at most 25", n)
			}
			return noActionWhileOpen(env)
		},
	})
}

// 20 instances applied at parallelism 20 make one activate request carrying the 20 devices.
func TestAccESIMProfile_coalescing(t *testing.T) {
	// terraform-plugin-testing has no parallelism knob, and TF_CLI_ARGS_apply cannot raise it:
	// terraform-exec always passes -parallelism=10 after it, and the last flag wins. A wrapper
	// around the Terraform CLI (TF_ACC_TERRAFORM_PATH is read per resource.Test) rewrites it.
	useParallelism(t, 20)
	env := newTestEnv(t, envOptions{Relay: true})
	us := env.plansOfType("US")
	config := testAccESIMProfileConfig_fleet(env, 20, us[0], false)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config,
				Check: resource.ComposeTestCheckFunc(
					testAccCheckActions(env, map[string]int{"activate": 1}),
					checkSim(func() error {
						if got := requestSizes(env, "activate"); !slices.Equal(got, []int{20}) {
							return fmt.Errorf("the activate requests carried %v devices, want one of 20", got)
						}
						return noActionWhileOpen(env)
					}),
				),
			},
			emptyPlanStep(config),
		},
	})
}

// The onboarding guide's promise: a `removed` block with destroy = false forgets the profiles
// and sends nothing; the devices stay active on their plans.
func TestAccESIMProfile_removedBlockSendsNothing(t *testing.T) {
	skipUnlessCLI(t, featureRemovedBlockDestroyFalse)
	env := newTestEnv(t, envOptions{Relay: true, Preactivated: 3})
	us := env.plansOfType("US")
	var eids []string
	for i := range 3 {
		eids = append(eids, env.device(t, i).EID)
	}
	profiles := fmt.Sprintf(`
resource "thingspace_esim_profile" "fleet" {
  for_each       = toset(["%s"])
  eid            = each.value
  service_plan   = %q
  adopt_existing = true
}
`, strings.Join(eids, `", "`), us[0])
	removed := `
removed {
  from = thingspace_esim_profile.fleet
  lifecycle {
    destroy = false
  }
}
`
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: env.providerBlock() + profiles},
			{
				Config: env.providerBlock() + removed,
				Check: resource.ComposeTestCheckFunc(func(s *terraform.State) error {
					for addr := range s.RootModule().Resources {
						if strings.HasPrefix(addr, "thingspace_esim_profile.") {
							return fmt.Errorf("%s is still in the state", addr)
						}
					}
					return nil
				}, checkSim(func() error {
					if n := env.actionCount("deactivate"); n != 0 {
						return fmt.Errorf("removing the profiles from the state sent %d deactivate requests", n)
					}
					for _, e := range eids {
						if d := env.deviceByEID(t, e); d.State != "active" || d.ServicePlan != us[0] {
							return fmt.Errorf("after the removed block %s is %s on %s", e, d.State, d.ServicePlan)
						}
					}
					return nil
				})),
			},
			emptyPlanStep(env.providerBlock() + removed),
		},
		CheckDestroy: func(*terraform.State) error {
			if n := totalActions(env); n != env.actionCount("serviceplan") {
				return fmt.Errorf("%d actions were sent for devices Terraform no longer manages", n-env.actionCount("serviceplan"))
			}
			return nil
		},
	})
}

// A fleet applied while ThingSpace misbehaves in every way that does not fail a device: 429s
// with Retry-After, callbacks delivered twice, "warning" callbacks before the final one,
// attempts lost (some callbacks never arrive, so the request status finishes them), and the
// identifier and status spellings of older callbacks. The apply still succeeds in one go, the
// next plan is empty, and each device got exactly one activate, then one deactivate.
//
// The premise does not rest on luck: every callback attempt is delivered twice (dup=1), and
// each first attempt is lost with probability 0.5, drawn independently for at least 30
// callbacks, so that no attempt is lost with probability 2^-30. (The test once checked the
// callbacks dropped after all their retries, which happens to no callback about one run in
// seven.)
func TestAccESIMProfile_fleetUnderFaults(t *testing.T) {
	t.Parallel() // waits on slow callbacks: overlaps with the other waiting tests
	const n = 30
	env := newTestEnv(t, envOptions{Relay: true, Devices: n,
		Faults: "429=0.2,retry-after=200ms,dup=1,warning=0.3,drop=0.5,kind-case=0.5,status-case=0.5"})
	us := env.plansOfType("US")
	var b strings.Builder
	b.WriteString(env.providerBlock(`status_poll_after = "3s"`))
	b.WriteString("locals {\n  devices = [\n")
	for i := range n {
		fmt.Fprintf(&b, "    %q,\n", env.device(t, i).EID)
	}
	fmt.Fprintf(&b, `  ]
}

resource "thingspace_esim_profile" "d" {
  count        = length(local.devices) # terraform-plugin-testing reads no for_each state
  eid          = local.devices[count.index]
  service_plan = %q
}
`, us[0])
	config := b.String()
	// everyDevice expects the same actions, in order, for each device of the fleet.
	everyDevice := func(actions ...string) map[string][]string {
		want := map[string][]string{}
		for i := range n {
			want[env.device(t, i).EID] = actions
		}
		return want
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config,
				Check: checkSim(func() error {
					if err := checkDeviceActions(env.Sim, everyDevice("activate")); err != nil {
						return err
					}
					st := env.Sim.Stats()
					if st.Callbacks.Duplicates == 0 || st.FaultsFired["drop"] == 0 {
						return fmt.Errorf("the faults did not fire (duplicates %d, attempts lost %d): the test proves nothing",
							st.Callbacks.Duplicates, st.FaultsFired["drop"])
					}
					for i := range n {
						if d := env.device(t, i); d.State != "active" || d.ServicePlan != us[0] {
							return fmt.Errorf("EID %s is %s on %s", d.EID, d.State, d.ServicePlan)
						}
					}
					return nil
				}),
			},
			emptyPlanStep(config),
		},
		CheckDestroy: func(*terraform.State) error {
			return checkDeviceActions(env.Sim, everyDevice("activate", "deactivate"))
		},
	})
}
