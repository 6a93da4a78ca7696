package provider

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/fleetform/terraform-provider-thingspace/internal/thingspace"
	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// A Global profile destroyed without delete_profile stays on the deactivated line. Declaring
// it again reactivates the line, then activates (by its own ICCID) and enables the profile that
// is already there, instead of failing on a download ThingSpace refuses (AlreadyDownloaded).
func TestAccESIMProfile_globalRecreatedAfterDestroy(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true})
	us, gl := env.plansOfType("US"), env.plansOfType("Global")
	dev := env.device(t, 0)
	addr := "thingspace_esim_profile.g"
	cfg := env.providerBlock() + testAccESIMProfileConfig_global(env, "g", dev.EID, us[0], gl[0])
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: cfg},
			{Config: env.providerBlock()},
			{
				Config: cfg,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("state"), knownvalue.StringExact("active")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("profile_status"), knownvalue.StringExact("ENABLE")),
				},
				Check: resource.ComposeTestCheckFunc(
					testAccCheckDeviceActions(env, map[string][]string{dev.EID: {"activate", "download_enable", "deactivate", "activate", "activate", "enable"}}),
					checkSim(func() error {
						acts := env.Sim.Stats().Actions
						want := []struct{ action, iccid, plan string }{
							{"activate", dev.ICCID, us[0]}, {"activate", dev.Profiles[1].ICCID, gl[0]}, {"enable", dev.Profiles[1].ICCID, gl[0]}}
						got := acts[len(acts)-3:]
						for i, w := range want {
							if got[i].Action != w.action || got[i].Devices[0].ICCID != w.iccid || got[i].ServicePlan != w.plan {
								return fmt.Errorf("action %d after the destroy = %s %s on %s, want %s %s on %s", i+1,
									got[i].Action, got[i].Devices[0].ICCID, got[i].ServicePlan, w.action, w.iccid, w.plan)
							}
						}
						// The simulator's view describes the enabled profile: the Global one now.
						if d := env.deviceByEID(t, dev.EID); d.ProfileStatus != "ENABLE" || d.ProfileRole == "LEAD" {
							return fmt.Errorf("enabled profile in the simulator: %s, role %s; want the Global profile enabled", d.ProfileStatus, d.ProfileRole)
						}
						return nil
					}),
				),
			},
			emptyPlanStep(cfg),
		},
	})
}

// A Global profile enabled outside Terraform, then `enabled = true` in the configuration: the
// engine reads the device first, sees the Global profile already enabled, and sends nothing.
// The update still succeeds and records ENABLE (sending enable again would only earn
// Profile.AlreadyEnabled, and is an action for a device already in the target state).
func TestAccESIMProfile_enableWhenAlreadyEnabled(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true})
	us, gl := env.plansOfType("US"), env.plansOfType("Global")
	dev := env.device(t, 0)
	addr := "thingspace_esim_profile.g"
	cfg := func(enabled string) string {
		return env.providerBlock() + testAccESIMProfileConfig_global(env, "g", dev.EID, us[0], gl[0], "enabled = "+enabled)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: cfg("false")},
			{
				PreConfig: func() {
					res, err := env.simClient(t).PostAction(context.Background(), tsapi.ActionEnable, tsapi.ProfileRequest{
						AccountName: env.Sim.Account(), ServicePlan: gl[0],
						Devices: thingspace.Devices(tsapi.DeviceIDs{{Kind: tsapi.KindEID, ID: dev.EID},
							{Kind: tsapi.KindICCID, ID: dev.Profiles[1].ICCID}})})
					if err != nil {
						t.Fatal(err)
					}
					if !waitFor(30*time.Second, func() bool { return env.deviceByEID(t, dev.EID).ProfileRole != "LEAD" }) {
						t.Fatalf("the enable made outside Terraform (%s) did not complete", res.Requests[0].RequestID)
					}
				},
				Config: cfg("true"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("enabled"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("profile_status"), knownvalue.StringExact("ENABLE")),
				},
				Check: testAccCheckDeviceActions(env, map[string][]string{dev.EID: {"activate", "download", "enable"}}),
			},
			emptyPlanStep(cfg("true")),
		},
	})
}
