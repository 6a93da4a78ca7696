package relay_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/relay"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store/sqlite"
	"github.com/fleetform/terraform-provider-thingspace/internal/relayapi"
)

// readSpy records whether a body was read.
type readSpy struct {
	r    io.Reader
	read atomic.Bool
}

func (s *readSpy) Read(p []byte) (int, error) {
	s.read.Store(true)
	return s.r.Read(p)
}

func TestIngestAuthAndLimits(t *testing.T) {
	e := newEnv(t, func(c *relay.Config) { c.MaxBodyBytes = 4096 })
	h := e.relay.IngestHandler()

	t.Run("path token checked before the body is read", func(t *testing.T) {
		spy := &readSpy{r: strings.NewReader(cbBody("R-tok", "Success", 1, "eid", "E1"))}
		req := httptest.NewRequest("POST", relay.IngestPathPrefix+"wrong-token", spy)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized || spy.read.Load() {
			t.Fatalf("code %d, body read %v", rec.Code, spy.read.Load())
		}
		// Both rotation tokens work.
		for _, tok := range []string{"old-token-0000", pathToken} {
			if code, out, _ := e.postTo(tok, cbBody("R-tok", "Success", 1, "eid", "E1")); code != 200 {
				t.Fatalf("token %s: %d %v", tok, code, out)
			}
		}
		if code, _, _ := e.postTo("", cbBody("R-tok", "Success", 1)); code == 200 {
			t.Fatal("empty token accepted")
		}
	})
	t.Run("413 before parsing", func(t *testing.T) {
		big := `{"requestId":"R-big","pad":"` + strings.Repeat("x", 5000) + `"}`
		if code, _, _ := e.post(big); code != http.StatusRequestEntityTooLarge {
			t.Fatalf("content-length: %d", code)
		}
		// Chunked, no Content-Length: MaxBytesReader cuts it.
		spy := &readSpy{r: strings.NewReader(big)}
		req, _ := http.NewRequest("POST", e.ingest.URL+relay.IngestPathPrefix+pathToken, io.NopCloser(spy))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("chunked: %d", resp.StatusCode)
		}
	})
	t.Run("credentials", func(t *testing.T) {
		bad := strings.Replace(cbBody("R-cred", "Success", 1, "eid", "E1"), "tspass", "wrong", 1)
		if code, _, _ := e.post(bad); code != 401 {
			t.Fatalf("wrong body password: %d", code)
		}
		noCreds := `{"requestId":"R-cred","status":"Success","deviceIds":[{"kind":"eid","id":"E1"}]}`
		if code, _, _ := e.post(noCreds); code != 401 {
			t.Fatalf("no credentials: %d", code)
		}
		if code, out, _ := e.post(noCreds, func(r *http.Request) { r.SetBasicAuth("other", "otherpass") }); code != 200 || out["result"] != "stored" {
			t.Fatalf("basic auth: %d %v", code, out)
		}
		if code, _, _ := e.post(noCreds, func(r *http.Request) { r.SetBasicAuth("other", "tspass") }); code != 401 {
			t.Fatalf("mixed pair: %d", code)
		}
		// The account label of the matching pair is stored with the request.
		if r := e.request("R-cred"); r.Account != "globex" {
			t.Fatalf("account %q", r.Account)
		}
	})
	t.Run("quarantine", func(t *testing.T) {
		code, out, _ := e.post(`{"username":"tsuser","password":"tspass","hello":"no request id"}`)
		if code != http.StatusAccepted || out["result"] != "quarantined" {
			t.Fatalf("no requestId: %d %v", code, out)
		}
		if code, _, _ := e.post(`{"username":"tsuser","password":"nope","hello":1}`); code != 401 {
			t.Fatalf("no requestId, wrong creds: %d", code)
		}
		if code, _, _ := e.post(`this is not json`); code != http.StatusAccepted {
			t.Fatalf("non-JSON: %d", code)
		}
		if code, _, _ := e.post(`not json`, func(r *http.Request) { r.SetBasicAuth("tsuser", "bad") }); code != 401 {
			t.Fatalf("non-JSON, wrong basic auth: %d", code)
		}
		if code, _, _ := e.post(`not json`, func(r *http.Request) { r.SetBasicAuth("tsuser", "tspass") }); code != http.StatusAccepted {
			t.Fatalf("non-JSON, basic auth: %d", code)
		}
	})
	t.Run("source allowlist", func(t *testing.T) {
		e2 := newEnv(t, func(c *relay.Config) { c.AllowCIDRs = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} })
		if code, _, _ := e2.post(cbBody("R-cidr", "Success", 1, "eid", "E1")); code != http.StatusForbidden {
			t.Fatalf("outside the allowlist: %d", code)
		}
		e3 := newEnv(t, func(c *relay.Config) { c.AllowCIDRs = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} })
		if code, _, _ := e3.post(cbBody("R-cidr", "Success", 1, "eid", "E1")); code != 200 {
			t.Fatalf("inside the allowlist: %d", code)
		}
	})
}

