package provider

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/fleetform/terraform-provider-thingspace/internal/thingspace"
	"github.com/fleetform/terraform-provider-thingspace/internal/wait"
)

// closedRelayURL is the URL of a 127.0.0.1 port nobody listens on.
func closedRelayURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	_ = ln.Close()
	return url
}

// A relay that cannot be asked about the device's open requests is reported as what it is,
// with the call that failed and what to check, not as "a request is still open".
func TestAwaitOpenRequestsRelayUnavailable(t *testing.T) {
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"error":"bad token"}`, http.StatusUnauthorized)
	}))
	defer refusing.Close()
	const eid = "89049032000000000000000000000099"
	device := thingspace.DeviceIDs{{Kind: thingspace.KindEID, ID: eid}}
	for _, tc := range []struct {
		name, url, title, mention string
	}{
		{"down", closedRelayURL(t), "Cannot reach the relay", "connection refused"},
		{"token refused", refusing.URL, "The relay refused the provider's request", "HTTP 401"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Config{RelayURL: tc.url, Relay: wait.NewRelayClient(tc.url, "wrong-token", nil)}
			err := c.awaitOpenRequests(context.Background(), "acct-1", device)
			var ru *relayUnavailableError
			if !errors.As(err, &ru) {
				t.Fatalf("err = %v (%T), want a relayUnavailableError", err, err)
			}
			var diags diag.Diagnostics
			addPreflightError(&diags, "A request for the device is still open", err)
			if len(diags) != 1 {
				t.Fatalf("diagnostics = %v", diags)
			}
			if got := diags[0].Summary(); got != tc.title {
				t.Errorf("title = %q, want %q", got, tc.title)
			}
			detail := diags[0].Detail()
			for _, want := range []string{tc.url, "GET /v1/devices/eid:" + eid + "/requests?open=true", tc.mention,
				"No action was sent", "relay_url", "relay_token", "EID " + eid} {
				if !strings.Contains(detail, want) {
					t.Errorf("detail does not mention %q:\n%s", want, detail)
				}
			}
		})
	}
}

// Other pre-action failures keep their own title.
func TestAddPreflightErrorOpenRequest(t *testing.T) {
	var diags diag.Diagnostics
	addPreflightError(&diags, "A request for the device is still open", errors.New("activate request r-1 is pending"))
	if diags[0].Summary() != "A request for the device is still open" || !strings.Contains(diags[0].Detail(), "No action was sent") {
		t.Errorf("diagnostic = %q / %q", diags[0].Summary(), diags[0].Detail())
	}
}

// The relay's API is down when an apply starts: the first action fails with an accurate error
// (the relay is not reachable, nothing sent, what to check); once it is back, the apply
// activates the device with one request.
func TestAccESIMProfileRelayDownAtStart(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true})
	us := env.plansOfType("US")
	dev := env.device(t, 0)
	env.mu.Lock()
	addr := env.apiAddr
	env.mu.Unlock()
	env.StopRelayAPI()
	config := env.providerBlock() + profileConfig(env, "p", dev.EID, us[0])
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config,
				ExpectError: regexp.MustCompile(`(?s)Cannot reach the relay.*relay at\s+` + regexp.QuoteMeta(env.RelayAPIURL) +
					`.*GET\s+/v1/info.*No\s+action\s+was\s+sent.*relay_url`),
			},
			{
				PreConfig: func() {
					if n := totalActions(env); n != 0 {
						t.Errorf("%d actions accepted while the relay was down, want 0", n)
					}
					env.startRelayAPI(t, addr)
				},
				Config: config,
				Check:  expectActions(env, map[string][]string{dev.EID: {"activate"}}),
			},
		},
	})
}

// The open-request checks of a bulk resource run several devices at once: a device with an
// open request among many is still waited on until its callback, and an unreachable relay
// still stops everything with its own error.
func TestAwaitOpenRequestsAll(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true, Devices: 40, CallbackDelay: 2 * time.Second})
	client := env.simClient(t)
	busy := env.device(t, 17)
	res, err := client.Activate(context.Background(), thingspace.ActivateRequest{AccountName: env.Sim.Account(),
		ServicePlan: env.plansOfType("US")[0], Devices: thingspace.Devices(activateIDs(busy))})
	if err != nil {
		t.Fatal(err)
	}
	if err := wait.NewRelayClient(env.RelayAPIURL, testRelayToken, nil).Register(context.Background(), res.Requests[0].RequestID,
		env.Sim.Account(), thingspace.ActionActivate, []thingspace.DeviceIDs{activateIDs(busy)}); err != nil {
		t.Fatal(err)
	}
	devices := make([]thingspace.DeviceIDs, 40)
	for i := range devices {
		devices[i] = activateIDs(env.device(t, i))
	}
	cfg := &Config{Client: client, RelayURL: env.RelayAPIURL, RelayToken: testRelayToken}
	cfg.start()
	if err := cfg.awaitOpenRequestsAll(context.Background(), env.Sim.Account(), devices, openRequestWorkers); err != nil {
		t.Fatal(err)
	}
	if d := env.deviceByEID(t, busy.EID); d.State != "active" {
		t.Fatalf("the checks returned while the activate of device 17 was still open (state %s)", d.State)
	}

	env.StopRelayAPI()
	err = cfg.awaitOpenRequestsAll(context.Background(), env.Sim.Account(), devices, openRequestWorkers)
	var ru *relayUnavailableError
	if !errors.As(err, &ru) {
		t.Fatalf("relay down: err = %v (%T), want a relayUnavailableError", err, err)
	}
}

// When the caller's context ends (timeout, interrupt) while a device's open request is still
// pending, the bulk check says which device and request it was waiting for, as the waiter
// does, instead of a bare "context canceled" / "context deadline exceeded".
func TestAwaitOpenRequestsAllContextEndNamesPending(t *testing.T) {
	const (
		busyEID = "89049032000000000000000000000017"
		rid     = "open-request-17"
	)
	polled := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasPrefix(r.URL.Path, "/v1/devices/"):
			if strings.Contains(r.URL.Path, busyEID) {
				_, _ = w.Write([]byte(`{"requests":[{"request_id":"` + rid + `","account":"acct-1","action":"activate","state":"open"}]}`))
				return
			}
			_, _ = w.Write([]byte(`{"requests":[]}`))
		case strings.HasSuffix(r.URL.Path, "/callbacks"):
			select {
			case polled <- struct{}{}:
			default:
			}
			<-r.Context().Done() // a long-poll with no callback yet
		default:
			_, _ = w.Write([]byte(`{"request_id":"` + rid + `","state":"open","expected":1,"devices":[]}`))
		}
	}))
	defer srv.Close()
	devices := make([]thingspace.DeviceIDs, 20)
	for i := range devices {
		devices[i] = thingspace.DeviceIDs{{Kind: thingspace.KindEID, ID: fmt.Sprintf("890490320000000000000000000000%02d", i)}}
	}
	cfg := &Config{RelayURL: srv.URL, RelayToken: testRelayToken, Client: &thingspace.Client{}}
	cfg.start()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-polled // the device's request is being waited on: Terraform is interrupted now
		cancel()
	}()
	err := cfg.awaitOpenRequestsAll(ctx, "acct-1", devices, openRequestWorkers)
	cancel()
	var pe *wait.PendingError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v (%T), want a *wait.PendingError", err, err)
	}
	if msg := err.Error(); !strings.Contains(msg, "EID "+busyEID) || !strings.Contains(msg, rid) {
		t.Fatalf("the error does not name the pending device and request:\n%s", msg)
	}
}

// profile_suspend of a Global profile names the profile's own ICCID, which only a device read
// gives: when that read fails, nothing is sent (before, the lead profile's ICCID went out with
// the Global plan).
func TestGlobalSuspendReadFailureSendsNothing(t *testing.T) {
	var actions atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch p := r.URL.Path; {
		case strings.HasSuffix(p, "/oauth2/token"):
			_, _ = w.Write([]byte(`{"access_token":"tok","token_type":"bearer","expires_in":3600}`))
		case strings.HasSuffix(p, "/session/login"):
			_, _ = w.Write([]byte(`{"sessionToken":"3f6a9a1c-7b1e-4f5e-9d7e-1c2b3a4d5e6f"}`))
		case strings.Contains(p, "/devices/profile/actions/"):
			actions.Add(1)
			cancel() // nothing would answer the wait for its callback
			_, _ = w.Write([]byte(`{"requestId":"d1f08526-5443-4054-9a29-4456490ea9f8"}`))
		default: // the device read
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"errorCode":"REQUEST_FAILED.UnexpectedError","errorMessage":"read refused"}`))
		}
	}))
	defer srv.Close()
	client, err := thingspace.New(thingspace.Config{BaseURL: srv.URL, ClientID: "id", ClientSecret: "secret",
		Username: "user", Password: "pass", MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	cfg := &Config{Client: client}
	cfg.start()
	m := &esimProfileModel{EID: types.StringValue("89049032000000000000000000000042"),
		ICCID: types.StringValue("89148000000000000042"), IMEI: types.StringNull(), MDN: types.StringNull(),
		ProfileType: types.StringValue(profileGlobal), GlobalServicePlan: types.StringValue("GLOBAL1")}
	op := &profileOp{r: &esimProfileResource{cfg: cfg}, account: "0000123456-00001", m: m}
	err = op.suspend(ctx)
	if err == nil || !strings.Contains(err.Error(), "no profile_suspend was sent") {
		t.Errorf("suspend with a failed read: err = %v, want the read's error and nothing sent", err)
	}
	if n := actions.Load(); n != 0 {
		t.Errorf("%d action(s) sent although the profile's own ICCID was not known", n)
	}
}
