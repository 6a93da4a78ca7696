// Package sim is thingspace-sim: a simulator of Verizon ThingSpace's Connectivity Management
// (M2M) eSIM profile API, faithful enough that the provider pointed at the real ThingSpace needs
// no change. It serves the real paths (OAuth token, session login, callback registration, the
// profile actions, the v1 and v2 device lists, request status, plans), keeps a deterministic
// inventory of valid devices with ThingSpace's profile state machine (cmd/thingspace-sim/README.md),
// delivers the per-device callbacks asynchronously (retrying unacknowledged ones), injects faults
// deterministically from a seed, and has an admin API under /sim/v1/ for tests.
//
// In-process use (acceptance tests, benchmarks):
//
//	s, _ := sim.New(sim.DefaultOptions())
//	base, _ := s.Start() // "http://127.0.0.1:PORT"
//	defer s.Close()
package sim

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// Options configure a Simulator. DefaultOptions gives the command's defaults.
type Options struct {
	// Addr is the listen address of Start; "127.0.0.1:0" picks a free port.
	Addr string
	// Devices is the inventory size; Preactivated activates the first K with the first US plan.
	Devices, Preactivated int
	// Account is the one billing account; ClientID/ClientSecret the OAuth client;
	// Username/Password the M2M (UWS) user.
	Account, ClientID, ClientSecret, Username, Password string
	// CallbackDelayMin..CallbackDelayMax is the delay before a device's callback is generated
	// (drawn per device from the seed); CallbackRetryInterval the wait between attempts of an
	// unacknowledged callback; SessionIdleTimeout the M2M session idle expiry (20 min).
	CallbackDelayMin, CallbackDelayMax, CallbackRetryInterval, SessionIdleTimeout time.Duration
	// BulkLimit is the largest "devices" array an action accepts (MaxRequestsExceeded above).
	BulkLimit int
	// Seed drives the inventory, request ids and every fault draw.
	Seed int64
	// Faults is the fault specification, e.g. "429=0.05,warning=0.1,session-expiry=60s".
	Faults string
	// Logger receives the simulator's logs; nil discards them.
	Logger *slog.Logger
	// Workers is the size of the callback worker pool (default 32).
	Workers int
	// CallbackInsecureTLS skips the verification of https listeners' certificates (a local
	// relay with a self-signed certificate). ThingSpace itself verifies them.
	CallbackInsecureTLS bool

	// clock reads the time of token and session expiry (time.Now when nil). The package's
	// tests move it forward instead of sleeping, so that expiry tests do not depend on how
	// fast a shared machine runs.
	clock func() time.Time
}

// DefaultOptions returns the defaults of the thingspace-sim command.
func DefaultOptions() Options {
	return Options{
		Addr:                  "127.0.0.1:8442",
		Devices:               100,
		Account:               "0000123456-00001",
		ClientID:              "sim-client",
		ClientSecret:          "sim-secret",
		Username:              "sim-user",
		Password:              "sim-pass",
		CallbackDelayMin:      500 * time.Millisecond,
		CallbackDelayMax:      500 * time.Millisecond,
		CallbackRetryInterval: 5 * time.Second,
		SessionIdleTimeout:    20 * time.Minute,
		BulkLimit:             10000,
		Seed:                  1,
		Workers:               32,
	}
}

// ParseDelayRange parses "500ms" (a fixed delay) or "200ms-2s" (a range).
func ParseDelayRange(s string) (lo, hi time.Duration, err error) {
	s = strings.TrimSpace(s)
	if a, b, ok := strings.Cut(s, "-"); ok && a != "" {
		if lo, err = time.ParseDuration(strings.TrimSpace(a)); err != nil {
			return 0, 0, fmt.Errorf("callback delay %q: %w", s, err)
		}
		if hi, err = time.ParseDuration(strings.TrimSpace(b)); err != nil {
			return 0, 0, fmt.Errorf("callback delay %q: %w", s, err)
		}
	} else if lo, err = time.ParseDuration(s); err != nil {
		return 0, 0, fmt.Errorf("callback delay %q: %w", s, err)
	} else {
		hi = lo
	}
	if lo < 0 || hi < lo {
		return 0, 0, fmt.Errorf("callback delay %q: want 0 <= min <= max", s)
	}
	return lo, hi, nil
}

