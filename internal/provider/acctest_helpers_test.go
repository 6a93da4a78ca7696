package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"

	"github.com/fleetform/terraform-provider-thingspace/internal/relay"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store/sqlite"
	"github.com/fleetform/terraform-provider-thingspace/internal/sim"
	"github.com/fleetform/terraform-provider-thingspace/internal/thingspace"
	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// testEnv is a ThingSpace simulator and, where a test asks for it, a relay with embedded
// SQLite, both started inside the test process on 127.0.0.1, for acceptance tests that run the
// real Terraform CLI.
type testEnv struct {
	Sim    *sim.Simulator
	SimURL string

	// The relay (empty without envOptions.Relay).
	RelayAPIURL    string
	RelayIngestURL string // the public ingest URL registered at the simulator
	relay          *relay.Relay
	apiServer      *http.Server
	apiAddr        string
	mu             sync.Mutex
}

// envOptions tunes one test's environment.
type envOptions struct {
	Devices      int
	Preactivated int
	Faults       string
	Seed         int64
	// Relay starts a relay and registers its ingest URL for DeviceProfileService.
	Relay bool
	// CallbackDelay overrides the simulator's callback delay (default 20–80 ms).
	CallbackDelay time.Duration
}

const (
	testRelayToken = "test-relay-token"
	testPathToken  = "test-path-token"
	testCBUser     = "cb-user"
	testCBPass     = "cb-pass"
)

func newTestEnv(t *testing.T, o envOptions) *testEnv {
	t.Helper()
	opts := sim.DefaultOptions()
	opts.Addr = "127.0.0.1:0"
	opts.Devices = 60
	if o.Devices > 0 {
		opts.Devices = o.Devices
	}
	opts.Preactivated = o.Preactivated
	opts.Faults = o.Faults
	if o.Seed != 0 {
		opts.Seed = o.Seed
	}
	opts.CallbackDelayMin, opts.CallbackDelayMax = 20*time.Millisecond, 80*time.Millisecond
	if o.CallbackDelay > 0 {
		opts.CallbackDelayMin, opts.CallbackDelayMax = o.CallbackDelay, o.CallbackDelay
	}
	opts.CallbackRetryInterval = 200 * time.Millisecond
	s, url := startTestSim(t, opts)
	e := &testEnv{Sim: s, SimURL: url}
	if o.Relay {
		e.startRelay(t)
	}
	return e
}

// emptyPlanStep plans config again and expects nothing to change: the step that follows an
// apply to show its state matches the configuration and the carrier.
func emptyPlanStep(config string) resource.TestStep {
	return resource.TestStep{
		Config:           config,
		ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
	}
}

// startTestSim starts a simulator with opts for the length of the test and returns its URL.
func startTestSim(t testing.TB, opts sim.Options) (*sim.Simulator, string) {
	t.Helper()
	s, err := sim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	url, err := s.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, url
}

// startRelay runs a relay on 127.0.0.1 and registers its ingest URL at the simulator.
func (e *testEnv) startRelay(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	ingestLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.RelayIngestURL = fmt.Sprintf("http://%s/callbacks/v1/thingspace/%s", ingestLn.Addr(), testPathToken)
	r, err := relay.New(relay.Config{Store: st, PathTokens: []string{testPathToken},
		Credentials: []relay.Credential{{Username: testCBUser, Password: testCBPass}},
		APITokens:   []relay.APIToken{{Token: testRelayToken}}, PublicURLs: []string{e.RelayIngestURL}})
	if err != nil {
		t.Fatal(err)
	}
	e.relay = r
	ingest := &http.Server{Handler: r.IngestHandler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = ingest.Serve(ingestLn) }()
	e.startRelayAPI(t, "127.0.0.1:0")
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.Shutdown(sctx)
		_ = ingest.Close()
		e.StopRelayAPI()
		_ = st.Close()
	})
	e.register(t, e.RelayIngestURL)
}

// startRelayAPI serves the relay API on addr (the same address again after StopRelayAPI).
func (e *testEnv) startRelayAPI(t *testing.T, addr string) {
	t.Helper()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: e.relay.APIHandler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	e.mu.Lock()
	e.apiServer, e.apiAddr = srv, ln.Addr().String()
	e.RelayAPIURL = "http://" + e.apiAddr
	e.mu.Unlock()
}