func TestDuplicates(t *testing.T) {
	e := newEnv(t, nil)
	first := `{"username":"tsuser","password":"tspass","requestId":"R-dup","deviceIds":[{"kind":"eid","id":"E1"}],"status":"Success","callbackCount":1,"maxCallbackThreshold":4,"n":1.50}`
	code, out, _ := e.post(first)
	if code != 200 || out["result"] != "stored" || out["seq"].(float64) != 1 {
		t.Fatalf("first: %d %v", code, out)
	}
	// Retries differ in callbackCount (number or string), key order, white space and the
	// credentials used; all are the same callback.
	for i, retry := range []string{
		`{"requestId":"R-dup","deviceIds":[{"kind":"eid","id":"E1"}],"status":"Success","callbackCount":2,"maxCallbackThreshold":4,"n":1.50,"username":"tsuser","password":"tspass"}`,
		`{ "status" : "Success", "n": 1.50, "callbackCount":"3", "requestId":"R-dup", "deviceIds":[{"id":"E1","kind":"eid"}], "username":"other","password":"otherpass"}`,
		`{"requestId":"R-dup","deviceIds":[{"kind":"eid","id":"E1"}],"status":"Success","n":1.50,"callbackCount":4,"username":"tsuser","password":"tspass","maxCallbackThreshold":5}`,
	} {
		code, out, _ := e.post(retry)
		if code != 200 || out["result"] != "duplicate" || out["seq"].(float64) != 1 {
			t.Fatalf("retry %d: %d %v", i, code, out)
		}
	}
	// Numbers are kept as written: 1.5 is another body than 1.50.
	if _, out, _ := e.post(strings.Replace(first, "1.50", "1.5", 1)); out["result"] != "stored" {
		t.Fatalf("1.5 vs 1.50: %v", out)
	}
	cbs, idx, _ := e.poll("R-dup", 0, "0s", 0)
	if len(cbs.Callbacks) != 2 || idx != 2 {
		t.Fatalf("%d callbacks, index %d", len(cbs.Callbacks), idx)
	}
	if e.metric(`thingspace_relay_callbacks_received_total{result="duplicate"}`) != 3 {
		t.Fatal("duplicate metric")
	}
}

func TestRedaction(t *testing.T) {
	e := newEnv(t, nil)
	secrets := []string{"tspass", "SECRET-DEVICE-PASSWORD", "device-cred-user", "NESTED-PW"}
	body := `{"username":"tsuser","password":"tspass","requestId":"R-red","deviceIds":[{"kind":"eid","id":"E1"}],"status":"Success",
		"deviceResponse":{"deviceProfileResponse":{"deviceIdentifierCollection":[{"kind":"iccid","id":"I1"}],
		"deviceCredential":{"username":"device-cred-user","password":"SECRET-DEVICE-PASSWORD"},"extra":[{"Password":"NESTED-PW"}]}}}`
	if code, _, _ := e.post(body); code != 200 {
		t.Fatal(code)
	}
	if code, _, _ := e.post(`{"username":"tsuser","password":"tspass","deviceCredential":{"password":"SECRET-DEVICE-PASSWORD"}}`); code != 202 {
		t.Fatal(code)
	}
	cbs, _, _ := e.poll("R-red", 0, "0s", 0)
	if len(cbs.Callbacks) != 1 {
		t.Fatal(len(cbs.Callbacks))
	}
	stored := string(cbs.Callbacks[0].Body)
	if !strings.Contains(stored, `"I1"`) || strings.Contains(stored, "deviceCredential") {
		t.Fatalf("stored body %s", stored)
	}
	// Nothing on disk holds a secret.
	disk := e.diskBytes()
	logs := e.logs.String()
	for _, s := range secrets {
		if strings.Contains(string(disk), s) {
			t.Errorf("secret %q on disk", s)
		}
		if strings.Contains(logs, s) {
			t.Errorf("secret %q in the logs", s)
		}
		if strings.Contains(stored, s) {
			t.Errorf("secret %q in the API answer", s)
		}
	}
	if !strings.Contains(logs, "ingest stored") {
		t.Fatalf("debug logs not captured: %s", logs)
	}
}

