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

func TestAccESIMProfile_basic(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true})
	us := env.plansOfType("US")
	dev := env.device(t, 0)
	addr := "thingspace_esim_profile.p"
	cfg := func(plan string, extra ...string) string {
		return env.providerBlock() + testAccESIMProfileConfig_basic(env, "p", dev.EID, plan, extra...)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: cfg(us[0]),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("state"), knownvalue.StringExact("active")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("iccid"), knownvalue.StringExact(dev.ICCID)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("profile_role"), knownvalue.StringExact("LEAD")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("profile_status"), knownvalue.StringExact("ENABLE")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("mdn"), knownvalue.StringRegexp(regexp.MustCompile(`^\d{10}$`))),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("last_request_id"), knownvalue.NotNull()),
				},
				Check: checkSim(func() error {
					if err := checkDeviceActions(env.Sim, map[string][]string{dev.EID: {"activate"}}); err != nil {
						return err
					}
					if d := env.deviceByEID(t, dev.EID); d.State != "active" || d.ServicePlan != us[0] {
						return fmt.Errorf("simulator device = %+v", d)
					}
					return nil
				}),
			},
			// Drift step: the same configuration plans nothing.
			emptyPlanStep(cfg(us[0])),
			{
				Config: cfg(us[1]),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("service_plan"), knownvalue.StringExact(us[1])),
				},
				Check: testAccCheckDeviceActions(env, map[string][]string{dev.EID: {"activate", "serviceplan"}}),
			},
			{
				Config: cfg(us[1], "suspended = true"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("state"), knownvalue.StringExact("suspended")),
				},
				Check: checkSim(func() error {
					if d := env.deviceByEID(t, dev.EID); d.State != "suspended" {
						return fmt.Errorf("simulator state = %s", d.State)
					}
					return nil
				}),
			},
			{Config: cfg(us[1], "suspended = true"), PlanOnly: true},
			{
				Config: cfg(us[1]),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("state"), knownvalue.StringExact("active")),
				},
				Check: testAccCheckDeviceActions(env, map[string][]string{dev.EID: {"activate", "serviceplan", "device_suspend", "device_resume"}}),
			},
			{
				ResourceName:            addr,
				ImportState:             true,
				ImportStateId:           dev.EID,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"profile_status", "profile_role", "last_request_id", "last_action", "timeouts"},
			},
		},
		CheckDestroy: func(*terraform.State) error {
			if d := env.deviceByEID(t, dev.EID); d.State != "deactive" {
				return fmt.Errorf("after destroy the device is %s, want deactive", d.State)
			}
			return checkDeviceActions(env.Sim, map[string][]string{
				dev.EID: {"activate", "serviceplan", "device_suspend", "device_resume", "deactivate"}})
		},
	})
}

func TestAccESIMProfile_globalLifecycle(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true})
	us, gl := env.plansOfType("US"), env.plansOfType("Global")
	dev := env.device(t, 0)
	addr := "thingspace_esim_profile.g"
	cfg := func(gplan string, extra ...string) string {
		return env.providerBlock() + testAccESIMProfileConfig_global(env, "g", dev.EID, us[0], gplan, extra...)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: cfg(gl[0]),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("state"), knownvalue.StringExact("active")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("profile_type"), knownvalue.StringExact("global")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("service_plan"), knownvalue.StringExact(us[0])),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("global_service_plan"), knownvalue.StringExact(gl[0])),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("profile_status"), knownvalue.StringExact("ENABLE")),
				},
				Check: resource.ComposeTestCheckFunc(
					testAccCheckDeviceActions(env, map[string][]string{dev.EID: {"activate", "download_enable"}}),
					checkSim(func() error {
						for _, a := range env.Sim.Stats().Actions {
							if a.Action == "download_enable" && a.ServicePlan != gl[0] {
								return fmt.Errorf("download_enable carried plan %q, want %q", a.ServicePlan, gl[0])
							}
							if a.Action == "activate" && a.ServicePlan != us[0] {
								return fmt.Errorf("activate carried plan %q, want the US plan %q", a.ServicePlan, us[0])
							}
						}
						return nil
					}),
				),
			},
			emptyPlanStep(cfg(gl[0])),
			{
				Config: cfg(gl[1]),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("global_service_plan"), knownvalue.StringExact(gl[1])),
				},
				Check: testAccCheckDeviceActions(env, map[string][]string{dev.EID: {"activate", "download_enable", "serviceplan"}}),
			},
			{
				Config: cfg(gl[1], "suspended = true"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("state"), knownvalue.StringExact("suspended")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("suspended"), knownvalue.Bool(true)),
				},
				Check: testAccCheckDeviceActions(env, map[string][]string{dev.EID: {"activate", "download_enable", "serviceplan", "profile_suspend"}}),
			},
			{
				Config: cfg(gl[1]),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("state"), knownvalue.StringExact("active")),
				},
				Check: resource.ComposeTestCheckFunc(
					testAccCheckDeviceActions(env, map[string][]string{dev.EID: {"activate", "download_enable", "serviceplan", "profile_suspend", "profile_resume"}}),
					checkSim(func() error {
						// Actions on the Global profile itself name it by its own ICCID (as ThingSpace's profile_suspend page does),
						// the ones on the line by the lead ICCID.
						want := map[string]string{"activate": dev.ICCID, "download_enable": dev.ICCID,
							"serviceplan": dev.Profiles[1].ICCID, "profile_suspend": dev.Profiles[1].ICCID,
							"profile_resume": dev.Profiles[1].ICCID}
						for _, a := range env.Sim.Stats().Actions {
							if got := a.Devices[0].ICCID; got != want[a.Action] {
								return fmt.Errorf("%s carried ICCID %s, want %s", a.Action, got, want[a.Action])
							}
						}
						return nil
					}),
				),
			},
			{
				ResourceName:            addr,
				ImportState:             true,
				ImportStateId:           dev.EID,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"profile_status", "profile_role", "last_request_id", "last_action", "timeouts"},
			},
			{
				ResourceName:            addr,
				ImportState:             true,
				ImportStateId:           dev.EID + "/" + dev.ICCID,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"profile_status", "profile_role", "last_request_id", "last_action", "timeouts"},
			},
		},
		CheckDestroy: func(*terraform.State) error {
			return checkDeviceActions(env.Sim, map[string][]string{
				dev.EID: {"activate", "download_enable", "serviceplan", "profile_suspend", "profile_resume", "deactivate"}})
		},
	})
}