// Simulator is one simulated ThingSpace. Its methods are safe for concurrent use.
type Simulator struct {
	opts    Options
	now     func() time.Time // Options.clock, or time.Now
	log     *slog.Logger
	mux     *http.ServeMux
	handler http.Handler // mux behind joinSlashes
	client  *http.Client

	// faultMu guards faultHits, the counts of injected faults (see fired).
	faultMu   sync.Mutex
	faultHits map[string]int64

	mu           sync.Mutex
	gen          uint64 // bumped by Reset: work of an older generation is discarded
	devices      []device
	index        map[string]int32 // every identifier (eid, iccids, imei, mdn, msisdn) → device
	plans        []Plan
	planByCode   map[string]Plan
	requests     map[string]*request
	actionLog    []ActionRecord
	actionCounts map[string]int
	reqCounts    map[string]int
	attempts     map[string]int // fault attempt counters per key
	ids          *rand.Rand     // request ids
	token        accessToken
	sessions     map[string]*session
	loginFails   map[string]int
	locked       map[string]bool
	listeners    map[string]map[string]tsapi.CallbackRegistration // account → service → registration
	faults       faultSet

	sched    scheduler
	cb       callbackCounters
	inflight atomic.Int64 // tasks taken by workers and not finished

	srv      *http.Server
	ln       net.Listener
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	closed   atomic.Bool
	startMu  sync.Mutex
	baseURL  string
	closeErr error
}

// New builds a simulator and starts its callback workers. Call Start to listen, or mount
// Handler yourself; Close stops the workers (and the listener).
func New(o Options) (*Simulator, error) {
	d := DefaultOptions()
	if o.Devices < 0 || o.Preactivated < 0 || o.BulkLimit < 0 || o.Workers < 0 {
		return nil, errors.New("sim: negative option")
	}
	// Unset (zero) options take the defaults.
	o.Addr = cmp.Or(o.Addr, d.Addr)
	o.Account = cmp.Or(o.Account, d.Account)
	o.ClientID = cmp.Or(o.ClientID, d.ClientID)
	o.ClientSecret = cmp.Or(o.ClientSecret, d.ClientSecret)
	o.Username = cmp.Or(o.Username, d.Username)
	o.Password = cmp.Or(o.Password, d.Password)
	if o.CallbackDelayMax < o.CallbackDelayMin {
		o.CallbackDelayMax = o.CallbackDelayMin
	}
	if o.CallbackRetryInterval <= 0 {
		o.CallbackRetryInterval = d.CallbackRetryInterval
	}
	if o.SessionIdleTimeout <= 0 {
		o.SessionIdleTimeout = d.SessionIdleTimeout
	}
	o.BulkLimit = cmp.Or(o.BulkLimit, d.BulkLimit)
	o.Workers = cmp.Or(o.Workers, d.Workers)
	if o.Preactivated > o.Devices {
		// Clamping would hand a script fewer active devices than it asked for, silently.
		return nil, fmt.Errorf("sim: %d preactivated devices asked for, but the inventory has only %d devices", o.Preactivated, o.Devices)
	}
	fs, err := parseFaults(o.Faults)
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	s := &Simulator{opts: o, now: o.clock, log: o.Logger, faults: fs}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	timeout := 2 * o.CallbackRetryInterval
	timeout = max(time.Second, min(timeout, 10*time.Second))
	s.client = &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:               nil,
			TLSClientConfig:     &tls.Config{InsecureSkipVerify: o.CallbackInsecureTLS}, //nolint:gosec // opt-in, for local listeners
			ForceAttemptHTTP2:   true,
			MaxIdleConns:        o.Workers * 2,
			MaxIdleConnsPerHost: o.Workers * 2,
			IdleConnTimeout:     30 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	s.plans = defaultPlans()
	s.planByCode = map[string]Plan{}
	for _, p := range s.plans {
		s.planByCode[p.Code] = p
	}
	s.listeners = map[string]map[string]tsapi.CallbackRegistration{}
	s.sessions = map[string]*session{}
	s.resetLocked(false)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.sched.init()
	s.routes()
	s.startWorkers()
	return s, nil
}