func TestLongPoll(t *testing.T) {
	e := newEnv(t, func(c *relay.Config) { c.MaxWait = 300 * time.Millisecond })
	t.Run("after=0 on an unknown request blocks until the first callback", func(t *testing.T) {
		e2 := newEnv(t, func(c *relay.Config) { c.PollInterval = time.Hour }) // only the hub wakes it
		done := make(chan relayapi.CallbackPage, 1)
		go func() {
			out, _, _ := e2.poll("R-first", 0, "60s", 0)
			done <- out
		}()
		waitFor(t, "the waiter", func() bool { return e2.metric("thingspace_relay_waiters") == 1 })
		select {
		case <-done:
			t.Fatal("answered before any callback")
		default:
		}
		if code, _, _ := e2.post(cbBody("R-first", "Success", 1, "eid", "E1")); code != 200 {
			t.Fatal(code)
		}
		out := <-done
		if len(out.Callbacks) != 1 || out.NextAfter != 1 || out.Callbacks[0].Seq != 1 {
			t.Fatalf("%+v", out)
		}
	})
	t.Run("immediate return, limit and next_after", func(t *testing.T) {
		for i := 0; i < 25; i++ {
			e.post(cbBody("R-page", "warning", 1, "eid", fmt.Sprintf("E%d", i)))
		}
		var got []int64
		after := int64(0)
		for range 10 {
			out, idx, code := e.poll("R-page", after, "60s", 10)
			if code != 200 || idx != 25 {
				t.Fatalf("code %d index %d", code, idx)
			}
			for _, c := range out.Callbacks {
				got = append(got, c.Seq)
			}
			after = out.NextAfter
			if after == 25 {
				break
			}
		}
		if len(got) != 25 || got[0] != 1 || got[24] != 25 {
			t.Fatalf("seqs %v", got)
		}
	})
	t.Run("wait is capped by max-wait", func(t *testing.T) {
		out, idx, code := e.poll("R-page", 25, "10m", 0)
		if code != 200 || len(out.Callbacks) != 0 || out.NextAfter != 25 || idx != 25 || out.State != "pending" {
			t.Fatalf("%d %d %+v", code, idx, out)
		}
		if e.metric(`thingspace_relay_wait_duration_seconds_count{outcome="timeout"}`) < 1 {
			t.Fatal("timeout not counted")
		}
	})
	t.Run("blocking poll wakes on a new callback", func(t *testing.T) {
		e2 := newEnv(t, func(c *relay.Config) { c.PollInterval = time.Hour })
		e2.post(cbBody("R-wake", "warning", 1, "eid", "E1"))
		done := make(chan relayapi.CallbackPage, 1)
		go func() {
			out, _, _ := e2.poll("R-wake", 1, "60s", 0)
			done <- out
		}()
		waitFor(t, "the waiter", func() bool { return e2.metric("thingspace_relay_waiters") == 1 })
		e2.post(cbBody("R-wake", "Success", 1, "eid", "E1"))
		out := <-done
		if len(out.Callbacks) != 1 || out.Callbacks[0].Seq != 2 || !out.Callbacks[0].Terminal || out.State != "partial" {
			t.Fatalf("%+v", out)
		}
	})
	t.Run("index backwards answers at once", func(t *testing.T) {
		out, idx, code := e.poll("R-page", 1000, "60s", 0)
		if code != 200 || idx != 25 || out.NextAfter != 25 || len(out.Callbacks) != 0 {
			t.Fatalf("%d %d %+v", code, idx, out)
		}
	})
	t.Run("unknown request", func(t *testing.T) {
		r := e.request("R-never")
		if r.State != "unknown" || r.Expected != 0 || r.LastSeq != 0 || r.Devices == nil {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("410 after purge", func(t *testing.T) {
		e.post(cbBody("R-old", "Success", 1, "eid", "E1"))
		if _, err := e.store.Purge(context.Background(), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if code, _ := e.apiDo("GET", "/v1/requests/R-old", apiToken, nil, nil); code != http.StatusGone {
			t.Fatalf("summary: %d", code)
		}
		if _, _, code := e.poll("R-old", 0, "0s", 0); code != http.StatusGone {
			t.Fatalf("long-poll: %d", code)
		}
	})
	t.Run("bad parameters", func(t *testing.T) {
		for _, q := range []string{"after=-1", "after=x", "wait=forever", "limit=0"} {
			if code, _ := e.apiDo("GET", "/v1/requests/R-page/callbacks?"+q, apiToken, nil, nil); code != 400 {
				t.Errorf("%s: %d", q, code)
			}
		}
	})
}

func TestShutdownAnswersLongPollsAndFinishesIngests(t *testing.T) {
	e := newEnv(t, nil)
	const n = 100
	var wg sync.WaitGroup
	codes := make(chan int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, code := e.poll(fmt.Sprintf("R-sd-%d", i%10), 0, "5m", 0)
			codes <- code
		}()
	}
	waitFor(t, "100 waiters", func() bool { return e.metric("thingspace_relay_waiters") == n })

	// An ingest in flight: its Append is held at the gate.
	gate := make(chan struct{})
	e.faulty.gate.Store(&gate)
	ingestDone := make(chan int, 1)
	go func() {
		code, _, _ := e.post(cbBody("R-inflight", "Success", 1, "eid", "E1"))
		ingestDone <- code
	}()
	<-e.faulty.entered

	shutdownDone := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		shutdownDone <- e.relay.Shutdown(ctx)
	}()
	wg.Wait() // every long-poll answered
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Fatalf("long-poll answered %d", c)
		}
	}
	resp, err := http.Get(e.admin.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("readyz while draining: %d", resp.StatusCode)
	}
	select {
	case <-shutdownDone:
		t.Fatal("Shutdown returned with an ingest in flight")
	default:
	}
	e.faulty.gate.Store(nil)
	close(gate)
	if code := <-ingestDone; code != 200 {
		t.Fatalf("in-flight ingest: %d", code)
	}
	if err := <-shutdownDone; err != nil {
		t.Fatal(err)
	}
	// After shutdown: new ingests are refused with 503, never lost silently.
	code, _, h := e.post(cbBody("R-late", "Success", 1, "eid", "E1"))
	if code != 503 || h.Get("Retry-After") == "" {
		t.Fatalf("after shutdown: %d", code)
	}
	if cbs, _ := e.store.Callbacks(context.Background(), "R-inflight", 0, 10); len(cbs) != 1 {
		t.Fatal("in-flight callback not stored")
	}
}

