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

// Mistakes caught at plan time, before anything is sent.

// Two thingspace_esim_profile resources claiming one device: a plan-time error naming the EID.
func TestAccESIMProfile_claimedTwice(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true})
	us := env.plansOfType("US")
	dev := env.device(t, 0)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      testAccESIMProfileConfig_many(env, testAccESIMProfileConfig_basic(env, "a", dev.EID, us[0]), testAccESIMProfileConfig_basic(env, "b", dev.EID, us[1])),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Device claimed twice.*EID\s+` + dev.EID + `.*thingspace_esim_profile`),
			},
		},
	})
	expectActions(t, env.Sim, nil)
}

// Bad configuration, each with a message that says what to fix.
func TestAccESIMProfile_badConfig(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true})
	us, gl := env.plansOfType("US"), env.plansOfType("Global")
	eid := env.device(t, 0).EID
	const oid = `smsr_oid = "1.3.6.1.4.1.31746.1.500.200.101.5"`
	step := func(cfg, want string) resource.TestStep {
		return resource.TestStep{Config: env.providerBlock() + cfg, PlanOnly: true, ExpectError: regexp.MustCompile(want)}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			step(testAccESIMProfileConfig_basic(env, "p", badCheckDigits(eid), us[0]), `(?s)eid.*check\s+digit`),
			step(testAccESIMProfileConfig_basic(env, "p", eid, "NOSUCHPLAN"),
				fmt.Sprintf(`(?s)Unknown service plan.*"NOSUCHPLAN".*Valid\s+plans:.*(%[1]s.*%[2]s|%[2]s.*%[1]s)`,
					regexp.QuoteMeta(us[0]), regexp.QuoteMeta(gl[0]))),
			step(testAccESIMProfileConfig_basic(env, "p", eid, us[0], `profile_type = "global"`), `(?s)Missing global_service_plan`),
			step(testAccESIMProfileConfig_basic(env, "p", eid, us[0], `profile_type = "local"`), `(?s)Missing smsr_oid`),
			step(testAccESIMProfileConfig_basic(env, "p", eid, us[0], "delete_profile = true"), `(?s)delete_profile is for global and local profiles`),
			step(testAccESIMProfileConfig_basic(env, "p", eid, us[0], `profile_type = "local"`, oid, "download = false"),
				`(?s)download = false needs profile_type = "global"`),
		},
	})
	expectActions(t, env.Sim, nil)
}

// deletion_protection refuses a destroy at plan time and sends nothing; turning it off is an
// in-place change that sends nothing either, and then destroy deactivates.
func TestAccESIMProfile_deletionProtection(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true})
	us := env.plansOfType("US")
	dev := env.device(t, 0)
	addr := "thingspace_esim_profile.p"
	protected := env.providerBlock() + testAccESIMProfileConfig_basic(env, "p", dev.EID, us[0], "deletion_protection = true")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: protected},
			{
				Config:      protected,
				Destroy:     true,
				ExpectError: regexp.MustCompile(`(?s)Deletion protection is on.*EID\s+` + dev.EID + `.*deletion_protection\s+=\s+false`),
			},
			{
				// Removing the resource from the configuration is refused as well.
				Config:      env.providerBlock(),
				ExpectError: regexp.MustCompile(`(?s)Deletion protection is on`),
			},
			{
				PreConfig: func() {
					expectActions(t, env.Sim, map[string]int{"activate": 1}) // no deactivate while protected
				},
				Config: env.providerBlock() + testAccESIMProfileConfig_basic(env, "p", dev.EID, us[0]),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("deletion_protection"), knownvalue.Bool(false)),
				},
				Check: testAccCheckDeviceActions(env, map[string][]string{dev.EID: {"activate"}}),
			},
			emptyPlanStep(env.providerBlock() + testAccESIMProfileConfig_basic(env, "p", dev.EID, us[0])),
		},
		CheckDestroy: func(*terraform.State) error {
			return checkDeviceActions(env.Sim, map[string][]string{dev.EID: {"activate", "deactivate"}})
		},
	})
}
