package wait

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/relay"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store/sqlite"
	"github.com/fleetform/terraform-provider-thingspace/internal/relayapi"
	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// relayEnv is a real relay (embedded SQLite) on 127.0.0.1, with its ingest and API servers.
type relayEnv struct {
	ingest, api *httptest.Server
	apiCalls    atomic.Int64 // long-poll requests seen by the API server
	// purge runs the relay's retention as if everything older than before had expired.
	purge func(before time.Time) (int, error)
}

func newRelayEnv(t *testing.T) *relayEnv {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := relay.New(relay.Config{Store: st, PathTokens: []string{"path-token"},
		Credentials: []relay.Credential{{Username: "cb-user", Password: "cb-pass"}},
		APITokens:   []relay.APIToken{{Token: "api-token"}}})
	if err != nil {
		t.Fatal(err)
	}
	e := &relayEnv{purge: func(before time.Time) (int, error) { return st.Purge(context.Background(), before) }}
	e.ingest = httptest.NewServer(r.IngestHandler())
	apiHandler := r.APIHandler()
	e.api = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.HasSuffix(req.URL.Path, "/callbacks") {
			e.apiCalls.Add(1)
		}
		apiHandler.ServeHTTP(w, req)
	}))
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.Shutdown(sctx)
		e.ingest.Close()
		e.api.Close()
		_ = st.Close()
	})
	return e
}

// send posts a callback to the relay's ingest, as ThingSpace would.
func (e *relayEnv) send(t *testing.T, body map[string]any) {
	t.Helper()
	body["username"], body["password"] = "cb-user", "cb-pass"
	b, _ := json.Marshal(body)
	resp, err := http.Post(e.ingest.URL+"/callbacks/v1/thingspace/path-token", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("ingest answered %d", resp.StatusCode)
	}
}

func callback(requestID, status string, ids ...string) map[string]any {
	var devIDs []map[string]string
	for i := 0; i+1 < len(ids); i += 2 {
		devIDs = append(devIDs, map[string]string{"kind": ids[i], "id": ids[i+1]})
	}
	return map[string]any{"requestId": requestID, "deviceIds": devIDs, "status": status,
		"deviceResponse": map[string]any{"deviceProfileResponse": map[string]any{"state": "ACTIVE", "profileStatus": "ENABLE"}},
		"callbackCount":  1, "maxCallbackThreshold": 4}
}

// statusStub is a StatusReader answering a fixed status, counting calls.
type statusStub struct {
	mu    sync.Mutex
	calls int
	resp  *tsapi.RequestStatusResponse
}

func (s *statusStub) RequestStatus(_ context.Context, _, id string) (*tsapi.RequestStatusResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.resp == nil {
		return &tsapi.RequestStatusResponse{RequestID: id, Status: "Pending"}, nil
	}
	r := *s.resp
	return &r, nil
}

func (s *statusStub) set(r *tsapi.RequestStatusResponse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resp = r
}

func (s *statusStub) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func dev(eid, iccid string) tsapi.DeviceIDs {
	return tsapi.DeviceIDs{{Kind: "eid", ID: eid}, {Kind: "iccid", ID: iccid}}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 500 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("gave up waiting for %s", what)
}

func TestWaitWarningThenSuccessThroughRelay(t *testing.T) {
	e := newRelayEnv(t)
	w := New(Options{Relay: relayapi.NewClient(e.api.URL, "api-token", nil), Status: &statusStub{}, LongPollWait: 5 * time.Second})
	var progress []Progress
	var mu sync.Mutex
	done := make(chan []tsapi.DeviceOutcome, 1)
	go func() {
		out, err := w.Wait(context.Background(), []Target{{Account: "a", RequestID: "r1", Action: tsapi.ActionEnable, Device: dev("E1", "I1")}},
			func(p Progress) { mu.Lock(); progress = append(progress, p); mu.Unlock() })
		if err != nil {
			t.Error(err)
		}
		done <- out
	}()
	e.send(t, callback("r1", "warning", "Eid", "E1"))
	waitFor(t, "the warning to be reported", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(progress) > 0 && progress[len(progress)-1].Warnings == 1
	})
	select {
	case <-done:
		t.Fatal("a warning ended the wait")
	default:
	}
	// A callback for another device of the same request changes nothing for E1.
	e.send(t, callback("r1", "SUCCESS", "eid", "E2"))
	e.send(t, callback("r1", "Success", "ICCID", "I1"))
	out := <-done
	if out[0].Status != tsapi.StatusSucceeded || out[0].Callback == nil {
		t.Fatalf("outcome = %+v", out[0])
	}
	waitFor(t, "the watch to stop", func() bool { return w.activeWatches() == 0 })
}