// download = false stages the device (activate only); enabled = false downloads without
// enabling (download, not download_enable); download turned on later sends download_enable.
func TestAccESIMProfile_globalDownloadAndEnabled(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true})
	us, gl := env.plansOfType("US"), env.plansOfType("Global")
	staged, disabled, susp := env.device(t, 0), env.device(t, 1), env.device(t, 2)
	cfg := func(download, enabled string) string {
		return testAccESIMProfileConfig_many(env,
			testAccESIMProfileConfig_global(env, "staged", staged.EID, us[0], gl[0], "download = "+download, "delete_profile = true"),
			testAccESIMProfileConfig_global(env, "disabled", disabled.EID, us[0], gl[0], "enabled = "+enabled, "delete_profile = true"),
			testAccESIMProfileConfig_global(env, "susp", susp.EID, us[0], gl[0], "suspended = true"))
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: cfg("false", "false"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("thingspace_esim_profile.susp", tfjsonpath.New("state"), knownvalue.StringExact("suspended")),
				},
				Check: testAccCheckDeviceActions(env, map[string][]string{
					staged.EID: {"activate"}, disabled.EID: {"activate", "download"},
					susp.EID: {"activate", "download_enable", "profile_suspend"}}),
			},
			emptyPlanStep(cfg("false", "false")),
			{
				// download turned on sends download_enable; enabled false → true sends enable.
				Config: cfg("true", "true"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("thingspace_esim_profile.staged", plancheck.ResourceActionUpdate),
					plancheck.ExpectResourceAction("thingspace_esim_profile.disabled", plancheck.ResourceActionUpdate)}},
				Check: testAccCheckDeviceActions(env, map[string][]string{
					staged.EID: {"activate", "download_enable"}, disabled.EID: {"activate", "download", "enable"}}),
			},
			emptyPlanStep(cfg("true", "true")),
		},
		CheckDestroy: func(*terraform.State) error {
			// delete_profile: deactivate, confirmed, then delete of the Global profile.
			if err := checkDeviceActions(env.Sim, map[string][]string{
				staged.EID:   {"activate", "download_enable", "deactivate", "delete"},
				disabled.EID: {"activate", "download", "enable", "deactivate", "delete"},
				susp.EID:     {"activate", "download_enable", "profile_suspend", "deactivate"},
			}); err != nil {
				return err
			}
			for _, d := range []string{staged.EID, disabled.EID} {
				if p := env.deviceByEID(t, d).Profiles[1]; p.Status != "DELETE" {
					return fmt.Errorf("EID %s Global profile after destroy = %+v", d, p)
				}
			}
			return nil
		},
	})
}