// resetLocked rebuilds the inventory and forgets requests, statistics and login failures.
// With all, tokens, sessions, callback registrations and faults go too. Callers hold s.mu
// (or own s exclusively).
func (s *Simulator) resetLocked(all bool) {
	s.gen++
	s.buildInventory()
	s.requests = map[string]*request{}
	s.actionLog = nil
	s.actionCounts = map[string]int{}
	s.reqCounts = map[string]int{}
	s.attempts = map[string]int{}
	s.loginFails = map[string]int{}
	s.locked = map[string]bool{}
	seed := uint64(s.opts.Seed)
	s.ids = rand.New(rand.NewPCG(seed, seed^0x5eed^s.gen))
	s.cb.reset()
	if all {
		s.token = accessToken{}
		s.sessions = map[string]*session{}
		s.listeners = map[string]map[string]tsapi.CallbackRegistration{}
		s.faults, _ = parseFaults(s.opts.Faults)
	}
}

// Handler serves the ThingSpace API and the admin API.
func (s *Simulator) Handler() http.Handler { return s.handler }

// Start listens on Options.Addr and serves Handler; it returns the base URL
// ("http://127.0.0.1:PORT"). Callbacks go wherever the account registered them.
func (s *Simulator) Start() (string, error) {
	s.startMu.Lock()
	defer s.startMu.Unlock()
	if s.closed.Load() {
		return "", errors.New("sim: closed")
	}
	if s.ln != nil {
		return s.baseURL, nil
	}
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return "", fmt.Errorf("sim: listen: %w", err)
	}
	s.ln = ln
	s.baseURL = "http://" + ln.Addr().String()
	s.srv = &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serve", "err", err)
		}
	}()
	s.log.Info("listening", "url", s.baseURL, "devices", s.opts.Devices, "account", s.opts.Account)
	return s.baseURL, nil
}

// BaseURL returns the URL Start listens on, or "".
func (s *Simulator) BaseURL() string {
	s.startMu.Lock()
	defer s.startMu.Unlock()
	return s.baseURL
}

// Close stops the listener (waiting up to 5 s for open requests), the scheduler and the
// callback workers. Callbacks not yet delivered are abandoned. Close is idempotent.
func (s *Simulator) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return s.closeErr
	}
	s.startMu.Lock()
	srv := s.srv
	s.startMu.Unlock()
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := srv.Shutdown(ctx); err != nil {
			s.closeErr = err
			srv.Close()
		}
		cancel()
	}
	s.cancel()
	s.sched.close()
	s.wg.Wait()
	s.client.CloseIdleConnections()
	return s.closeErr
}

// Reset rebuilds the inventory from the seed and forgets requests, statistics, pending
// callbacks and login lock-outs. Tokens, sessions, callback registrations and faults are kept
// unless all is true.
func (s *Simulator) Reset(all bool) {
	s.mu.Lock()
	s.resetLocked(all)
	s.mu.Unlock()
	s.sched.purgeBefore(s.currentGen())
}

func (s *Simulator) currentGen() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

// SetFaults replaces the fault settings (same syntax as -faults; "" clears them).
func (s *Simulator) SetFaults(spec string) error {
	fs, err := parseFaults(spec)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.faults = fs
	s.mu.Unlock()
	s.log.Info("faults set", "faults", fs.spec)
	return nil
}

// Faults returns the current fault settings in the flag syntax.
func (s *Simulator) Faults() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults.spec
}

// WaitIdle blocks until no callback is scheduled, queued or being delivered (including retries
// and requests whose callbacks are still delayed), or ctx ends.
func (s *Simulator) WaitIdle(ctx context.Context) error {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		if s.sched.len() == 0 && s.inflight.Load() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// newRequestID returns a UUID-shaped id drawn from the seeded generator. Callers hold s.mu.
func (s *Simulator) newRequestID() string {
	a, b := s.ids.Uint64(), s.ids.Uint64()
	a = (a &^ (0xf << 12)) | (0x4 << 12) // version 4
	b = (b &^ (0x3 << 62)) | (0x2 << 62) // variant
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", a>>32, (a>>16)&0xffff, a&0xffff, b>>48, b&0xffffffffffff)
}