func TestWaitSharesOneLongPollPerRequest(t *testing.T) {
	e := newRelayEnv(t)
	w := New(Options{Relay: relayapi.NewClient(e.api.URL, "api-token", nil), Status: &statusStub{}, LongPollWait: 5 * time.Second})
	const n = 20
	var wg sync.WaitGroup
	results := make([]tsapi.DeviceOutcome, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := w.Wait(context.Background(), []Target{{Account: "a", RequestID: "bulk", Action: tsapi.ActionActivate,
				Device: dev(fmt.Sprintf("E%d", i), fmt.Sprintf("I%d", i))}}, nil)
			if err != nil {
				t.Error(err)
			}
			results[i] = out[0]
		}()
	}
	waitFor(t, "20 waiters to join one watch", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		wt := w.watches["bulk"]
		if wt == nil {
			return false
		}
		wt.mu.Lock()
		defer wt.mu.Unlock()
		return len(wt.subs) == n
	})
	if got := w.activeWatches(); got != 1 {
		t.Fatalf("watches = %d, want 1", got)
	}
	// Before any callback, one shared loop has one long-poll out (two if its wait ran out on
	// a slow machine); a loop per waiter would have twenty.
	if got := e.apiCalls.Load(); got >= n/2 {
		t.Fatalf("long-poll requests before any callback = %d for %d waiters; they should share one loop", got, n)
	}
	for i := range n {
		status := "SUCCESS"
		if i == 7 {
			body := callback("bulk", "Failed", "eid", "E7")
			body["faultResponse"] = map[string]string{"faultcode": "DeviceProfileService.REQUEST_FAILED.DeviceState.Invalid", "faultstring": "bad state"}
			e.send(t, body)
			continue
		}
		e.send(t, callback("bulk", status, "eid", fmt.Sprintf("E%d", i)))
	}
	wg.Wait()
	for i, o := range results {
		want := tsapi.StatusSucceeded
		if i == 7 {
			want = tsapi.StatusFailed
		}
		if o.Status != want {
			t.Errorf("device %d: %s, want %s", i, o.Status, want)
		}
	}
	if results[7].Err == nil || results[7].Err.Code != "DeviceProfileService.REQUEST_FAILED.DeviceState.Invalid" {
		t.Errorf("failure = %+v", results[7].Err)
	}
	// One loop served all 20: at most one long-poll per callback sent plus the first (the
	// callbacks are sent one by one, and each may end the poll out), not one per waiter each.
	if got := e.apiCalls.Load(); got > 2*n {
		t.Errorf("long-poll requests = %d for %d waiters sharing one request; they should share one loop", got, n)
	}
}

