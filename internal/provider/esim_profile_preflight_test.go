package provider

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/fleetform/terraform-provider-thingspace/internal/reconcile"
	"github.com/fleetform/terraform-provider-thingspace/internal/relayapi"
	"github.com/fleetform/terraform-provider-thingspace/internal/thingspace"
	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// A relay that cannot be asked what is in flight for the device is reported as what it is,
// with the call that failed and what to check, not as "a request is still open".
func TestPreflight_relayUnavailable(t *testing.T) {
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"error":"bad token"}`, http.StatusUnauthorized)
	}))
	defer refusing.Close()
	env := newTestEnv(t, envOptions{})
	dev := env.device(t, 0)
	for _, tc := range []struct {
		name, url, title, mention string
	}{
		{"down", closedRelayURL(t), "Cannot reach the relay", "connection refused"},
		{"token refused", refusing.URL, "The relay refused the provider's request", "HTTP 401"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Config{Client: env.simClient(t), RelayURL: tc.url, RelayToken: "wrong-token"}
			c.start()
			_, err := c.newWorld(nil).Observe(context.Background(), env.Sim.Account(),
				[]reconcile.Desired{{EID: dev.EID, Account: env.Sim.Account()}})
			var ru *relayUnavailableError
			if !errors.As(err, &ru) {
				t.Fatalf("err = %v (%T), want a relayUnavailableError", err, err)
			}
			var diags diag.Diagnostics
			addRunError(&diags, "Cannot create the eSIM profile", err)
			if len(diags) != 1 {
				t.Fatalf("diagnostics = %v", diags)
			}
			if got := diags[0].Summary(); got != tc.title {
				t.Errorf("title = %q, want %q", got, tc.title)
			}
			detail := diags[0].Detail()
			for _, want := range []string{tc.url, "POST /v1/devices/lookup", tc.mention,
				"No action was sent", "relay_url", "relay_token", "EID " + dev.EID} {
				if !strings.Contains(detail, want) {
					t.Errorf("detail does not mention %q:\n%s", want, detail)
				}
			}
		})
	}
}

// Other pre-action failures keep their own title.
func TestPreflight_openRequestKeepsItsTitle(t *testing.T) {
	var diags diag.Diagnostics
	addPreflightError(&diags, "A request for the device is still open", errors.New("activate request r-1 is pending"))
	if diags[0].Summary() != "A request for the device is still open" || !strings.Contains(diags[0].Detail(), "No action was sent") {
		t.Errorf("diagnostic = %q / %q", diags[0].Summary(), diags[0].Detail())
	}
}

// The relay's API is down when an apply starts: the first action fails with an accurate error
// (the relay is not reachable, nothing sent, what to check); once it is back, the apply
// activates the device with one request.
func TestAccESIMProfile_relayDownAtStart(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true})
	us := env.plansOfType("US")
	dev := env.device(t, 0)
	env.mu.Lock()
	addr := env.apiAddr
	env.mu.Unlock()
	env.StopRelayAPI()
	config := env.providerBlock() + testAccESIMProfileConfig_basic(env, "p", dev.EID, us[0])
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config,
				ExpectError: regexp.MustCompile(`(?s)Cannot reach the relay.*relay at\s+` + regexp.QuoteMeta(env.RelayAPIURL) +
					`.*No\s+action\s+was\s+sent.*relay_url`),
			},
			{
				PreConfig: func() {
					expectActions(t, env.Sim, nil) // while the relay was down
					env.startRelayAPI(t, addr)
				},
				Config: config,
				Check:  testAccCheckDeviceActions(env, map[string][]string{dev.EID: {"activate"}}),
			},
			emptyPlanStep(config),
		},
	})
}

// A device with an open request among many is waited on until its callback, and only then
// decided (here: it is on the plan already and gets nothing); an unreachable relay stops
// everything with its own error, before anything is sent.
func TestPreflight_waitsForAnOpenRequestAmongMany(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true, Devices: 40, Preactivated: 39, CallbackDelay: 2 * time.Second})
	client := env.simClient(t)
	us := env.plansOfType("US")[0]
	busy := env.device(t, 39) // the one device not active yet
	res, err := client.Activate(context.Background(), tsapi.ActivateRequest{AccountName: env.Sim.Account(),
		ServicePlan: us, Devices: thingspace.Devices(activateIDs(busy))})
	if err != nil {
		t.Fatal(err)
	}
	if err := relayapi.NewClient(env.RelayAPIURL, testRelayToken, nil).Register(context.Background(), res.Requests[0].RequestID,
		env.Sim.Account(), tsapi.ActionActivate, []tsapi.DeviceIDs{activateIDs(busy)}); err != nil {
		t.Fatal(err)
	}
	devices := make([]reconcile.Desired, 40)
	for i := range devices {
		devices[i] = reconcile.Desired{Goal: reconcile.GoalPlan, Account: env.Sim.Account(), EID: env.device(t, i).EID, ServicePlan: us}
	}
	cfg := &Config{Client: client, RelayURL: env.RelayAPIURL, RelayToken: testRelayToken}
	cfg.start()
	before := totalActions(env)
	for i, r := range cfg.runAll(context.Background(), cfg.newWorld(nil), env.Sim.Account(), devices) {
		if r.Err != nil {
			t.Fatalf("device %d: %v", i, r.Err)
		}
	}
	if d := env.deviceByEID(t, busy.EID); d.State != "active" {
		t.Fatalf("the run returned while the activate of device 39 was still open (state %s)", d.State)
	}
	for _, a := range env.acceptedFor(busy.EID) {
		if a == "serviceplan" {
			t.Fatalf("serviceplan was sent to the device whose activate (on that plan) was open: %v", env.acceptedFor(busy.EID))
		}
	}
	sent := totalActions(env) - before

	env.StopRelayAPI()
	for _, r := range cfg.runAll(context.Background(), cfg.newWorld(nil), env.Sim.Account(), devices) {
		var ru *relayUnavailableError
		if !errors.As(r.Err, &ru) {
			t.Fatalf("relay down: err = %v (%T), want a relayUnavailableError", r.Err, r.Err)
		}
	}
	if n := totalActions(env) - before; n != sent {
		t.Fatalf("%d action(s) sent while the relay was down", n-sent)
	}
}
