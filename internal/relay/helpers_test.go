package relay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/relay"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store/sqlite"
	"github.com/fleetform/terraform-provider-thingspace/internal/relayapi"
	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

const (
	pathToken   = "p4th-t0ken-0123456789abcdef"
	apiToken    = "api-token-all"
	scopedToken = "api-token-acme"
)

// syncBuffer collects log output from many goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// faultyStore wraps a store and fails every call while fail is set; Append may also block on gate.
type faultyStore struct {
	store.Store
	fail atomic.Bool
	gate atomic.Pointer[chan struct{}]
	// entered is signalled when an Append starts waiting at the gate.
	entered chan struct{}
}

var errInjected = errors.New("injected store fault")

func (f *faultyStore) Append(ctx context.Context, cbs []store.Callback) ([]store.AppendResult, error) {
	if g := f.gate.Load(); g != nil {
		select {
		case f.entered <- struct{}{}:
		default:
		}
		<-*g
	}
	if f.fail.Load() {
		return nil, errInjected
	}
	return f.Store.Append(ctx, cbs)
}

func (f *faultyStore) Quarantine(ctx context.Context, q store.Quarantined) error {
	if f.fail.Load() {
		return errInjected
	}
	return f.Store.Quarantine(ctx, q)
}

func (f *faultyStore) Request(ctx context.Context, id string, accounts []string) (*store.Request, error) {
	if f.fail.Load() {
		return nil, errInjected
	}
	return f.Store.Request(ctx, id, accounts)
}

// RequestSummary passes the SQLite store's device-less summary through, so that the relay uses
// it as in production.
func (f *faultyStore) RequestSummary(ctx context.Context, id string, accounts []string) (*store.Request, error) {
	if f.fail.Load() {
		return nil, errInjected
	}
	if sm, ok := f.Store.(interface {
		RequestSummary(context.Context, string, []string) (*store.Request, error)
	}); ok {
		return sm.RequestSummary(ctx, id, accounts)
	}
	return f.Store.Request(ctx, id, accounts)
}

func (f *faultyStore) Ping(ctx context.Context) error {
	if f.fail.Load() {
		return errInjected
	}
	return f.Store.Ping(ctx)
}

type env struct {
	t      testing.TB
	relay  *relay.Relay
	store  *sqlite.Store
	faulty *faultyStore
	dbPath string
	ingest *httptest.Server
	api    *httptest.Server
	admin  *httptest.Server
	logs   *syncBuffer
	client *http.Client
}

func newEnv(t testing.TB, mod func(*relay.Config)) *env {
	t.Helper()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "relay.db")
	st, err := sqlite.Open(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() }) // runs after the relay's cleanup (LIFO)
	e := newEnvWith(t, st, mod)
	e.store, e.dbPath = st, dbPath
	return e
}

// newEnvWith starts a relay over st (which the caller closes).
func newEnvWith(t testing.TB, st store.Store, mod func(*relay.Config)) *env {
	t.Helper()
	e := &env{t: t, logs: &syncBuffer{}}
	e.faulty = &faultyStore{Store: st, entered: make(chan struct{}, 1)}
	cfg := relay.Config{
		Store:      e.faulty,
		PathTokens: []string{"old-token-0000", pathToken},
		Credentials: []relay.Credential{
			{Username: "tsuser", Password: "tspass", Account: "acme"},
			{Username: "other", Password: "otherpass", Account: "globex"},
		},
		APITokens:  []relay.APIToken{{Token: apiToken}, {Token: scopedToken, Accounts: []string{"acme"}}},
		PublicURLs: []string{"https://relay.example.com/callbacks/v1/thingspace/" + pathToken},
		Logger:     slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&cfg)
	}
	r, err := relay.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.relay = r
	e.ingest = httptest.NewServer(r.IngestHandler())
	e.api = httptest.NewServer(r.APIHandler())
	e.admin = httptest.NewServer(r.AdminHandler())
	e.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 200}, Timeout: 2 * time.Minute}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		r.Shutdown(ctx)
		e.ingest.Close()
		e.api.Close()
		e.admin.Close()
	})
	return e
}

// post sends a callback body; it returns the status code and the decoded answer.
func (e *env) post(body string, mods ...func(*http.Request)) (int, map[string]any, http.Header) {
	e.t.Helper()
	return e.postTo(pathToken, body, mods...)
}

