package provider

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/fleetform/terraform-provider-thingspace/internal/relay"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store/sqlite"
	"github.com/fleetform/terraform-provider-thingspace/internal/sim"
	"github.com/fleetform/terraform-provider-thingspace/internal/thingspace"
	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// chaosEnv is one randomized sequence's world: a simulator, a relay with SQLite that can be
// restarted on the same file and addresses, and a proxy in front of the simulator that cuts,
// loses or interrupts chosen action calls, all on 127.0.0.1.
type chaosEnv struct {
	t      testing.TB
	Sim    *sim.Simulator
	SimURL string
	proxy  *faultProxy
	// ProxyURL is what the provider's base_url points at.
	ProxyURL string

	withRelay  bool
	dbPath     string
	ingestAddr string
	apiAddr    string
	ingestURL  string
	relay      *relay.Relay
	store      *sqlite.Store
	servers    []*http.Server
	restarts   int
}

// newChaosEnv starts it; tune, when given, changes the simulator's options first.
func newChaosEnv(t testing.TB, seed int64, withRelay bool, tune ...func(*sim.Options)) *chaosEnv {
	t.Helper()
	opts := sim.DefaultOptions()
	opts.Addr = "127.0.0.1:0"
	opts.Devices = 8
	opts.Preactivated = 2
	opts.Seed = seed
	opts.CallbackDelayMin, opts.CallbackDelayMax = 10*time.Millisecond, 60*time.Millisecond
	opts.CallbackRetryInterval = 150 * time.Millisecond
	for _, f := range tune {
		f(&opts)
	}
	s, url := startTestSim(t, opts)
	e := &chaosEnv{t: t, Sim: s, SimURL: url, withRelay: withRelay}
	e.proxy = &faultProxy{target: url, client: &http.Client{Timeout: time.Minute}, plan: map[int]string{}, counts: map[string]int{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	psrv := &http.Server{Handler: e.proxy, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = psrv.Serve(ln) }()
	t.Cleanup(func() { _ = psrv.Close() })
	e.ProxyURL = "http://" + ln.Addr().String()
	if withRelay {
		e.dbPath = filepath.Join(t.TempDir(), "relay.db")
		e.ingestAddr, e.apiAddr = "127.0.0.1:0", "127.0.0.1:0"
		e.startRelay()
		t.Cleanup(e.stopRelay)
		c, err := thingspace.New(thingspace.Config{BaseURL: url, ClientID: opts.ClientID, ClientSecret: opts.ClientSecret,
			Username: opts.Username, Password: opts.Password})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.RegisterCallback(context.Background(), s.Account(), tsapi.RegisterCallbackRequest{
			Name: tsapi.ServiceDeviceProfile, URL: e.ingestURL, Username: testCBUser, Password: testCBPass}); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func listenAgain(t testing.TB, addr string) net.Listener {
	var ln net.Listener
	var err error
	for range 100 {
		if ln, err = net.Listen("tcp", addr); err == nil {
			return ln
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("listening on %s again: %v", addr, err)
	return nil
}

// startRelay opens the store and serves ingest and API, on the addresses of the previous run
// (if any): a restarted relay, as a redeploy would be.
func (e *chaosEnv) startRelay() {
	st, err := sqlite.Open(context.Background(), e.dbPath)
	if err != nil {
		e.t.Fatal(err)
	}
	ingestLn := listenAgain(e.t, e.ingestAddr)
	apiLn := listenAgain(e.t, e.apiAddr)
	e.ingestAddr, e.apiAddr = ingestLn.Addr().String(), apiLn.Addr().String()
	e.ingestURL = fmt.Sprintf("http://%s/callbacks/v1/thingspace/%s", e.ingestAddr, testPathToken)
	r, err := relay.New(relay.Config{Store: st, PathTokens: []string{testPathToken},
		Credentials: []relay.Credential{{Username: testCBUser, Password: testCBPass}},
		APITokens:   []relay.APIToken{{Token: testRelayToken}}, PublicURLs: []string{e.ingestURL}})
	if err != nil {
		e.t.Fatal(err)
	}
	e.relay, e.store = r, st
	ingest := &http.Server{Handler: r.IngestHandler(), ReadHeaderTimeout: 5 * time.Second}
	api := &http.Server{Handler: r.APIHandler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = ingest.Serve(ingestLn) }()
	go func() { _ = api.Serve(apiLn) }()
	e.servers = []*http.Server{ingest, api}
}

func (e *chaosEnv) stopRelay() {
	if e.relay == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = e.relay.Shutdown(ctx)
	for _, s := range e.servers {
		_ = s.Close()
	}
	_ = e.store.Close()
	e.relay, e.servers = nil, nil
}

// restartRelay stops the relay and starts it again on the same database and addresses.
func (e *chaosEnv) restartRelay() {
	e.stopRelay()
	e.startRelay()
	e.restarts++
}

// relayAPIURL is the relay API's URL ("" without a relay).
func (e *chaosEnv) relayAPIURL() string {
	if !e.withRelay {
		return ""
	}
	return "http://" + e.apiAddr
}

// faultProxy forwards to the simulator and, for the n-th action POST of an apply, does what
// plan[n] says:
//
//   - "cut": interrupt the apply and drop the connection before forwarding (nothing applied,
//     but the provider cannot know: outcome unknown);
//   - "lose": forward (applied), then drop the connection before the answer (outcome unknown);
//   - "interrupt" / "timeout": forward and answer, then end the apply's call as Ctrl-C or a
//     time-out would (the request is accepted and pending);
//   - "kill": forward (applied), then kill the provider process before the answer reaches it,
//     as a SIGKILL of Terraform would: the journal's intent stays open, and Terraform never
//     hears back from the call (its state stays as before).
type faultProxy struct {
	target string
	client *http.Client

	mu     sync.Mutex
	core   *protoCore
	posts  int
	plan   map[int]string
	killed bool
	counts map[string]int
}

// arm sets the plan for the next apply and resets the POST count.
func (p *faultProxy) arm(core *protoCore, plan map[int]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.core, p.plan, p.posts, p.killed = core, plan, 0, false
}

// takeKilled reports (once) whether a kill fired during the last call.
func (p *faultProxy) takeKilled() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := p.killed
	p.killed = false
	return k
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	mode := ""
	if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, thingspace.PathActions) {
		p.mu.Lock()
		p.posts++
		mode = p.plan[p.posts]
		if mode != "" {
			p.counts[mode]++
		}
		core := p.core
		p.mu.Unlock()
		if mode == "cut" {
			core.interrupt(context.Canceled)
			drop(w)
			return
		}
	}
	req, err := http.NewRequest(r.Method, p.target+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	req.Header = r.Header.Clone()
	resp, err := p.client.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	switch mode {
	case "lose":
		drop(w)
		return
	case "kill":
		p.mu.Lock()
		p.killed = true
		core := p.core
		p.mu.Unlock()
		core.interrupt(context.Canceled)
		drop(w)
		return
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(rb)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	p.mu.Lock()
	core := p.core
	p.mu.Unlock()
	switch mode {
	case "interrupt":
		core.interrupt(context.Canceled)
	case "timeout":
		core.interrupt(context.DeadlineExceeded)
	}
}

// drop closes the client's connection without an answer.
func drop(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// chaosProviderConfig is the provider configuration of the protocol-level tests: the
// simulator behind the fault proxy, fast polling, a short outcome horizon, and the relay when
// there is one.
func chaosProviderConfig(env *chaosEnv, withRelay bool) map[string]tftypes.Value {
	cfg := map[string]tftypes.Value{
		"base_url":            tftypes.NewValue(tftypes.String, env.ProxyURL),
		"client_id":           tftypes.NewValue(tftypes.String, sim.DefaultOptions().ClientID),
		"client_secret":       tftypes.NewValue(tftypes.String, sim.DefaultOptions().ClientSecret),
		"username":            tftypes.NewValue(tftypes.String, sim.DefaultOptions().Username),
		"password":            tftypes.NewValue(tftypes.String, sim.DefaultOptions().Password),
		"account_name":        tftypes.NewValue(tftypes.String, env.Sim.Account()),
		"requests_per_second": tftypes.NewValue(tftypes.Number, 1000),
		"bulk_size":           tftypes.NewValue(tftypes.Number, 10000),
		"batch_window":        tftypes.NewValue(tftypes.String, "30ms"),
		"status_poll_after":   tftypes.NewValue(tftypes.String, "1s"),
		"outcome_horizon":     tftypes.NewValue(tftypes.String, "2s"),
	}
	if withRelay {
		cfg["relay_url"] = tftypes.NewValue(tftypes.String, env.relayAPIURL())
		cfg["relay_token"] = tftypes.NewValue(tftypes.String, testRelayToken)
	}
	return cfg
}
