package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// testOptions are small and fast: 20 devices, millisecond callbacks and retries.
func testOptions() Options {
	o := DefaultOptions()
	o.Addr = "127.0.0.1:0"
	o.Devices = 20
	o.CallbackDelayMin = time.Millisecond
	o.CallbackDelayMax = 3 * time.Millisecond
	o.CallbackRetryInterval = 5 * time.Millisecond
	o.Workers = 4
	return o
}

type harness struct {
	t       *testing.T
	s       *Simulator
	base    string
	token   string
	session string
	lis     *listener
}

// newHarness starts a simulator, gets a token and a session, and registers a listener.
func newHarness(t *testing.T, mod func(*Options)) *harness {
	t.Helper()
	o := testOptions()
	if mod != nil {
		mod(&o)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	base, err := s.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	h := &harness{t: t, s: s, base: base}
	h.token = h.getToken()
	h.session = h.login(o.Username, o.Password)
	h.lis = newListener(t)
	h.register(h.lis.srv.URL+"/cb", "cbuser", "cbpass")
	return h
}

func (h *harness) getToken() string {
	h.t.Helper()
	tok, _ := h.tokenWithExpiry()
	return tok
}

// tokenWithExpiry asks the token endpoint for a token and returns it with its expires_in.
func (h *harness) tokenWithExpiry() (string, int64) {
	h.t.Helper()
	req, _ := http.NewRequest("POST", h.base+"/api/ts/v1/oauth2/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(h.s.opts.ClientID, h.s.opts.ClientSecret)
	code, body := h.doReq(req)
	if code != 200 {
		h.t.Fatalf("token: %d %s", code, body)
	}
	var tr tsapi.TokenResponse
	mustJSON(h.t, body, &tr)
	return tr.AccessToken, tr.ExpiresIn
}

func (h *harness) login(user, pass string) string {
	h.t.Helper()
	code, body := h.call("POST", "/api/m2m/v1/session/login", tsapi.LoginRequest{Username: user, Password: pass}, false)
	if code != 200 {
		h.t.Fatalf("login: %d %s", code, body)
	}
	var lr tsapi.LoginResponse
	mustJSON(h.t, body, &lr)
	return lr.SessionToken
}

func (h *harness) register(url, user, pass string) {
	h.t.Helper()
	code, body := h.call("POST", "/api/m2m/v1/callbacks/"+h.s.opts.Account, tsapi.RegisterCallbackRequest{
		Name: "DeviceProfileService", URL: url, Username: user, Password: pass}, true)
	if code != 200 {
		h.t.Fatalf("register: %d %s", code, body)
	}
}

// call sends a JSON request with the Bearer token (and the session token when withSession).
func (h *harness) call(method, path string, v any, withSession bool) (int, []byte) {
	h.t.Helper()
	var rd io.Reader
	if v != nil {
		b, ok := v.([]byte)
		if !ok {
			b, _ = json.Marshal(v)
		}
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, h.base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+h.token)
	if withSession {
		req.Header.Set("VZ-M2M-Token", h.session)
	}
	return h.doReq(req)
}

func (h *harness) doReq(req *http.Request) (int, []byte) {
	h.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// action posts a profile action and returns the request id (fails the test on non-200).
func (h *harness) action(action string, body tsapi.ProfileRequest) string {
	h.t.Helper()
	if body.AccountName == "" {
		body.AccountName = h.s.opts.Account
	}
	code, b := h.call("POST", "/api/m2m/v1/devices/profile/actions/"+action, body, true)
	if code != 200 {
		h.t.Fatalf("%s: %d %s", action, code, b)
	}
	var rr tsapi.RequestResponse
	mustJSON(h.t, b, &rr)
	if rr.RequestID == "" {
		h.t.Fatalf("%s: no requestId in %s", action, b)
	}
	return rr.RequestID
}

func (h *harness) idle() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.s.WaitIdle(ctx); err != nil {
		h.t.Fatalf("simulator not idle: %v", err)
	}
}

// run sends an action, waits for its callbacks and returns them (parsed).
func (h *harness) run(action string, body tsapi.ProfileRequest) (string, []*tsapi.Callback) {
	h.t.Helper()
	id := h.action(action, body)
	h.idle()
	return id, h.lis.forRequest(h.t, id)
}

// runList posts the asynchronous v2 device list (the account filled in), waits for its
// callbacks and returns the request id with them (parsed).
func (h *harness) runList(body map[string]any) (string, []*tsapi.Callback) {
	h.t.Helper()
	body["accountName"] = h.s.opts.Account
	code, b := h.call("POST", "/api/m2m/v2/devices/actions/list", body, true)
	var rr tsapi.RequestResponse
	mustJSON(h.t, b, &rr)
	if code != 200 || rr.RequestID == "" {
		h.t.Fatalf("%d %s", code, b)
	}
	h.idle()
	return rr.RequestID, h.lis.forRequest(h.t, rr.RequestID)
}

func (h *harness) dev(i int) DeviceView { return h.s.Devices()[i] }

func ids(kv ...string) tsapi.DeviceEntry {
	var e tsapi.DeviceEntry
	for i := 0; i+1 < len(kv); i += 2 {
		e.DeviceIDs = append(e.DeviceIDs, tsapi.DeviceID{Kind: kv[i], ID: kv[i+1]})
	}
	return e
}

func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

// listener records callbacks; the first failFirst POSTs are answered 500.
type listener struct {
	srv       *httptest.Server
	mu        sync.Mutex
	bodies    [][]byte
	failFirst int
	seen      int
}

func newListener(t *testing.T) *listener {
	l := &listener{}
	l.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		l.mu.Lock()
		l.seen++
		fail := l.seen <= l.failFirst
		if !fail {
			l.bodies = append(l.bodies, b)
		}
		l.mu.Unlock()
		if fail {
			http.Error(w, "not now", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(l.srv.Close)
	return l
}

func (l *listener) all(t *testing.T) []*tsapi.Callback {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*tsapi.Callback, 0, len(l.bodies))
	for _, b := range l.bodies {
		cb, err := tsapi.ParseCallback(b)
		if err != nil {
			t.Fatalf("callback %s: %v", b, err)
		}
		out = append(out, cb)
	}
	return out
}

func (l *listener) raw() [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([][]byte(nil), l.bodies...)
}

func (l *listener) forRequest(t *testing.T, id string) []*tsapi.Callback {
	var out []*tsapi.Callback
	for _, cb := range l.all(t) {
		if cb.RequestID == id {
			out = append(out, cb)
		}
	}
	return out
}

// final returns the single terminal callback, failing the test otherwise.
func final(t *testing.T, action tsapi.Action, cbs []*tsapi.Callback) (*tsapi.Callback, tsapi.CallbackStatus, *tsapi.CallbackError) {
	t.Helper()
	var got *tsapi.Callback
	var st tsapi.CallbackStatus
	var e *tsapi.CallbackError
	for _, cb := range cbs {
		s, err := cb.Outcome(action)
		if s.Terminal() {
			if got != nil {
				t.Fatalf("two terminal callbacks: %+v and %+v", got, cb)
			}
			got, st, e = cb, s, err
		}
	}
	if got == nil {
		t.Fatalf("no terminal callback among %d", len(cbs))
	}
	return got, st, e
}

func (h *harness) newReq(method, path string, body []byte) *http.Request {
	req, _ := http.NewRequest(method, h.base+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+h.token)
	req.Header.Set("VZ-M2M-Token", h.session)
	return req
}

func (h *harness) client() *http.Client { return http.DefaultClient }

// fakeClock is the time of token and session expiry in tests: it moves only when told to.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// withFakeClock makes a harness's simulator read its expiry times from the returned clock.
func withFakeClock(o *Options) *fakeClock {
	c := &fakeClock{t: time.Date(2026, 11, 23, 19, 0, 0, 0, time.UTC)}
	o.clock = c.now
	return c
}