func TestWaitTimeoutNamesPendingDevicesAndRequests(t *testing.T) {
	e := newRelayEnv(t)
	w := New(Options{Relay: relayapi.NewClient(e.api.URL, "api-token", nil), Status: &statusStub{}, LongPollWait: time.Second})
	e.send(t, callback("rq-9", "warning", "eid", "E9"))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := w.Wait(ctx, []Target{
		{Account: "a", RequestID: "rq-9", Action: tsapi.ActionDownloadEnable, Device: dev("E9", "I9")},
		{Account: "a", RequestID: "rq-10", Action: tsapi.ActionActivate, Device: dev("E10", "I10")},
	}, nil)
	var perr *PendingError
	if !errors.As(err, &perr) || len(perr.Pending) != 2 {
		t.Fatalf("err = %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"EID E9", "rq-9", "is warning", "EID E10", "rq-10", "timeout ran out"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "context deadline exceeded") {
		t.Errorf("message leaks the Go error:\n%s", msg)
	}
}

func TestWaitRelayDownAndBack(t *testing.T) {
	e := newRelayEnv(t)
	// A proxy in front of the API that can refuse service, as a relay restart would.
	var down atomic.Bool
	target, _ := url.Parse(e.api.URL)
	upstream := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			w.Header().Set("Retry-After", "0")
			http.Error(w, "restarting", http.StatusServiceUnavailable)
			return
		}
		upstream.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	down.Store(true)
	w := New(Options{Relay: relayapi.NewClient(proxy.URL, "api-token", nil), Status: &statusStub{}, LongPollWait: 200 * time.Millisecond})
	done := make(chan tsapi.DeviceOutcome, 1)
	var sawErr atomic.Bool
	go func() {
		out, err := w.Wait(context.Background(), []Target{{Account: "a", RequestID: "r-down", Action: tsapi.ActionActivate, Device: dev("E1", "I1")}},
			func(p Progress) {
				if p.RelayError != nil {
					sawErr.Store(true)
				}
			})
		if err != nil {
			t.Error(err)
		}
		done <- out[0]
	}()
	e.send(t, callback("r-down", "Success", "eid", "E1"))
	waitFor(t, "the relay error to be reported", sawErr.Load)
	down.Store(false)
	select {
	case o := <-done:
		if o.Status != tsapi.StatusSucceeded {
			t.Fatalf("outcome = %+v", o)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the wait did not resume after the relay came back")
	}
}

func TestWaitByPollingWithoutRelay(t *testing.T) {
	st := &statusStub{}
	w := New(Options{Status: st, PollInterval: 20 * time.Millisecond})
	done := make(chan []tsapi.DeviceOutcome, 1)
	go func() {
		out, err := w.Wait(context.Background(), []Target{
			{Account: "a", RequestID: "p1", Action: tsapi.ActionActivate, Device: dev("E1", "I1")},
			{Account: "a", RequestID: "p1", Action: tsapi.ActionActivate, Device: dev("E2", "I2")},
		}, nil)
		if err != nil {
			t.Error(err)
		}
		done <- out
	}()
	waitFor(t, "a first status poll", func() bool { return st.count() > 0 })
	st.set(&tsapi.RequestStatusResponse{RequestID: "p1", Status: "Pending", SubRequests: []tsapi.SubRequest{
		{IDs: tsapi.DeviceIDs{{Kind: "Eid", ID: "E1"}}, Status: "Success"},
		{IDs: tsapi.DeviceIDs{{Kind: "iccid", ID: "I2"}}, Status: "Failed"},
	}})
	out := <-done
	if out[0].Status != tsapi.StatusSucceeded || out[1].Status != tsapi.StatusFailed || out[1].Err == nil {
		t.Fatalf("outcomes = %+v", out)
	}
}

func TestWaitFallsBackToStatusWhenCallbackNeverCame(t *testing.T) {
	e := newRelayEnv(t)
	st := &statusStub{}
	st.set(&tsapi.RequestStatusResponse{RequestID: "lost", Status: "Success", SubRequests: []tsapi.SubRequest{
		{IDs: tsapi.DeviceIDs{{Kind: "eid", ID: "E1"}}, Status: "Success"}}})
	w := New(Options{Relay: relayapi.NewClient(e.api.URL, "api-token", nil), Status: st,
		StatusPollAfter: 100 * time.Millisecond, PollInterval: 50 * time.Millisecond, LongPollWait: time.Second})
	out, err := w.Wait(context.Background(), []Target{{Account: "a", RequestID: "lost", Action: tsapi.ActionActivate, Device: dev("E1", "I1")}}, nil)
	if err != nil || out[0].Status != tsapi.StatusSucceeded {
		t.Fatalf("out = %+v, err = %v", out, err)
	}
}

// A request purged by the relay's retention while a waiter follows it (410) is finished from
// ThingSpace's request status at once, not after status_poll_after.
func TestWaitAfterRetentionPurgedTheRequest(t *testing.T) {
	e := newRelayEnv(t)
	e.send(t, callback("old", "warning", "eid", "E1"))
	st := &statusStub{}
	w := New(Options{Relay: relayapi.NewClient(e.api.URL, "api-token", nil), Status: st,
		StatusPollAfter: time.Hour, PollInterval: 50 * time.Millisecond, LongPollWait: 300 * time.Millisecond})
	done := make(chan []tsapi.DeviceOutcome, 1)
	go func() {
		out, err := w.Wait(context.Background(), []Target{{Account: "a", RequestID: "old", Action: tsapi.ActionActivate, Device: dev("E1", "I1")}}, nil)
		if err != nil {
			t.Error(err)
		}
		done <- out
	}()
	waitFor(t, "the first long-poll", func() bool { return e.apiCalls.Load() > 0 })
	if n, err := e.purge(time.Now().Add(time.Minute)); err != nil || n == 0 {
		t.Fatalf("purge = %d, %v", n, err)
	}
	st.set(&tsapi.RequestStatusResponse{RequestID: "old", Status: "Success", SubRequests: []tsapi.SubRequest{
		{IDs: tsapi.DeviceIDs{{Kind: "eid", ID: "E1"}}, Status: "Success"}}})
	select {
	case out := <-done:
		if out[0].Status != tsapi.StatusSucceeded {
			t.Fatalf("outcome = %+v", out[0])
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the wait did not fall back to the request status after the relay purged the request")
	}
	if st.count() == 0 {
		t.Fatal("the request status was never read")
	}
}

func TestWaitIncrementalMatchesResolveDevices(t *testing.T) {
	// The watch's incremental bookkeeping must agree with tsapi.ResolveDevices, the
	// reference statement of the completion rules, on a mixed sequence.
	bodies := []string{
		`{"requestId":"r","deviceIds":[{"kind":"eid","id":"A"}],"status":"warning"}`,
		`{"requestId":"r","deviceIds":[{"kind":"Iccid","id":"IB"}],"status":"Failed","faultResponse":{"faultcode":"X","faultstring":"x"}}`,
		`{"requestId":"r","deviceIds":[{"kind":"EID","id":"B"}],"status":"Success"}`,
		`{"requestId":"r","deviceIds":[{"kind":"eid","id":"C"}],"status":"Success"}`,
		`{"requestId":"r","deviceIds":[{"kind":"eid","id":"C"}],"status":"warning"}`,
		`{"requestId":"r","status":"Failed","faultResponse":{"faultcode":"W","faultstring":"request-wide"}}`,
		`{"requestId":"r","deviceIds":[{"kind":"eid","id":"D"}],"status":"Success"}`,
	}
	devices := []tsapi.DeviceIDs{dev("A", "IA"), dev("B", "IB"), dev("C", "IC"), dev("D", "ID"), dev("Z", "IZ")}
	for n := 0; n <= len(bodies); n++ {
		wt := &watch{action: tsapi.ActionActivate, byID: map[string]*idResult{}}
		var cbs []*tsapi.Callback
		for i, b := range bodies[:n] {
			cb, err := tsapi.ParseCallback([]byte(b))
			if err != nil {
				t.Fatal(err)
			}
			cbs = append(cbs, cb)
			wt.addCallback(int64(i+1), cb)
		}
		want := tsapi.ResolveDevices(tsapi.ActionActivate, devices, cbs)
		for i, d := range devices {
			got := wt.evaluate(d)
			if got.Status != want[i].Status || got.Callback != want[i].Callback {
				t.Errorf("after %d callbacks, device %s: incremental %s, reference %s", n, describe(d), got.Status, want[i].Status)
			}
		}
	}
}

func TestRelayClientRegisterAndDeviceIndex(t *testing.T) {
	e := newRelayEnv(t)
	rc := relayapi.NewClient(e.api.URL, "api-token", nil)
	ctx := context.Background()
	if err := rc.Register(ctx, "reg-1", "0000123456-00001", tsapi.ActionActivate,
		[]tsapi.DeviceIDs{{{Kind: "EID", ID: "E1"}, {Kind: "iccid", ID: "I1"}, {Kind: "imei", ID: "M1"}}}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []tsapi.DeviceID{{Kind: "eid", ID: "E1"}, {Kind: "ICCID", ID: "I1"}, {Kind: "imei", ID: "M1"}} {
		refs, err := rc.OpenRequests(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(refs) != 1 || refs[0].RequestID != "reg-1" || refs[0].Action != "activate" {
			t.Fatalf("open requests by %s = %+v", id.Kind, refs)
		}
	}
	e.send(t, callback("reg-1", "Success", "eid", "E1"))
	waitFor(t, "the request to close", func() bool {
		refs, err := rc.OpenRequests(ctx, tsapi.DeviceID{Kind: "eid", ID: "E1"})
		return err == nil && len(refs) == 0
	})
	bad := relayapi.NewClient(e.api.URL, "wrong", nil)
	_, err := bad.OpenRequests(ctx, tsapi.DeviceID{Kind: "eid", ID: "E1"})
	var re *relayapi.Error
	if !errors.As(err, &re) || re.Status != http.StatusUnauthorized || !strings.Contains(err.Error(), "relay_token") {
		t.Fatalf("err = %v, want a 401 that mentions relay_token", err)
	}
}