// local: activate then download_enable with smsr_oid (download_disable when enabled = false);
// enabled false → true sends enable, true → false sends disable; destroy with delete_profile
// sends deactivate, confirmed, then delete.
func TestAccESIMProfile_localLifecycle(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true})
	us := env.plansOfType("US")
	a, b := env.device(t, 0), env.device(t, 1)
	const oid = "1.3.6.1.4.1.31746.1.500.200.101.5"
	// cfgWith also sets a's plan and whether b is suspended.
	cfgWith := func(aEnabled, bEnabled, aPlan, bSuspended string) string {
		return testAccESIMProfileConfig_many(env,
			testAccESIMProfileConfig_basic(env, "a", a.EID, aPlan, `profile_type = "local"`, fmt.Sprintf("smsr_oid = %q", oid),
				"enabled = "+aEnabled, "delete_profile = true"),
			testAccESIMProfileConfig_basic(env, "b", b.EID, us[0], `profile_type = "local"`, fmt.Sprintf("smsr_oid = %q", oid),
				"enabled = "+bEnabled, "delete_profile = true", "suspended = "+bSuspended))
	}
	cfg := func(aEnabled, bEnabled string) string { return cfgWith(aEnabled, bEnabled, us[0], "false") }
	// localICCIDs checks that the actions on the local profile itself named it by its own ICCID.
	localICCIDs := checkSim(func() error {
		own := map[string]string{a.EID: a.Profiles[2].ICCID, b.EID: b.Profiles[2].ICCID}
		for _, x := range env.Sim.Stats().Actions {
			switch x.Action {
			case "enable", "disable", "delete":
				if d := x.Devices[0]; d.ICCID != own[d.EID] {
					return fmt.Errorf("%s for EID %s carried ICCID %s, want the local profile's %s", x.Action, d.EID, d.ICCID, own[d.EID])
				}
			}
		}
		return nil
	})
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: cfg("true", "false"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("thingspace_esim_profile.a", tfjsonpath.New("state"), knownvalue.StringExact("active")),
					statecheck.ExpectKnownValue("thingspace_esim_profile.a", tfjsonpath.New("profile_status"), knownvalue.StringExact("ENABLE")),
				},
				Check: resource.ComposeTestCheckFunc(
					testAccCheckDeviceActions(env, map[string][]string{
						a.EID: {"activate", "download_enable"}, b.EID: {"activate", "download_disable"}}),
					checkSim(func() error {
						for _, d := range []string{a.EID, b.EID} {
							v := env.deviceByEID(t, d)
							if v.Profiles[2].SmsrOid != oid {
								return fmt.Errorf("EID %s local profile = %+v", d, v.Profiles[2])
							}
						}
						return nil
					}),
				),
			},
			emptyPlanStep(cfg("true", "false")),
			{
				Config: cfg("false", "true"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("thingspace_esim_profile.a", plancheck.ResourceActionUpdate),
					plancheck.ExpectResourceAction("thingspace_esim_profile.b", plancheck.ResourceActionUpdate)}},
				Check: resource.ComposeTestCheckFunc(
					testAccCheckDeviceActions(env, map[string][]string{
						a.EID: {"activate", "download_enable", "disable"}, b.EID: {"activate", "download_disable", "enable"}}),
					localICCIDs),
			},
			emptyPlanStep(cfg("false", "true")),
			{
				// A plan change (serviceplan on the line) and a suspension (device_suspend by EID).
				Config: cfgWith("false", "true", us[1], "true"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("thingspace_esim_profile.a", tfjsonpath.New("service_plan"), knownvalue.StringExact(us[1])),
					statecheck.ExpectKnownValue("thingspace_esim_profile.b", tfjsonpath.New("state"), knownvalue.StringExact("suspended")),
				},
				Check: testAccCheckDeviceActions(env, map[string][]string{
					a.EID: {"activate", "download_enable", "disable", "serviceplan"},
					b.EID: {"activate", "download_disable", "enable", "device_suspend"}}),
			},
			{
				Config: cfgWith("false", "true", us[1], "false"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("thingspace_esim_profile.b", tfjsonpath.New("state"), knownvalue.StringExact("active")),
					statecheck.ExpectKnownValue("thingspace_esim_profile.b", tfjsonpath.New("suspended"), knownvalue.Bool(false)),
				},
				Check: testAccCheckDeviceActions(env, map[string][]string{
					b.EID: {"activate", "download_disable", "enable", "device_suspend", "device_resume"}}),
			},
			emptyPlanStep(cfgWith("false", "true", us[1], "false")),
			{
				// Import finds the local profile (profile_type); smsr_oid and delete_profile are
				// configuration-only, the rest comes from the device read.
				Config:            cfgWith("false", "true", us[1], "false"),
				ResourceName:      "thingspace_esim_profile.b",
				ImportState:       true,
				ImportStateId:     b.EID,
				ImportStateVerify: true,
				ImportStateVerifyIgnore: []string{"profile_status", "profile_role", "last_request_id", "last_action", "timeouts",
					"smsr_oid", "delete_profile"},
			},
		},
		CheckDestroy: func(s *terraform.State) error {
			if err := localICCIDs(s); err != nil {
				return err
			}
			// delete_profile: deactivate, confirmed, then delete of the local profile.
			if err := checkDeviceActions(env.Sim, map[string][]string{
				a.EID: {"activate", "download_enable", "disable", "serviceplan", "deactivate", "delete"},
				b.EID: {"activate", "download_disable", "enable", "device_suspend", "device_resume", "deactivate", "delete"},
			}); err != nil {
				return err
			}
			for _, d := range []string{a.EID, b.EID} {
				if v := env.deviceByEID(t, d); v.State != "deactive" || v.Profiles[2].Status != "DELETE" {
					return fmt.Errorf("after destroy EID %s = %+v", d, v)
				}
			}
			return nil
		},
	})
}
