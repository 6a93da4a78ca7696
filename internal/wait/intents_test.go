package wait

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/relayapi"
	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// lossyProxy stands between the client and a real relay API. It counts calls by "METHOD path
// prefix", and can lose the answer of the next calls matching one: the relay handles them, the
// client gets a 503 instead (the network failed after the relay committed).
type lossyProxy struct {
	*httptest.Server
	mu    sync.Mutex
	calls map[string]int
	lose  map[string]int
}

func newLossyProxy(t *testing.T, api string) *lossyProxy {
	target, _ := url.Parse(api)
	upstream := httputil.NewSingleHostReverseProxy(target)
	p := &lossyProxy{calls: map[string]int{}, lose: map[string]int{}}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Method + " " + r.URL.Path
		p.mu.Lock()
		lost := ""
		for prefix := range p.calls {
			if strings.HasPrefix(key, prefix) {
				p.calls[prefix]++
			}
		}
		for prefix, n := range p.lose {
			if n > 0 && strings.HasPrefix(key, prefix) {
				p.lose[prefix]--
				lost = prefix
			}
		}
		p.mu.Unlock()
		if lost == "" {
			upstream.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		upstream.ServeHTTP(rec, r)
		w.Header().Set("Retry-After", "0")
		http.Error(w, "answer lost", http.StatusServiceUnavailable)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *lossyProxy) count(prefix string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[prefix]
}

func (p *lossyProxy) watch(prefix string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls[prefix] = 0
}

func (p *lossyProxy) loseNext(prefix string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lose[prefix] = n
}

const hash1 = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"

func relayStatus(err error) int {
	var re *relayapi.Error
	if errors.As(err, &re) {
		return re.Status
	}
	return 0
}

func TestRelayClientIntents(t *testing.T) {
	e := newRelayEnv(t)
	p := newLossyProxy(t, e.api.URL)
	rc := relayapi.NewClient(p.URL, "api-token", nil)
	ctx := context.Background()
	devices := []tsapi.DeviceIDs{
		{{Kind: "EID", ID: "E1"}, {Kind: "iccid", ID: "I1"}, {Kind: "imei", ID: ""}},
		{{Kind: "eid", ID: "E2"}, {Kind: "iccid", ID: "I2"}},
	}
	in, err := rc.PutIntent(ctx, relayapi.Intent{IntentID: "sp:1", Account: "acct", Action: "serviceplan", Devices: devices, BodySHA256: hash1})
	if err != nil {
		t.Fatal(err)
	}
	want := []tsapi.DeviceIDs{{{Kind: "eid", ID: "E1"}, {Kind: "iccid", ID: "I1"}}, devices[1]}
	if in.IntentID != "sp:1" || in.State != relayapi.IntentOpen || in.Attempt != 1 || in.Account != "acct" || in.Action != "serviceplan" ||
		in.BodySHA256 != hash1 || !reflect.DeepEqual(in.Devices, want) || in.CreatedAt.IsZero() || !in.UpdatedAt.Equal(in.CreatedAt) {
		t.Fatalf("written intent %+v", in)
	}
	again, err := rc.PutIntent(ctx, relayapi.Intent{IntentID: "sp:1", Account: "acct", Action: "serviceplan", Devices: devices, BodySHA256: hash1, Attempt: 1})
	if err != nil || !reflect.DeepEqual(again, in) {
		t.Fatalf("rewrite: %+v %v", again, err)
	}
	p.watch("PUT /v1/intents/")
	_, err = rc.PutIntent(ctx, relayapi.Intent{IntentID: "sp:1", Account: "acct", Action: "activate", Devices: devices, BodySHA256: hash1})
	if relayStatus(err) != http.StatusConflict {
		t.Fatalf("conflicting rewrite: %v, want a 409", err)
	}
	if c := p.count("PUT /v1/intents/"); c != 1 {
		t.Fatalf("a 409 was sent %d times, want once (it is not temporary)", c)
	}
	got, err := rc.GetIntent(ctx, "sp:1")
	if err != nil || !reflect.DeepEqual(got, in) {
		t.Fatalf("GetIntent: %+v %v", got, err)
	}
	if _, err := rc.GetIntent(ctx, "nope"); relayStatus(err) != http.StatusNotFound {
		t.Fatalf("GetIntent(unknown): %v, want a 404", err)
	}

	acc, err := rc.UpdateIntent(ctx, "sp:1", relayapi.IntentAccepted, "REQ-1", "")
	if err != nil || acc.State != relayapi.IntentAccepted || acc.RequestID != "REQ-1" {
		t.Fatalf("accept: %+v %v", acc, err)
	}
	sum, err := rc.Request(ctx, "REQ-1")
	if err != nil || sum.Account != "acct" || sum.Action != "serviceplan" || sum.Expected != 2 {
		t.Fatalf("the accepted request is not registered: %+v %v", sum, err)
	}
	refs, err := rc.OpenRequests(ctx, tsapi.DeviceID{Kind: "iccid", ID: "I2"})
	if err != nil || len(refs) != 1 || refs[0].RequestID != "REQ-1" || refs[0].CreatedAt.IsZero() {
		t.Fatalf("open requests %+v %v", refs, err)
	}
	if _, err := rc.UpdateIntent(ctx, "sp:1", relayapi.IntentAccepted, "REQ-1", ""); err != nil {
		t.Fatalf("repeated accept: %v", err)
	}
	if _, err := rc.UpdateIntent(ctx, "sp:1", relayapi.IntentRefused, "", "x"); relayStatus(err) != http.StatusConflict {
		t.Fatalf("refusing an accepted intent: %v, want a 409", err)
	}
	if _, err := rc.UpdateIntent(ctx, "nope", relayapi.IntentRefused, "", "x"); relayStatus(err) != http.StatusNotFound {
		t.Fatalf("UpdateIntent(unknown): %v, want a 404", err)
	}

	// Superseding: a second attempt after the first one's outcome stayed unknown.
	first, err := rc.PutIntent(ctx, relayapi.Intent{IntentID: "sp:2", Account: "acct", Action: "serviceplan", Devices: devices[:1], BodySHA256: hash1})
	if err != nil {
		t.Fatal(err)
	}
	second, err := rc.PutIntent(ctx, relayapi.Intent{IntentID: "sp:3", Account: "acct", Action: "serviceplan", Devices: devices[:1], BodySHA256: hash1,
		Attempt: 2, Supersedes: first.IntentID})
	if err != nil || second.Attempt != 2 || second.Supersedes != "sp:2" {
		t.Fatalf("second attempt: %+v %v", second, err)
	}
	if old, _ := rc.GetIntent(ctx, "sp:2"); old.State != relayapi.IntentResolved || old.Reason != "superseded by sp:3" {
		t.Fatalf("superseded intent %+v", old)
	}
	res, err := rc.UpdateIntent(ctx, "sp:3", relayapi.IntentResolved, "REQ-seen", "a callback after the intent")
	if err != nil || res.State != relayapi.IntentResolved || res.RequestID != "REQ-seen" || res.Reason != "a callback after the intent" {
		t.Fatalf("resolve: %+v %v", res, err)
	}
}

// TestRelayClientIntentAnswersLost: when the relay committed a PUT or PATCH but its answer was
// lost, the client's retry gets the stored intent, and the call succeeds.
func TestRelayClientIntentAnswersLost(t *testing.T) {
	e := newRelayEnv(t)
	p := newLossyProxy(t, e.api.URL)
	rc := relayapi.NewClient(p.URL, "api-token", nil)
	ctx := context.Background()
	p.watch("PUT /v1/intents/")
	p.watch("PATCH /v1/intents/")
	p.loseNext("PUT /v1/intents/", 1)
	in, err := rc.PutIntent(ctx, relayapi.Intent{IntentID: "lost-1", Account: "acct", Action: "activate", BodySHA256: hash1,
		Devices: []tsapi.DeviceIDs{dev("E1", "I1")}})
	if err != nil || in.State != relayapi.IntentOpen || p.count("PUT /v1/intents/") != 2 {
		t.Fatalf("PutIntent with a lost answer: %+v %v (%d calls)", in, err, p.count("PUT /v1/intents/"))
	}
	p.loseNext("PATCH /v1/intents/", 2)
	acc, err := rc.UpdateIntent(ctx, "lost-1", relayapi.IntentAccepted, "REQ-L", "")
	if err != nil || acc.State != relayapi.IntentAccepted || p.count("PATCH /v1/intents/") != 3 {
		t.Fatalf("UpdateIntent with lost answers: %+v %v (%d calls)", acc, err, p.count("PATCH /v1/intents/"))
	}
	if sum, err := rc.Request(ctx, "REQ-L"); err != nil || sum.Expected != 1 {
		t.Fatalf("request %+v %v", sum, err)
	}
}

// TestRelayClientLookupDevices: records in order, merged over identifiers, with the latest
// callback's body; more than MaxLookupDevices devices go in several calls.
func TestRelayClientLookupDevices(t *testing.T) {
	e := newRelayEnv(t)
	p := newLossyProxy(t, e.api.URL)
	p.watch("POST /v1/devices/lookup")
	rc := relayapi.NewClient(p.URL, "api-token", nil)
	ctx := context.Background()
	if recs, now, err := rc.LookupDevices(ctx, nil); err != nil || len(recs) != 0 || !now.IsZero() || p.count("POST /v1/devices/lookup") != 0 {
		t.Fatalf("no devices: %v %v %v", recs, now, err)
	}
	const n = relayapi.MaxLookupDevices + 2345
	devices := make([]tsapi.DeviceIDs, n)
	for i := range devices {
		devices[i] = tsapi.DeviceIDs{{Kind: "Eid", ID: fmt.Sprintf("E%05d", i)}, {Kind: "ICCID", ID: fmt.Sprintf("I%05d", i)},
			{Kind: "mdn", ID: ""}}
	}
	if _, err := rc.PutIntent(ctx, relayapi.Intent{IntentID: "big", Account: "acct", Action: "serviceplan", BodySHA256: hash1,
		Devices: []tsapi.DeviceIDs{devices[3], devices[n-1]}}); err != nil {
		t.Fatal(err)
	}
	if err := rc.Register(ctx, "REQ-A", "acct", tsapi.ActionActivate, []tsapi.DeviceIDs{devices[n-2]}); err != nil {
		t.Fatal(err)
	}
	e.send(t, callback("REQ-A", "Success", "iccid", fmt.Sprintf("I%05d", n-2)))
	e.send(t, callback("REQ-stray", "Failed", "eid", "E00005"))

	before := time.Now()
	recs, now, err := rc.LookupDevices(ctx, devices)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != n || p.count("POST /v1/devices/lookup") != 2 {
		t.Fatalf("%d records in %d calls, want %d in 2", len(recs), p.count("POST /v1/devices/lookup"), n)
	}
	if now.Before(before.Add(-time.Minute)) || now.After(time.Now().Add(time.Minute)) {
		t.Fatalf("now %v", now)
	}
	for _, i := range []int{3, n - 1} {
		if r := recs[i]; len(r.OpenIntents) != 1 || r.OpenIntents[0].IntentID != "big" || len(r.OpenIntents[0].Devices) != 1 ||
			r.OpenIntents[0].Devices[0].Get("eid") != fmt.Sprintf("E%05d", i) {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	if r := recs[n-2]; len(r.Latest) != 1 || r.Latest[0].Action != "activate" || r.Latest[0].RequestID != "REQ-A" ||
		r.Latest[0].Status != "succeeded" || !r.Latest[0].Terminal || len(r.OpenRequests) != 0 {
		t.Fatalf("record %d: %+v", n-2, r)
	}
	r := recs[5]
	if len(r.Latest) != 1 || r.Latest[0].Action != "" || r.Latest[0].RequestID != "REQ-stray" || len(r.OpenRequests) != 1 || r.OpenRequests[0].CreatedAt.IsZero() {
		t.Fatalf("record 5: %+v", r)
	}
	var body struct {
		RequestID string `json:"requestId"`
	}
	if err := json.Unmarshal(r.Latest[0].Body, &body); err != nil || body.RequestID != "REQ-stray" {
		t.Fatalf("latest body %s: %v", r.Latest[0].Body, err)
	}
	if r := recs[7]; r.OpenRequests == nil || r.OpenIntents == nil || r.Latest == nil || len(r.OpenRequests)+len(r.OpenIntents)+len(r.Latest) != 0 {
		t.Fatalf("record of a device the relay does not know: %+v", r)
	}
	// A device without any identifier is the caller's error, not retried.
	if _, _, err := rc.LookupDevices(ctx, []tsapi.DeviceIDs{{{Kind: "eid", ID: ""}}}); relayStatus(err) != http.StatusBadRequest {
		t.Fatalf("a device without identifiers: %v, want a 400", err)
	}
	if c := p.count("POST /v1/devices/lookup"); c != 3 {
		t.Fatalf("%d lookup calls, want 3 (a 400 is not retried)", c)
	}
}
