package provider

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-log/tflogtest"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/fleetform/terraform-provider-thingspace/internal/thingspace"
	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
	"github.com/fleetform/terraform-provider-thingspace/internal/wait"
)

const statusRoute = "GET /api/m2m/v2/accounts/{account}/requests/{requestId}/status"

// The relay's API goes down while the apply waits, the device's callback arrives (the ingest
// side stores it) during the outage, and the API comes back on the same address: the waiter
// resumes its long-poll and the apply succeeds with the one activate.
func TestAccESIMProfile_relayDownAndBack(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true, CallbackDelay: 1500 * time.Millisecond})
	config, dev, _ := oneProfile(t, env)
	outage := make(chan error, 1)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				PreConfig: func() {
					go func() {
						// Bounded waits, no timing assertions: down once the activate is accepted,
						// up again once its callback was stored while down.
						if !waitFor(60*time.Second, func() bool { return env.actionCount("activate") > 0 }) {
							outage <- fmt.Errorf("the activate was never accepted")
							return
						}
						env.mu.Lock()
						addr := env.apiAddr
						env.mu.Unlock()
						acked := env.Sim.Stats().Callbacks.Acknowledged
						env.StopRelayAPI()
						stored := waitFor(30*time.Second, func() bool { return env.Sim.Stats().Callbacks.Acknowledged > acked })
						time.Sleep(300 * time.Millisecond)
						env.startRelayAPI(t, addr)
						if !stored {
							outage <- fmt.Errorf("no callback reached the relay during the outage")
							return
						}
						outage <- nil
					}()
				},
				Config: config,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("thingspace_esim_profile.p", tfjsonpath.New("state"), knownvalue.StringExact("active")),
				},
				Check: resource.ComposeTestCheckFunc(
					checkSim(func() error {
						select {
						case err := <-outage:
							return err
						case <-time.After(30 * time.Second):
							return fmt.Errorf("the outage goroutine did not finish")
						}
					}),
					testAccCheckDeviceActions(env, map[string][]string{dev.EID: {"activate"}}),
				),
			},
			emptyPlanStep(config),
		},
	})
}

// Without relay_url the provider waits by polling ThingSpace's v2 request status (no listener
// is registered: every callback is dropped), for the v1-confirmed activate and deactivate and
// the status-confirmed download_enable alike.
func TestAccESIMProfile_pollingWithoutRelay(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: false})
	p := newUSAndGlobalProfiles(t, env)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: p.createSteps(env,
			statecheck.ExpectKnownValue("thingspace_esim_profile.gl", tfjsonpath.New("global_service_plan"), knownvalue.StringExact(p.globalPlan)),
			func() error {
				st := env.Sim.Stats()
				if st.Requests[statusRoute] == 0 || st.Callbacks.NoListener == 0 || st.Callbacks.Acknowledged != 0 {
					return fmt.Errorf("status polls = %d, callbacks = %+v: want polling with no listener",
						st.Requests[statusRoute], st.Callbacks)
				}
				return nil
			}),
		CheckDestroy: func(*terraform.State) error {
			for _, eid := range []string{p.a.EID, p.b.EID} {
				if v := env.deviceByEID(t, eid); v.State != "deactive" {
					return fmt.Errorf("EID %s is %s after destroy", eid, v.State)
				}
			}
			return nil
		},
	})
}

// Another URL registered for DeviceProfileService: the first action fails fast with the fix in
// the message, and ThingSpace accepts nothing.
func TestAccESIMProfile_foreignRegistration(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true})
	env.register(t, "https://elsewhere.example/cb")
	us := env.plansOfType("US")
	dev := env.device(t, 0)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: env.providerBlock() + testAccESIMProfileConfig_basic(env, "p", dev.EID, us[0]),
				ExpectError: regexp.MustCompile(`(?s)DeviceProfileService\s+callbacks\s+to\s+https://elsewhere\.example/….*` +
					`not\s+an\s+ingest\s+URL\s+of\s+the\s+relay.*thingspace_callback_listener`),
			},
		},
	})
	expectActions(t, env.Sim, nil) // with a foreign registration
}

// A long wait reports progress to the logs (tflog) while the device is pending, naming the
// device and its request id, so that a user running with TF_LOG=INFO sees what Terraform is
// waiting for.
func TestESIMProfile_waitProgressInTflog(t *testing.T) {
	env := newTestEnv(t, envOptions{CallbackDelay: 1500 * time.Millisecond})
	us := env.plansOfType("US")
	dev := env.device(t, 0)
	client := env.simClient(t)
	ids := activateIDs(dev)
	res, err := client.Activate(context.Background(), tsapi.ActivateRequest{AccountName: env.Sim.Account(),
		ServicePlan: us[0], Devices: thingspace.Devices(ids)})
	if err != nil {
		t.Fatal(err)
	}
	rid := res.Requests[0].RequestID
	c := &Config{Waiter: wait.New(wait.Options{Status: client, ProgressEvery: 100 * time.Millisecond,
		PollInterval: 200 * time.Millisecond})}
	var logs bytes.Buffer
	ctx, cancel := context.WithTimeout(tflogtest.RootLogger(context.Background(), &logs), time.Minute)
	defer cancel()
	out, err := c.waitDevices(ctx, []wait.Target{{Account: env.Sim.Account(), RequestID: rid,
		Action: tsapi.ActionActivate, Device: ids}}, "activate")
	if err != nil || out[0].Status != tsapi.StatusSucceeded {
		t.Fatalf("wait = %+v, %v", out, err)
	}
	entries, err := tflogtest.MultilineJSONDecode(&logs)
	if err != nil {
		t.Fatal(err)
	}
	want := "EID " + dev.EID + " (" + rid + ")"
	for _, e := range entries {
		if e["@message"] == "waiting for ThingSpace callbacks" && e["pending"] == want && e["total"] == float64(1) {
			return
		}
	}
	t.Errorf("no progress entry naming %q among %d log entries: %v", want, len(entries), entries)
}