// StopRelayAPI takes the relay's API down (the relay keeps ingesting), as an outage would.
func (e *testEnv) StopRelayAPI() {
	e.mu.Lock()
	srv := e.apiServer
	e.apiServer = nil
	e.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// simClient is a ThingSpace client of the simulator, for what a test does outside Terraform
// (a request sent by someone else, a foreign callback registration).
func (e *testEnv) simClient(t *testing.T) *thingspace.Client {
	t.Helper()
	o := sim.DefaultOptions()
	c, err := thingspace.New(thingspace.Config{BaseURL: e.SimURL, ClientID: o.ClientID, ClientSecret: o.ClientSecret,
		Username: o.Username, Password: o.Password})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// activateIDs are the identifiers activate sends for a simulator device: EID, lead ICCID, IMEI.
func activateIDs(d sim.DeviceView) tsapi.DeviceIDs {
	return tsapi.DeviceIDs{{Kind: tsapi.KindEID, ID: d.EID}, {Kind: tsapi.KindICCID, ID: d.ICCID},
		{Kind: tsapi.KindIMEI, ID: d.IMEI}}
}

// register registers url as the account's DeviceProfileService listener.
func (e *testEnv) register(t *testing.T, url string) {
	t.Helper()
	c := e.simClient(t)
	if _, err := c.RegisterCallback(context.Background(), e.Sim.Account(), tsapi.RegisterCallbackRequest{
		Name: tsapi.ServiceDeviceProfile, URL: url, Username: testCBUser, Password: testCBPass}); err != nil {
		t.Fatal(err)
	}
}

// providerBlock is a provider configuration pointing at the simulator (and the relay, when
// started); extra lines are added inside the block.
func (e *testEnv) providerBlock(extra ...string) string {
	o := sim.DefaultOptions()
	relayLines := ""
	if e.RelayAPIURL != "" {
		relayLines = fmt.Sprintf("  relay_url   = %q\n  relay_token = %q\n", e.RelayAPIURL, testRelayToken)
	}
	return fmt.Sprintf(`
provider "thingspace" {
  base_url            = %q
  client_id           = %q
  client_secret       = %q
  username            = %q
  password            = %q
  account_name        = %q
  requests_per_second = 500
  batch_window        = "2s"
%s%s
}
`, e.SimURL, o.ClientID, o.ClientSecret, o.Username, o.Password, e.Sim.Account(), relayLines, strings.Join(extra, "\n"))
}

// device returns the simulator's view of device i (0-based inventory order).
func (e *testEnv) device(t *testing.T, i int) sim.DeviceView {
	t.Helper()
	devs := e.Sim.Devices()
	if i >= len(devs) {
		t.Fatalf("the simulator has %d devices", len(devs))
	}
	return devs[i]
}

// deviceByEID returns the simulator's current view of a device.
func (e *testEnv) deviceByEID(t *testing.T, eid string) sim.DeviceView {
	t.Helper()
	d, ok := e.Sim.Device(eid)
	if !ok {
		t.Fatalf("no device %s", eid)
	}
	return d
}

// plansOfType returns the simulator's plan codes of a type ("US" or "Global").
func (e *testEnv) plansOfType(typ string) []string { return simPlansOfType(e.Sim, typ) }

// simPlansOfType returns a simulator's plan codes of a type ("US" or "Global").
func simPlansOfType(s *sim.Simulator, typ string) []string {
	var out []string
	for _, p := range s.Plans() {
		if p.Type == typ {
			out = append(out, p.Code)
		}
	}
	return out
}

// waitFor polls cond up to limit (bounded); it reports whether cond became true.
func waitFor(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

func ptr[T any](v T) *T { return &v }

// setState puts a device in a state (and plan) outside Terraform.
func setState(t *testing.T, env *testEnv, eid string, p sim.DevicePatch) {
	t.Helper()
	if err := env.Sim.UpdateDevice(eid, p); err != nil {
		t.Fatal(err)
	}
}

// listRoute is the simulator's request-count key of the v1 device list (single reads and
// listing pages alike).
const listRoute = "POST /api/m2m/v1/devices/actions/list"

// listRequests is how many v1 list requests the simulator answered.
func (e *testEnv) listRequests() int { return e.Sim.Stats().Requests[listRoute] }

// envInt is a positive whole number from the environment, or def.
func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

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

func head(s string, n int) string {
	if len(s) > n {
		return s[:n] + "\n..."
	}
	return s
}

func tail(s string, n int) string {
	if len(s) > n {
		return "...\n" + s[len(s)-n:]
	}
	return s
}

// useParallelism makes the test's `terraform apply` runs use -parallelism=n, through a wrapper
// script around the CLI named by TF_ACC_TERRAFORM_PATH.
func useParallelism(t *testing.T, n int) {
	t.Helper()
	real := os.Getenv("TF_ACC_TERRAFORM_PATH")
	if real == "" {
		t.Skip("TF_ACC_TERRAFORM_PATH is not set: cannot wrap the Terraform CLI to raise -parallelism")
	}
	wrapper := filepath.Join(t.TempDir(), "terraform")
	script := fmt.Sprintf(`#!/bin/sh
for a do
  shift
  case "$a" in
    -parallelism=*) set -- "$@" "-parallelism=%d" ;;
    *) set -- "$@" "$a" ;;
  esac
done
exec %q "$@"
`, n, real)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TF_ACC_TERRAFORM_PATH", wrapper)
}

// relayRequestIDs lists every request the relay indexes under one identifier of a device.
func relayRequestIDs(t *testing.T, env *testEnv, kind, id string) []string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, env.RelayAPIURL+"/v1/devices/"+url.PathEscape(kind+":"+id)+"/requests", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testRelayToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Requests []struct {
			RequestID string `json:"request_id"`
		} `json:"requests"`
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET the relay's requests for %s:%s: %s", kind, id, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(out.Requests))
	for i, r := range out.Requests {
		ids[i] = r.RequestID
	}
	return ids
}