func (e *env) postTo(token, body string, mods ...func(*http.Request)) (int, map[string]any, http.Header) {
	e.t.Helper()
	req, err := http.NewRequest("POST", e.ingest.URL+relay.IngestPathPrefix+token, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for _, m := range mods {
		m(req)
	}
	code, header, b := e.send(req)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return code, out, header
}

// diskBytes is what the SQLite store holds on disk: the database and its WAL, byte for byte.
func (e *env) diskBytes() []byte {
	e.t.Helper()
	var disk []byte
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(e.dbPath + suffix)
		if err != nil && !os.IsNotExist(err) {
			e.t.Fatal(err)
		}
		disk = append(disk, b...)
	}
	return disk
}

// ingestOnce posts one callback body to an ingest server, as one of a storm's senders: true
// when the relay acknowledged it (200). A sender counts failures rather than stopping the test
// from its goroutine.
func ingestOnce(client *http.Client, ingestURL, body string) bool {
	resp, err := client.Post(ingestURL+relay.IngestPathPrefix+pathToken, "application/json", strings.NewReader(body))
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == 200
}

// send sends req and returns the answer's status, headers and body.
func (e *env) send(req *http.Request) (int, http.Header, []byte) {
	e.t.Helper()
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// apiCall calls the API with body (nil: none) and returns the answer's status, headers and body.
func (e *env) apiCall(method, path, token string, body io.Reader) (int, http.Header, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.api.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return e.send(req)
}

// apiDo calls the API and decodes a JSON answer into out (when non-nil).
func (e *env) apiDo(method, path, token string, body any, out any) (int, http.Header) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	code, header, b := e.apiCall(method, path, token, rd)
	if out != nil && code < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: decoding %q: %v", method, path, b, err)
		}
	}
	return code, header
}

func (e *env) register(id, account, action string, devices ...[]store.DeviceKey) relayapi.RequestSummary {
	e.t.Helper()
	var out relayapi.RequestSummary
	code, _ := e.apiDo("PUT", "/v1/requests/"+id, apiToken, relayapi.Registration{Account: account, Action: action, Devices: apiDevices(devices)}, &out)
	if code != 200 {
		e.t.Fatalf("register %s: %d", id, code)
	}
	return out
}

func (e *env) request(id string) relayapi.RequestSummary {
	e.t.Helper()
	var out relayapi.RequestSummary
	if code, _ := e.apiDo("GET", "/v1/requests/"+id, apiToken, nil, &out); code != 200 {
		e.t.Fatalf("GET request %s: %d", id, code)
	}
	return out
}

func (e *env) poll(id string, after int64, wait string, limit int) (relayapi.CallbackPage, int64, int) {
	e.t.Helper()
	var out relayapi.CallbackPage
	q := fmt.Sprintf("/v1/requests/%s/callbacks?after=%d", id, after)
	if wait != "" {
		q += "&wait=" + wait
	}
	if limit > 0 {
		q += "&limit=" + strconv.Itoa(limit)
	}
	code, h := e.apiDo("GET", q, apiToken, nil, &out)
	idx, _ := strconv.ParseInt(h.Get("X-Relay-Index"), 10, 64)
	return out, idx, code
}

// metric reads one sample of the admin /metrics page ("thingspace_relay_waiters", `thingspace_relay_callbacks_received_total{result="stored"}`).
func (e *env) metric(name string) float64 {
	e.t.Helper()
	resp, err := http.Get(e.admin.URL + "/metrics")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` ([0-9.e+-]+)$`)
	m := re.FindSubmatch(b)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// waitFor polls cond up to about 20 s; it fails the test when cond never holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 400; i++ {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// cbBody builds a callback body with the credentials ThingSpace adds.
func cbBody(requestID, status string, count int, ids ...string) string {
	var devs []string
	for i := 0; i+1 < len(ids); i += 2 {
		devs = append(devs, fmt.Sprintf(`{"kind":%q,"id":%q}`, ids[i], ids[i+1]))
	}
	return fmt.Sprintf(`{"username":"tsuser","password":"tspass","requestId":%q,"deviceIds":[%s],"status":%q,"callbackCount":%d,"maxCallbackThreshold":4}`,
		requestID, strings.Join(devs, ","), status, count)
}

func K(kind, id string) store.DeviceKey { return store.DeviceKey{Kind: kind, ID: id} }

// apiDevices is devices as the relay's API takes them.
func apiDevices(devs [][]store.DeviceKey) []tsapi.DeviceIDs {
	out := make([]tsapi.DeviceIDs, len(devs))
	for i, d := range devs {
		out[i] = make(tsapi.DeviceIDs, 0, len(d))
		for _, k := range d {
			out[i] = append(out[i], tsapi.DeviceID(k))
		}
	}
	return out
}