func TestStoreOutageAndRecovery(t *testing.T) {
	e := newEnv(t, nil)
	ready := func() int {
		resp, err := http.Get(e.admin.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if ready() != 200 {
		t.Fatal("not ready")
	}
	e.faulty.fail.Store(true)
	code, _, h := e.post(cbBody("R-out", "Success", 1, "eid", "E1"))
	if code != 503 || h.Get("Retry-After") == "" {
		t.Fatalf("ingest during outage: %d %q", code, h.Get("Retry-After"))
	}
	if code, _, _ := e.post(`not json`); code != 503 {
		t.Fatalf("quarantine during outage: %d", code)
	}
	if ready() != 503 {
		t.Fatal("ready during outage")
	}
	if code, h := e.apiDo("GET", "/v1/requests/R-out", apiToken, nil, nil); code != 503 || h.Get("Retry-After") == "" {
		t.Fatalf("API during outage: %d", code)
	}
	e.faulty.fail.Store(false)
	if ready() != 200 {
		t.Fatal("not ready after recovery")
	}
	code, out, _ := e.post(cbBody("R-out", "Success", 2, "eid", "E1"))
	if code != 200 || out["result"] != "stored" {
		t.Fatalf("after recovery: %d %v", code, out)
	}
	if e.metric(`thingspace_relay_callbacks_received_total{result="store_error"}`) != 2 {
		t.Fatal("store_error metric")
	}
}

func TestScopedTokensAndAPIAuth(t *testing.T) {
	e := newEnv(t, nil)
	e.post(cbBody("R-acme", "Success", 1, "eid", "E1"))
	e.post(strings.NewReplacer("tsuser", "other", "tspass", "otherpass").Replace(cbBody("R-globex", "Success", 1, "eid", "E1")))
	for _, tok := range []string{"", "wrong", apiToken + "x"} {
		if code, h := e.apiDo("GET", "/v1/requests/R-acme", tok, nil, nil); code != 401 || h.Get("WWW-Authenticate") == "" {
			t.Fatalf("token %q: %d", tok, code)
		}
	}
	var r relayapi.RequestSummary
	if code, _ := e.apiDo("GET", "/v1/requests/R-acme", scopedToken, nil, &r); code != 200 || r.State != "partial" || r.Account != "acme" {
		t.Fatalf("own account: %d %+v", code, r)
	}
	r = relayapi.RequestSummary{}
	if code, _ := e.apiDo("GET", "/v1/requests/R-globex", scopedToken, nil, &r); code != 200 || r.State != "unknown" || r.LastSeq != 0 {
		t.Fatalf("other account: %d %+v", code, r)
	}
	var cbs relayapi.CallbackPage
	if code, _ := e.apiDo("GET", "/v1/requests/R-globex/callbacks?after=0&wait=0s", scopedToken, nil, &cbs); code != 200 || len(cbs.Callbacks) != 0 || cbs.State != "unknown" {
		t.Fatalf("other account's callbacks: %d %+v", code, cbs)
	}
	var refs struct{ Requests []relayapi.RequestRef }
	e.apiDo("GET", "/v1/devices/eid:E1/requests", scopedToken, nil, &refs)
	if len(refs.Requests) != 1 || refs.Requests[0].RequestID != "R-acme" {
		t.Fatalf("scoped device index: %+v", refs)
	}
	e.apiDo("GET", "/v1/devices/eid:E1/requests", apiToken, nil, &refs)
	if len(refs.Requests) != 2 {
		t.Fatalf("device index: %+v", refs)
	}
	reg := relayapi.Registration{Account: "globex", Action: "activate", Devices: apiDevices([][]store.DeviceKey{{K("eid", "E9")}})}
	if code, _ := e.apiDo("PUT", "/v1/requests/R-new", scopedToken, reg, nil); code != 403 {
		t.Fatalf("scoped token registering another account: %d", code)
	}
	reg.Account = "acme"
	if code, _ := e.apiDo("PUT", "/v1/requests/R-new", scopedToken, reg, nil); code != 200 {
		t.Fatalf("scoped token registering its account: %d", code)
	}
	// A request created by another account's callbacks cannot be claimed by registering it.
	if code, _ := e.apiDo("PUT", "/v1/requests/R-globex", scopedToken, reg, nil); code != 403 {
		t.Fatalf("scoped token registering another account's request: %d", code)
	}
	r = relayapi.RequestSummary{}
	if code, _ := e.apiDo("GET", "/v1/requests/R-globex", scopedToken, nil, &r); code != 200 || r.State != "unknown" {
		t.Fatalf("other account's request after the refused registration: %d %+v", code, r)
	}
	var info relayapi.Info
	if code, _ := e.apiDo("GET", "/v1/info", scopedToken, nil, &info); code != 200 || len(info.IngestURLSHA256) != 1 ||
		info.IngestURLSHA256[0] != relay.URLHash("https://relay.example.com/callbacks/v1/thingspace/"+pathToken) {
		t.Fatalf("info: %+v", info)
	}
}

func TestRegistrationAndDeviceIndex(t *testing.T) {
	e := newEnv(t, nil)
	// A callback before the registration counts towards it; it is indexed by every identifier
	// it carries (deviceIds and deviceIdentifierCollection), kinds in any case.
	body := `{"username":"tsuser","password":"tspass","requestId":"R-reg","deviceIds":[{"kind":"Eid","id":"E1"}],"status":"SUCCESS",
		"deviceResponse":{"deviceProfileResponse":{"deviceIdentifierCollection":[{"kind":"Iccid","id":"I1"},{"kind":"IMEI","id":"M1"}]}}}`
	if code, _, _ := e.post(body); code != 200 {
		t.Fatal(code)
	}
	devs := [][]store.DeviceKey{{K("eid", "E1"), K("iccid", "I1")}, {K("EID", "E2")}}
	r := e.register("R-reg", "acme", "activate", devs...)
	if r.State != "partial" || r.Expected != 2 || r.TerminalCount != 1 || !r.Devices[0].Terminal || r.Devices[1].Status != "pending" {
		t.Fatalf("%+v", r)
	}
	// Idempotent; a conflicting re-registration is 409.
	e.register("R-reg", "acme", "activate", devs...)
	if code, _ := e.apiDo("PUT", "/v1/requests/R-reg", apiToken, relayapi.Registration{Account: "acme", Action: "activate", Devices: apiDevices(devs)[:1]}, nil); code != 409 {
		t.Fatalf("conflict: %d", code)
	}
	if code, _ := e.apiDo("PUT", "/v1/requests/R-x", apiToken, relayapi.Registration{Account: "acme", Action: "activate"}, nil); code != 400 {
		t.Fatalf("no devices: %d", code)
	}
	for _, key := range []string{"imei:M1", "IMEI:M1", "iccid:I1", "eid:E2"} {
		var refs struct{ Requests []relayapi.RequestRef }
		if code, _ := e.apiDo("GET", "/v1/devices/"+key+"/requests?open=true", apiToken, nil, &refs); code != 200 || len(refs.Requests) != 1 ||
			refs.Requests[0].RequestID != "R-reg" || refs.Requests[0].Action != "activate" || refs.Requests[0].State != "partial" {
			t.Fatalf("%s: %d %+v", key, code, refs)
		}
	}
	e.post(cbBody("R-reg", "Failed", 1, "eid", "E2"))
	r = e.request("R-reg")
	if r.State != "terminal" || r.TerminalCount != 2 || r.Devices[1].Status != "failed" {
		t.Fatalf("%+v", r)
	}
	var refs struct{ Requests []relayapi.RequestRef }
	e.apiDo("GET", "/v1/devices/eid:E2/requests?open=true", apiToken, nil, &refs)
	if len(refs.Requests) != 0 {
		t.Fatalf("open requests of a done device: %+v", refs)
	}
	e.apiDo("GET", "/v1/devices/eid:E2/requests", apiToken, nil, &refs)
	if len(refs.Requests) != 1 {
		t.Fatalf("all requests: %+v", refs)
	}
	if code, _ := e.apiDo("GET", "/v1/devices/nokind/requests", apiToken, nil, nil); code != 400 {
		t.Fatalf("bad key: %d", code)
	}
}

func TestActionAwareOutcome(t *testing.T) {
	e := newEnv(t, nil)
	e.register("R-susp", "acme", "device_suspend", []store.DeviceKey{K("eid", "E1")})
	// The per-profile message of device_suspend is progress; only the device-level one is final.
	perProfile := `{"username":"tsuser","password":"tspass","requestId":"R-susp","deviceIds":[{"kind":"eid","id":"E1"},{"kind":"iccid","id":"I1"}],"status":"Success"}`
	e.post(perProfile)
	if r := e.request("R-susp"); r.State != "pending" || r.Devices[0].Status != "warning" {
		t.Fatalf("after the per-profile message: %+v", r)
	}
	e.post(cbBody("R-susp", "Success", 1, "eid", "E1"))
	if r := e.request("R-susp"); r.State != "terminal" || r.Devices[0].Status != "succeeded" {
		t.Fatalf("after the device-level message: %+v", r)
	}
	// download_enable success is judged by profileStatus.
	e.register("R-de", "acme", "download_enable", []store.DeviceKey{K("eid", "E2")})
	e.post(`{"username":"tsuser","password":"tspass","requestId":"R-de","deviceIds":[{"kind":"eid","id":"E2"}],"status":"Success",
		"deviceResponse":{"deviceProfileResponse":{"profileStatus":"DOWNLOAD_DISABLE"}}}`)
	if r := e.request("R-de"); r.State != "terminal" || r.Devices[0].Status != "failed" {
		t.Fatalf("download_enable: %+v", r)
	}
	// A faultResponse without deviceIds fails every device of its request.
	e.register("R-fault", "acme", "activate", []store.DeviceKey{K("eid", "E3")}, []store.DeviceKey{K("eid", "E4")})
	e.post(`{"username":"tsuser","password":"tspass","requestId":"R-fault","faultResponse":{"faultcode":"X","faultstring":"boom"},"status":"Failed"}`)
	if r := e.request("R-fault"); r.State != "terminal" || r.TerminalCount != 2 {
		t.Fatalf("fault: %+v", r)
	}
}

// TestBulkRequest: 10,000 devices of one request, with interleaved warnings, sent concurrently
// through the ingest handler: terminal exactly when the last device is, gap-free seqs, and a
// late warning does not downgrade it.
func TestBulkRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("bulk test skipped in -short mode")
	}
	e := newEnv(t, nil)
	const n = 10000
	devs := make([][]store.DeviceKey, n)
	for i := range n {
		devs[i] = []store.DeviceKey{K("eid", fmt.Sprintf("E%05d", i)), K("iccid", fmt.Sprintf("I%05d", i))}
	}
	e.register("R-bulk", "acme", "activate", devs...)
	var bodies []string
	for i := 0; i < n-1; i++ {
		if i%4 == 0 {
			bodies = append(bodies, cbBody("R-bulk", "warning", 1, "Eid", fmt.Sprintf("E%05d", i)))
		}
		kind, id := "Eid", fmt.Sprintf("E%05d", i)
		if i%2 == 1 {
			kind, id = "Iccid", fmt.Sprintf("I%05d", i)
		}
		bodies = append(bodies, cbBody("R-bulk", "Success", 1, kind, id))
	}
	// Warnings for every device, sent in the same storm: they never undo a terminal state.
	for i := 0; i < n-1; i += 7 {
		bodies = append(bodies, cbBody("R-bulk", "Warning", 2, "Eid", fmt.Sprintf("E%05d", i)))
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(len(bodies)) {
					return
				}
				if !ingestOnce(e.client, e.ingest.URL, bodies[i]) {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d ingests failed", failed.Load())
	}
	r := e.request("R-bulk")
	if r.State != "partial" || r.TerminalCount != n-1 || r.Expected != n {
		t.Fatalf("before the last device: %s %d/%d", r.State, r.TerminalCount, r.Expected)
	}
	e.post(cbBody("R-bulk", "Success", 1, "eid", fmt.Sprintf("E%05d", n-1)))
	e.post(cbBody("R-bulk", "warning", 9, "eid", fmt.Sprintf("E%05d", n-1)))
	r = e.request("R-bulk")
	if r.State != "terminal" || r.TerminalCount != n {
		t.Fatalf("after the last device: %s %d/%d", r.State, r.TerminalCount, r.Expected)
	}
	for i, d := range r.Devices {
		if !d.Terminal || d.Status != "succeeded" {
			t.Fatalf("device %d: %+v", i, d)
		}
	}
	// Seqs are gap-free, read through the long-poll pages.
	after, count := int64(0), 0
	for range 20 {
		out, _, _ := e.poll("R-bulk", after, "0s", relay.MaxLimit)
		for _, c := range out.Callbacks {
			count++
			if c.Seq != int64(count) {
				t.Fatalf("seq %d at position %d", c.Seq, count)
			}
		}
		if out.NextAfter == after {
			break
		}
		after = out.NextAfter
	}
	if want := len(bodies) + 2; count != want || after != int64(want) {
		t.Fatalf("%d callbacks, next_after %d, want %d", count, after, want)
	}
}

func TestAdminEndpoints(t *testing.T) {
	e := newEnv(t, func(c *relay.Config) { c.Version = "v9.9.9" })
	for _, p := range []string{"/livez", "/readyz", "/healthz", "/version", "/metrics"} {
		resp, err := http.Get(e.admin.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", p, resp.StatusCode)
		}
		if p == "/version" && !strings.Contains(string(b), "v9.9.9") {
			t.Fatalf("version: %s", b)
		}
		if p == "/metrics" {
			for _, m := range []string{"thingspace_relay_callbacks_received_total", "thingspace_relay_callback_ingest_duration_seconds", "thingspace_relay_waiters",
				"thingspace_relay_store_operation_duration_seconds", "thingspace_relay_commit_batch_size_callbacks", "thingspace_relay_build_info", "go_goroutines"} {
				if !strings.Contains(string(b), m) {
					t.Errorf("metric %s missing", m)
				}
			}
		}
	}
}

func TestConfigParsing(t *testing.T) {
	tok, err := relay.ParseAPIToken("t0k=acme, globex")
	if err != nil || tok.Token != "t0k" || len(tok.Accounts) != 2 || tok.Accounts[1] != "globex" {
		t.Fatalf("%+v %v", tok, err)
	}
	if _, err := relay.ParseAPIToken("t0k="); err == nil {
		t.Fatal("empty scope accepted")
	}
	c, err := relay.ParseCredential("user:pa:ss;word;account=acme")
	if err != nil || c.Username != "user" || c.Password != "pa:ss;word" || c.Account != "acme" {
		t.Fatalf("%+v %v", c, err)
	}
	c, err = relay.ParseCredential("user:pass")
	if err != nil || c.Account != "" || c.Password != "pass" {
		t.Fatalf("%+v %v", c, err)
	}
	if _, err := relay.ParseCredential("nocolon"); err == nil {
		t.Fatal("no colon accepted")
	}
	if _, err := relay.New(relay.Config{}); err == nil {
		t.Fatal("no store accepted")
	}
}

func TestRetentionPurge(t *testing.T) {
	e := newEnv(t, func(c *relay.Config) {
		c.Retention = time.Nanosecond
		c.PurgeInterval = 20 * time.Millisecond
	})
	e.post(cbBody("R-ret", "Success", 1, "eid", "E1"))
	waitFor(t, "the purge", func() bool {
		code, _ := e.apiDo("GET", "/v1/requests/R-ret", apiToken, nil, nil)
		return code == http.StatusGone
	})
	if e.metric("thingspace_relay_retention_deleted_total") < 1 {
		t.Fatal("purge not counted")
	}
	// A redelivery after the purge starts the request over.
	if code, out, _ := e.post(cbBody("R-ret", "Success", 2, "eid", "E1")); code != 200 || out["result"] != "stored" {
		t.Fatalf("%d %v", code, out)
	}
}

// hintStore replaces a store's change feed with one the test drives.
type hintStore struct {
	store.Store
	hints chan string
}

func (h *hintStore) Changes(ctx context.Context) (<-chan string, error) {
	out := make(chan string)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case id := <-h.hints:
				select {
				case out <- id:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

// TestWaiterWokenByAnotherInstance: two relays share one database; a waiter on the second is
// woken by a callback ingested by the first, through the store's change hint, or through the
// periodic re-query when no hint comes.
func TestWaiterWokenByAnotherInstance(t *testing.T) {
	a := newEnv(t, nil)
	for _, viaHint := range []bool{true, false} {
		st, err := sqlite.Open(context.Background(), a.dbPath)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		hs := &hintStore{Store: st, hints: make(chan string, 1)}
		poll := time.Hour
		if !viaHint {
			poll = 50 * time.Millisecond
		}
		b := newEnvWith(t, hs, func(c *relay.Config) { c.PollInterval = poll })
		id := fmt.Sprintf("R-multi-%v", viaHint)
		done := make(chan relayapi.CallbackPage, 1)
		go func() {
			out, _, _ := b.poll(id, 0, "60s", 0)
			done <- out
		}()
		waitFor(t, "the waiter", func() bool { return b.metric("thingspace_relay_waiters") == 1 })
		if code, _, _ := a.post(cbBody(id, "Success", 1, "eid", "E1")); code != 200 {
			t.Fatal(code)
		}
		if viaHint {
			hs.hints <- id
		}
		out := <-done
		if len(out.Callbacks) != 1 || out.NextAfter != 1 {
			t.Fatalf("hint %v: %+v", viaHint, out)
		}
		if viaHint && b.metric("thingspace_relay_notifications_received_total") < 1 {
			t.Fatal("hint not counted")
		}
	}
}

// FuzzIngest: the whole ingest path (auth, redaction, hash, callback parser, store) never
// panics and never answers 5xx for a body, whatever it is.
func FuzzIngest(f *testing.F) {
	for _, s := range []string{
		cbBody("R", "Success", 1, "eid", "E1"),
		`{"username":"tsuser","password":"tspass","requestId":7}`,
		`{"username":"tsuser","password":"tspass","RequestId":"R2","Device":[{"Kind":"Eid","Identifier":"x"}],"Status":"SUCCESS"}`,
		`{"username":"tsuser","password":"tspass","requestId":"R3","deviceIds":[[{"kind":"eid","id":"E"}]],"faultResponse":{"faultcode":"x"}}`,
		`{"username":"tsuser","password":"tspass","requestId":"R4","deviceIds":"oops","callbackCount":"x"}`,
		`[]`, `null`, `{"username":1,"password":[]}`, "\x00\xff",
	} {
		f.Add(s)
	}
	e := newEnv(f, nil)
	h := e.relay.IngestHandler()
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest("POST", relay.IngestPathPrefix+pathToken, strings.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 202, 401:
		default:
			t.Fatalf("%q: %d %s", body, rec.Code, rec.Body)
		}
		if strings.Contains(e.logs.String(), "tspass") {
			t.Fatal("credential logged")
		}
	})
}
