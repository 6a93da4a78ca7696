package storetest

// The conformance cases of write-ahead intents and the device lookup. Semantics beyond the doc
// comments of package store:
//   - An intent's identifiers are normalised like a registration's; its Devices compare in any
//     order. Attempt and Supersedes are not part of its identity (a retried write with another
//     attempt number is the same intent).
//   - "latest" counts terminal callbacks that carry one of the device's identifiers; a fault
//     without identifiers names no device and is not counted. The action is the request's
//     registered action at the time of the lookup ("" while it is unregistered).

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store"
)

// Hash is a body hash for test intents.
func Hash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// NewIntent builds an open intent of account "acct" for action with a body hash derived from id.
func NewIntent(id, action string, created time.Time, devs ...[]store.DeviceKey) store.Intent {
	return store.Intent{IntentID: id, Account: "acct", Action: action, BodySHA256: Hash(id), CreatedAt: created, Devices: devs}
}

func putIntent(t *testing.T, s store.Store, in store.Intent) store.PutIntentResult {
	t.Helper()
	res, err := s.PutIntent(ctxT(t), in)
	if err != nil {
		t.Fatalf("PutIntent(%s): %v", in.IntentID, err)
	}
	if res.Intent == nil {
		t.Fatalf("PutIntent(%s): no intent returned", in.IntentID)
	}
	return res
}

func getIntent(t *testing.T, s store.Store, id string, accounts ...string) *store.Intent {
	t.Helper()
	in, err := s.Intent(ctxT(t), id, accounts)
	if err != nil {
		t.Fatalf("Intent(%s): %v", id, err)
	}
	return in
}

func updateIntent(t *testing.T, s store.Store, id string, ch store.IntentChange) store.UpdateIntentResult {
	t.Helper()
	res, err := s.UpdateIntent(ctxT(t), id, ch, nil)
	if err != nil {
		t.Fatalf("UpdateIntent(%s, %+v): %v", id, ch, err)
	}
	return res
}

func lookup(t *testing.T, s store.Store, accounts []string, devs ...[]store.DeviceKey) []store.DeviceRecord {
	t.Helper()
	recs, err := s.LookupDevices(ctxT(t), devs, accounts)
	if err != nil {
		t.Fatalf("LookupDevices: %v", err)
	}
	if len(recs) != len(devs) {
		t.Fatalf("LookupDevices: %d records for %d devices", len(recs), len(devs))
	}
	for i, r := range recs {
		if r.OpenRequests == nil || r.OpenIntents == nil || r.Latest == nil {
			t.Fatalf("record %d has a nil list: %+v", i, r)
		}
	}
	return recs
}

// sameIntent compares intents field by field (times with Equal).
func sameIntent(t *testing.T, got, want *store.Intent) {
	t.Helper()
	g, w := *got, *want
	if !g.CreatedAt.Equal(w.CreatedAt) || !g.UpdatedAt.Equal(w.UpdatedAt) {
		t.Fatalf("intent %s times %v/%v, want %v/%v", g.IntentID, g.CreatedAt, g.UpdatedAt, w.CreatedAt, w.UpdatedAt)
	}
	g.CreatedAt, g.UpdatedAt, w.CreatedAt, w.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("intent\n %+v\nwant\n %+v", g, w)
	}
}

func intentIDs(ins []store.Intent) []string {
	out := []string{}
	for _, in := range ins {
		out = append(out, in.IntentID)
	}
	return out
}

func requestIDs(rs []store.RequestRef) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.RequestID)
	}
	return out
}

func testIntentPut(t *testing.T, s store.Store) {
	in := NewIntent("I1", "serviceplan", at(10),
		[]store.DeviceKey{K("EID", "e1"), K("iccid", "i1"), K("imei", ""), K("eid", "e1")},
		[]store.DeviceKey{K("eid", "e2")})
	res := putIntent(t, s, in)
	want := &store.Intent{IntentID: "I1", Account: "acct", Action: "serviceplan", BodySHA256: Hash("I1"), Attempt: 1,
		State: store.IntentOpen, CreatedAt: at(10), UpdatedAt: at(10),
		Devices: [][]store.DeviceKey{{K("eid", "e1"), K("iccid", "i1")}, {K("eid", "e2")}}}
	if !res.Created || res.Superseded {
		t.Fatalf("first write %+v, want created", res)
	}
	sameIntent(t, res.Intent, want)
	sameIntent(t, getIntent(t, s, "I1"), want)
	sameIntent(t, getIntent(t, s, "I1", "acct"), want)

	// A retry: devices and identifiers in another order, another attempt number and time.
	retry := NewIntent("I1", "serviceplan", at(20), []store.DeviceKey{K("eid", "e2")}, []store.DeviceKey{K("ICCID", "i1"), K("eid", "e1")})
	retry.Attempt = 2
	res = putIntent(t, s, retry)
	if res.Created {
		t.Fatalf("retry created a new intent: %+v", res)
	}
	sameIntent(t, res.Intent, want)

	for name, mod := range map[string]func(*store.Intent){
		"account":      func(in *store.Intent) { in.Account = "other" },
		"action":       func(in *store.Intent) { in.Action = "activate" },
		"body hash":    func(in *store.Intent) { in.BodySHA256 = Hash("other body") },
		"fewer":        func(in *store.Intent) { in.Devices = in.Devices[:1] },
		"another id":   func(in *store.Intent) { in.Devices[1] = []store.DeviceKey{K("eid", "e2"), K("imei", "m2")} },
		"more devices": func(in *store.Intent) { in.Devices = append(in.Devices, []store.DeviceKey{K("eid", "e3")}) },
	} {
		c := NewIntent("I1", "serviceplan", at(30), []store.DeviceKey{K("eid", "e1"), K("iccid", "i1")}, []store.DeviceKey{K("eid", "e2")})
		mod(&c)
		if _, err := s.PutIntent(ctxT(t), c); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("PutIntent with another %s: %v, want ErrConflict", name, err)
		}
	}
	sameIntent(t, getIntent(t, s, "I1"), want)

	if _, err := s.Intent(ctxT(t), "nope", nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Intent(unknown) = %v, want ErrNotFound", err)
	}
	for name, bad := range map[string]store.Intent{
		"no devices":            NewIntent("bad1", "x", at(1)),
		"a device without id":   NewIntent("bad2", "x", at(1), []store.DeviceKey{K("eid", "e1")}, []store.DeviceKey{K("eid", " ")}),
		"no account":            {IntentID: "bad3", Action: "x", Devices: [][]store.DeviceKey{{K("eid", "e1")}}},
		"no action":             {IntentID: "bad4", Account: "a", Devices: [][]store.DeviceKey{{K("eid", "e1")}}},
		"no id":                 {Account: "a", Action: "x", Devices: [][]store.DeviceKey{{K("eid", "e1")}}},
		"a device without keys": NewIntent("bad5", "x", at(1), []store.DeviceKey{}),
	} {
		if _, err := s.PutIntent(ctxT(t), bad); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("PutIntent with %s: %v, want ErrInvalid", name, err)
		}
	}
}

func testIntentSupersedes(t *testing.T, s store.Store) {
	e1 := []store.DeviceKey{K("eid", "e1")}
	putIntent(t, s, NewIntent("A", "serviceplan", at(10), e1))
	b := NewIntent("B", "serviceplan", at(20), e1)
	b.Attempt, b.Supersedes = 2, "A"
	res := putIntent(t, s, b)
	if !res.Created || !res.Superseded || res.Intent.State != store.IntentOpen || res.Intent.Supersedes != "A" || res.Intent.Attempt != 2 {
		t.Fatalf("superseding write %+v", res)
	}
	a := getIntent(t, s, "A")
	if a.State != store.IntentResolved || a.Reason != "superseded by B" || a.RequestID != "" || !a.UpdatedAt.Equal(at(20)) || !a.CreatedAt.Equal(at(10)) {
		t.Fatalf("superseded intent %+v", a)
	}
	if got := intentIDs(lookup(t, s, nil, e1)[0].OpenIntents); !reflect.DeepEqual(got, []string{"B"}) {
		t.Fatalf("open intents after superseding: %v", got)
	}
	// Retrying the superseding write changes nothing.
	if res = putIntent(t, s, b); res.Created || res.Superseded {
		t.Fatalf("retried superseding write %+v", res)
	}
	// Superseding an intent that is no longer open leaves it alone.
	c := NewIntent("C", "serviceplan", at(30), []store.DeviceKey{K("eid", "e3")})
	c.Supersedes = "A"
	if res = putIntent(t, s, c); !res.Created || res.Superseded {
		t.Fatalf("superseding a resolved intent: %+v", res)
	}
	if a2 := getIntent(t, s, "A"); !a2.UpdatedAt.Equal(at(20)) || a2.Reason != "superseded by B" {
		t.Fatalf("resolved intent changed again: %+v", a2)
	}
	// An intent of another account cannot be superseded, and the refused write leaves nothing.
	d := NewIntent("D", "serviceplan", at(40), e1)
	d.Account, d.Supersedes = "other", "B"
	if _, err := s.PutIntent(ctxT(t), d); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("superseding another account's intent: %v, want ErrConflict", err)
	}
	if _, err := s.Intent(ctxT(t), "D", nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("refused write stored: %v", err)
	}
	if got := getIntent(t, s, "B"); got.State != store.IntentOpen {
		t.Fatalf("B after the refused supersede: %+v", got)
	}
	// Superseding an id never written is allowed (it may have been purged).
	e := NewIntent("E", "serviceplan", at(50), []store.DeviceKey{K("eid", "e5")})
	e.Supersedes = "never-written"
	if res = putIntent(t, s, e); !res.Created || res.Superseded {
		t.Fatalf("superseding an unknown intent: %+v", res)
	}
}

func testIntentAccept(t *testing.T, s store.Store) {
	// A callback for the request arrives before the provider hears ThingSpace's answer.
	appendOK(t, s, CB("R", "t1", "succeeded", true, at(5), K("iccid", "i1")))
	devs := [][]store.DeviceKey{{K("eid", "e1"), K("iccid", "i1")}, {K("eid", "e2"), K("iccid", "i2")}}
	putIntent(t, s, NewIntent("I1", "serviceplan", at(10), devs...))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := s.Changes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var res store.UpdateIntentResult
	var once sync.Once
	WaitChange(t, ch, "R", func() {
		once.Do(func() {
			res = updateIntent(t, s, "I1", store.IntentChange{State: store.IntentAccepted, RequestID: "R", Reason: "202", At: at(11)})
		})
	})
	want := &store.Intent{IntentID: "I1", Account: "acct", Action: "serviceplan", BodySHA256: Hash("I1"), Attempt: 1,
		State: store.IntentAccepted, RequestID: "R", Reason: "202", CreatedAt: at(10), UpdatedAt: at(11), Devices: devs}
	if !res.Changed {
		t.Fatalf("accept: %+v", res)
	}
	sameIntent(t, res.Intent, want)
	sameIntent(t, getIntent(t, s, "I1"), want)

	// The request is registered as PUT /v1/requests would, and the early callback counts.
	r := request(t, s, "R")
	wantState(t, r, store.StatePartial, 2, 1)
	if r.Account != "acct" || r.Action != "serviceplan" || !reflect.DeepEqual(sortedKeys(r.Devices[1].IDs), sortedKeys(devs[1])) {
		t.Fatalf("registered request %+v", r)
	}
	wantDevice(t, r, 0, "succeeded", true)
	rec := lookup(t, s, nil, []store.DeviceKey{K("eid", "e2")})[0]
	if len(rec.OpenIntents) != 0 || !reflect.DeepEqual(requestIDs(rec.OpenRequests), []string{"R"}) {
		t.Fatalf("lookup after accept: %+v", rec)
	}

	// The same patch again is a no-op, whatever the reason says; any other change is refused.
	again := updateIntent(t, s, "I1", store.IntentChange{State: store.IntentAccepted, RequestID: "R", Reason: "retry", At: at(12)})
	if again.Changed {
		t.Fatalf("repeated accept changed the intent: %+v", again)
	}
	sameIntent(t, again.Intent, want)
	for _, c := range []store.IntentChange{
		{State: store.IntentAccepted, RequestID: "R2"},
		{State: store.IntentResolved, Reason: "x"},
		{State: store.IntentResolved, RequestID: "R"},
		{State: store.IntentRefused, Reason: "x"},
	} {
		if _, err := s.UpdateIntent(ctxT(t), "I1", c, nil); !errors.Is(err, store.ErrIntentClosed) {
			t.Fatalf("UpdateIntent(accepted intent, %+v) = %v, want ErrIntentClosed", c, err)
		}
	}
	if _, err := s.Request(ctxT(t), "R2", nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused change registered R2: %v", err)
	}
	// Writing the intent again returns it as it is now.
	if res := putIntent(t, s, NewIntent("I1", "serviceplan", at(30), devs...)); res.Created || res.Intent.State != store.IntentAccepted {
		t.Fatalf("rewrite of an accepted intent: %+v", res)
	}
	sameIntent(t, getIntent(t, s, "I1"), want)

	// A request already registered the same way (by PUT /v1/requests) is accepted as well.
	register(t, s, store.Registration{RequestID: "R3", Account: "acct", Action: "activate", CreatedAt: at(40),
		Devices: [][]store.DeviceKey{{K("eid", "e3")}}})
	putIntent(t, s, NewIntent("I3", "activate", at(39), []store.DeviceKey{K("eid", "e3")}))
	if res := updateIntent(t, s, "I3", store.IntentChange{State: store.IntentAccepted, RequestID: "R3", At: at(41)}); !res.Changed {
		t.Fatalf("accept of an already registered request: %+v", res)
	}
}

func testIntentAcceptConflict(t *testing.T, s store.Store) {
	register(t, s, store.Registration{RequestID: "R", Account: "acct", Action: "serviceplan", CreatedAt: at(1),
		Devices: [][]store.DeviceKey{{K("eid", "e9")}}})
	e1 := []store.DeviceKey{K("eid", "e1")}
	putIntent(t, s, NewIntent("I", "serviceplan", at(10), e1))
	if _, err := s.UpdateIntent(ctxT(t), "I", store.IntentChange{State: store.IntentAccepted, RequestID: "R", At: at(11)}, nil); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("accepting with a request registered for other devices: %v, want ErrConflict", err)
	}
	// Nothing changed: the intent is open and blocks e1, the request still names e9 only.
	if in := getIntent(t, s, "I"); in.State != store.IntentOpen || in.RequestID != "" || !in.UpdatedAt.Equal(at(10)) {
		t.Fatalf("intent after the refused accept: %+v", in)
	}
	rec := lookup(t, s, nil, e1)[0]
	if !reflect.DeepEqual(intentIDs(rec.OpenIntents), []string{"I"}) || len(rec.OpenRequests) != 0 {
		t.Fatalf("lookup after the refused accept: %+v", rec)
	}
	r := request(t, s, "R")
	if r.Expected != 1 || r.Devices[0].IDs[0] != K("eid", "e9") {
		t.Fatalf("request after the refused accept: %+v", r)
	}
	// The right request id then goes through.
	if res := updateIntent(t, s, "I", store.IntentChange{State: store.IntentAccepted, RequestID: "R-ok", At: at(12)}); !res.Changed {
		t.Fatalf("accept: %+v", res)
	}
	wantState(t, request(t, s, "R-ok"), store.StatePending, 1, 0)
}

func testIntentRefusedResolved(t *testing.T, s store.Store) {
	e1 := []store.DeviceKey{K("eid", "e1")}
	putIntent(t, s, NewIntent("REF", "serviceplan", at(10), e1))
	res := updateIntent(t, s, "REF", store.IntentChange{State: store.IntentRefused, Reason: "400 invalid plan", At: at(11)})
	if !res.Changed || res.Intent.State != store.IntentRefused || res.Intent.Reason != "400 invalid plan" || !res.Intent.UpdatedAt.Equal(at(11)) {
		t.Fatalf("refused: %+v", res)
	}
	if got := lookup(t, s, nil, e1)[0].OpenIntents; len(got) != 0 {
		t.Fatalf("a refused intent is still open: %+v", got)
	}
	if res = updateIntent(t, s, "REF", store.IntentChange{State: store.IntentRefused, Reason: "retried", At: at(12)}); res.Changed ||
		res.Intent.Reason != "400 invalid plan" || !res.Intent.UpdatedAt.Equal(at(11)) {
		t.Fatalf("repeated refusal: %+v", res)
	}
	for _, c := range []store.IntentChange{{State: store.IntentResolved}, {State: store.IntentAccepted, RequestID: "R"}} {
		if _, err := s.UpdateIntent(ctxT(t), "REF", c, nil); !errors.Is(err, store.ErrIntentClosed) {
			t.Fatalf("UpdateIntent(refused, %+v) = %v, want ErrIntentClosed", c, err)
		}
	}

	putIntent(t, s, NewIntent("RES", "serviceplan", at(20), e1))
	res = updateIntent(t, s, "RES", store.IntentChange{State: store.IntentResolved, RequestID: "R-evidence", Reason: "callback after the intent", At: at(21)})
	if !res.Changed || res.Intent.State != store.IntentResolved || res.Intent.RequestID != "R-evidence" {
		t.Fatalf("resolved: %+v", res)
	}
	if _, err := s.Request(ctxT(t), "R-evidence", nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("resolving registered a request: %v", err)
	}
	if res = updateIntent(t, s, "RES", store.IntentChange{State: store.IntentResolved, RequestID: "R-evidence", At: at(22)}); res.Changed {
		t.Fatalf("repeated resolve: %+v", res)
	}
	if _, err := s.UpdateIntent(ctxT(t), "RES", store.IntentChange{State: store.IntentResolved, At: at(23)}, nil); !errors.Is(err, store.ErrIntentClosed) {
		t.Fatalf("resolve with another request id: %v, want ErrIntentClosed", err)
	}
	putIntent(t, s, NewIntent("RES2", "serviceplan", at(30), e1))
	if res = updateIntent(t, s, "RES2", store.IntentChange{State: store.IntentResolved, Reason: "device state shows the plan", At: at(31)}); !res.Changed || res.Intent.RequestID != "" {
		t.Fatalf("resolve without a request id: %+v", res)
	}

	if _, err := s.UpdateIntent(ctxT(t), "nope", store.IntentChange{State: store.IntentRefused}, nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateIntent(unknown) = %v, want ErrNotFound", err)
	}
	putIntent(t, s, NewIntent("OPEN", "serviceplan", at(40), e1))
	for _, c := range []store.IntentChange{
		{State: store.IntentOpen}, {State: "bogus"}, {State: store.IntentAccepted},
		{State: store.IntentRefused, RequestID: "R"},
	} {
		if _, err := s.UpdateIntent(ctxT(t), "OPEN", c, nil); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("invalid change %+v: %v, want ErrInvalid", c, err)
		}
	}
	if in := getIntent(t, s, "OPEN"); in.State != store.IntentOpen {
		t.Fatalf("invalid changes changed the intent: %+v", in)
	}
}

func testIntentScoping(t *testing.T, s store.Store) {
	e1 := []store.DeviceKey{K("eid", "e1")}
	ia := NewIntent("IA", "serviceplan", at(10), e1)
	ia.Account = "a"
	ib := NewIntent("IB", "serviceplan", at(11), e1)
	ib.Account = "b"
	putIntent(t, s, ia)
	putIntent(t, s, ib)
	if _, err := s.Intent(ctxT(t), "IA", []string{"b"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Intent of another account: %v, want ErrNotFound", err)
	}
	getIntent(t, s, "IA", "b", "a")
	if _, err := s.UpdateIntent(ctxT(t), "IA", store.IntentChange{State: store.IntentRefused}, []string{"b"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateIntent of another account: %v, want ErrNotFound", err)
	}
	if in := getIntent(t, s, "IA"); in.State != store.IntentOpen {
		t.Fatalf("changed through another account: %+v", in)
	}

	two := [][]store.DeviceKey{{K("eid", "e1")}, {K("eid", "e2")}}
	register(t, s, store.Registration{RequestID: "RA", Account: "a", Action: "x", CreatedAt: at(1), Devices: two})
	register(t, s, store.Registration{RequestID: "RB", Account: "b", Action: "y", CreatedAt: at(2), Devices: two})
	appendOK(t, s, CB("RA", "t", "succeeded", true, at(3), K("eid", "e1")), CB("RB", "t", "failed", true, at(4), K("eid", "e1")))
	check := func(accounts []string, intents, requests []string, actions ...string) {
		t.Helper()
		rec := lookup(t, s, accounts, e1)[0]
		var got []string
		for _, l := range rec.Latest {
			got = append(got, l.Action+"/"+l.RequestID)
		}
		if !reflect.DeepEqual(intentIDs(rec.OpenIntents), intents) || !reflect.DeepEqual(requestIDs(rec.OpenRequests), requests) ||
			!reflect.DeepEqual(got, actions) {
			t.Fatalf("lookup for %v: intents %v requests %v latest %v; want %v %v %v",
				accounts, intentIDs(rec.OpenIntents), requestIDs(rec.OpenRequests), got, intents, requests, actions)
		}
	}
	check([]string{"a"}, []string{"IA"}, []string{"RA"}, "x/RA")
	check([]string{"b"}, []string{"IB"}, []string{"RB"}, "y/RB")
	check(nil, []string{"IB", "IA"}, []string{"RB", "RA"}, "x/RA", "y/RB")
	check([]string{"c"}, []string{}, []string{})
}

func testLookupMerge(t *testing.T, s store.Store) {
	register(t, s, store.Registration{RequestID: "R1", Account: "acct", Action: "activate", CreatedAt: at(10),
		Devices: [][]store.DeviceKey{{K("eid", "E")}}})
	// One callback carrying two identifiers of the device, for a request never registered.
	appendOK(t, s, CB("R2", "w", "warning", false, at(20), K("iccid", "I"), K("eid", "E")))
	register(t, s, store.Registration{RequestID: "R3", Account: "acct", Action: "enable", CreatedAt: at(30),
		Devices: [][]store.DeviceKey{{K("imei", "M")}, {K("eid", "other")}}})
	r3 := CB("R3", "t", "succeeded", true, at(31), K("imei", "M"), K("iccid", "I"))
	appendOK(t, s, r3)
	putIntent(t, s, NewIntent("X", "serviceplan", at(40), []store.DeviceKey{K("iccid", "I"), K("imei", "M")}))
	putIntent(t, s, NewIntent("Y", "serviceplan", at(50), []store.DeviceKey{K("eid", "Z")}, []store.DeviceKey{K("eid", "E")}))

	recs := lookup(t, s, nil,
		[]store.DeviceKey{K("EID", "E"), K("iccid", "I"), K("imei", "M"), K("mdn", "")},
		[]store.DeviceKey{K("eid", "Z")},
		[]store.DeviceKey{K("eid", "nobody")})
	r := recs[0]
	if got := requestIDs(r.OpenRequests); !reflect.DeepEqual(got, []string{"R3", "R2", "R1"}) {
		t.Fatalf("open requests %v, want each once, newest first", got)
	}
	if r.OpenRequests[0].Action != "enable" || r.OpenRequests[0].State != store.StatePartial || !r.OpenRequests[0].CreatedAt.Equal(at(30)) ||
		r.OpenRequests[1].Action != "" || !r.OpenRequests[1].CreatedAt.Equal(at(20)) {
		t.Fatalf("open requests %+v", r.OpenRequests)
	}
	if got := intentIDs(r.OpenIntents); !reflect.DeepEqual(got, []string{"Y", "X"}) {
		t.Fatalf("open intents %v, want each once, newest first", got)
	}
	// An intent in a record names only the looked-up device's entries.
	if got := r.OpenIntents[0].Devices; !reflect.DeepEqual(got, [][]store.DeviceKey{{K("eid", "E")}}) {
		t.Fatalf("intent Y narrowed to %v", got)
	}
	if got := r.OpenIntents[1].Devices; len(got) != 1 || len(got[0]) != 2 {
		t.Fatalf("intent X narrowed to %v", got)
	}
	if len(r.Latest) != 1 || r.Latest[0].Action != "enable" || r.Latest[0].RequestID != "R3" || r.Latest[0].Seq != 1 ||
		r.Latest[0].Status != "succeeded" || !r.Latest[0].Terminal || !r.Latest[0].ReceivedAt.Equal(at(31)) || string(r.Latest[0].Body) != string(r3.Body) {
		t.Fatalf("latest %+v", r.Latest)
	}
	z := recs[1]
	if len(z.OpenRequests) != 0 || len(z.Latest) != 0 || !reflect.DeepEqual(intentIDs(z.OpenIntents), []string{"Y"}) ||
		!reflect.DeepEqual(z.OpenIntents[0].Devices, [][]store.DeviceKey{{K("eid", "Z")}}) {
		t.Fatalf("record of Z: %+v", z)
	}
	if n := recs[2]; len(n.OpenRequests)+len(n.OpenIntents)+len(n.Latest) != 0 {
		t.Fatalf("record of an unknown device: %+v", n)
	}
	// The full intent is still there.
	if y := getIntent(t, s, "Y"); len(y.Devices) != 2 {
		t.Fatalf("intent Y %+v", y)
	}
}

func testLookupLatest(t *testing.T, s store.Store) {
	E, I := K("eid", "E"), K("iccid", "I")
	both := []store.DeviceKey{E, I}
	latest := func(devs []store.DeviceKey) map[string]store.LatestCallback {
		t.Helper()
		out := map[string]store.LatestCallback{}
		var prev string
		for i, l := range lookup(t, s, nil, devs)[0].Latest {
			if i > 0 && (l.Action < prev || (l.Action == prev && l.Action != "")) {
				t.Fatalf("latest not ordered by action: %q after %q", l.Action, prev)
			}
			prev = l.Action
			if _, ok := out[l.Action]; !ok { // of the requests nobody registered, the newest
				out[l.Action] = l
			}
		}
		return out
	}
	want := func(got map[string]store.LatestCallback, action, req string, seq int64, status string, cb store.Callback) {
		t.Helper()
		l, ok := got[action]
		if !ok || l.RequestID != req || l.Seq != seq || l.Status != status || !l.Terminal || !l.ReceivedAt.Equal(cb.ReceivedAt) || string(l.Body) != string(cb.Body) {
			t.Fatalf("latest[%q] = %+v (present %v), want %s seq %d %s %s", action, l, ok, req, seq, status, cb.Body)
		}
	}
	// A warning is progress, never "latest".
	appendOK(t, s, CB("U", "w", "warning", false, at(10), E))
	if got := latest(both); len(got) != 0 {
		t.Fatalf("latest from a warning: %+v", got)
	}
	// A request nobody registered: action "".
	u := CB("U", "t", "failed", true, at(11), E)
	appendOK(t, s, u)
	want(latest(both), "", "U", 2, "failed", u)

	register(t, s, store.Registration{RequestID: "A1", Account: "acct", Action: "download_enable", CreatedAt: at(1), Devices: [][]store.DeviceKey{both}})
	register(t, s, store.Registration{RequestID: "A2", Account: "acct", Action: "download_enable", CreatedAt: at(2), Devices: [][]store.DeviceKey{both}})
	a1 := CB("A1", "t", "succeeded", true, at(20), I)
	a2 := CB("A2", "t", "failed", true, at(15), E) // committed later, received earlier
	appendOK(t, s, a1)
	appendOK(t, s, a2)
	got := latest(both)
	want(got, "download_enable", "A1", 1, "succeeded", a1)
	want(got, "", "U", 2, "failed", u)
	// Per identifier: E alone knows only A2 for download_enable.
	want(latest([]store.DeviceKey{E}), "download_enable", "A2", 1, "failed", a2)
	want(latest([]store.DeviceKey{I}), "download_enable", "A1", 1, "succeeded", a1)

	// Newer terminal callbacks win; late warnings and older receipts do not.
	a1b := CB("A1", "t2", "failed", true, at(25), E)
	appendOK(t, s, a1b, CB("A1", "late", "warning", false, at(30), E))
	appendOK(t, s, CB("A1", "old", "succeeded", true, at(19), E, I))
	want(latest(both), "download_enable", "A1", 2, "failed", a1b)
	// Same receipt time in two requests: the higher seq wins.
	register(t, s, store.Registration{RequestID: "A3", Account: "acct", Action: "download_enable", CreatedAt: at(3), Devices: [][]store.DeviceKey{both}})
	appendOK(t, s, CB("A3", "t", "succeeded", true, at(25), I))
	want(latest(both), "download_enable", "A1", 2, "failed", a1b)
	// A fault without identifiers names no device.
	appendOK(t, s, CB("A1", "fault", "failed", true, at(40)))
	want(latest(both), "download_enable", "A1", 2, "failed", a1b)

	// Requests nobody registered are reported one by one, newest first: the newest of them
	// does not hide the others.
	v := CB("V", "t", "succeeded", true, at(13), I)
	appendOK(t, s, v)
	var unregistered []string
	for _, l := range lookup(t, s, nil, both)[0].Latest {
		if l.Action == "" {
			unregistered = append(unregistered, l.RequestID)
		}
	}
	if !reflect.DeepEqual(unregistered, []string{"V", "U"}) {
		t.Fatalf("requests nobody registered in latest: %v, want [V U]", unregistered)
	}

	// Registering U moves its callback from "" to the registered action.
	register(t, s, store.Registration{RequestID: "U", Account: "acct", Action: "activate", CreatedAt: at(12), Devices: [][]store.DeviceKey{both}})
	got = latest(both)
	if l, ok := got[""]; ok && l.RequestID == "U" {
		t.Fatalf("a registered request still reported under \"\": %+v", got)
	}
	want(got, "activate", "U", 2, "failed", u)
}

func testLookupOpenRequests(t *testing.T, s store.Store) {
	register(t, s, store.Registration{RequestID: "R1", Account: "a", Action: "download", CreatedAt: at(10),
		Devices: [][]store.DeviceKey{{K("eid", "e1"), K("iccid", "i1")}}})
	appendOK(t, s, CB("R2", "1", "succeeded", true, at(20), K("iccid", "i1")))
	register(t, s, store.Registration{RequestID: "R3", Account: "a", Action: "enable", CreatedAt: at(30),
		Devices: [][]store.DeviceKey{{K("imei", "m1"), K("eid", "e1")}}})
	appendOK(t, s, CB("R3", "1", "succeeded", true, at(31), K("imei", "m1")))
	for _, k := range []store.DeviceKey{K("eid", "e1"), K("iccid", "i1"), K("imei", "m1"), K("EID", "e1"), K("eid", "none")} {
		want, err := s.DeviceRequests(ctxT(t), k, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := lookup(t, s, nil, []store.DeviceKey{k})[0].OpenRequests
		if len(want) == 0 {
			want = []store.RequestRef{}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%v: lookup %+v, DeviceRequests(open) %+v", k, got, want)
		}
	}
}

func testLookupBulk(t *testing.T, s store.Store) {
	const n = 10000
	reg := store.Registration{RequestID: "BULK", Account: "acct", Action: "serviceplan", CreatedAt: at(0)}
	var devs [][]store.DeviceKey
	for i := 0; i < n; i++ {
		devs = append(devs, []store.DeviceKey{K("eid", fmt.Sprintf("eid%05d", i)), K("iccid", fmt.Sprintf("icc%05d", i))})
	}
	reg.Devices = devs
	register(t, s, reg)
	var cbs []store.Callback
	for i := 0; i < n; i += 2 { // every other device has its terminal callback
		cbs = append(cbs, CB("BULK", fmt.Sprint(i), "succeeded", true, at(1), K("iccid", fmt.Sprintf("icc%05d", i))))
	}
	for i := 0; i < len(cbs); i += 500 {
		appendOK(t, s, cbs[i:min(i+500, len(cbs))]...)
	}
	putIntent(t, s, NewIntent("BIG", "activate", at(2), devs...))
	// Look the devices up in reverse order, with two more identifiers each.
	var in [][]store.DeviceKey
	for i := n - 1; i >= 0; i-- {
		in = append(in, []store.DeviceKey{devs[i][0], devs[i][1], K("imei", fmt.Sprintf("imei%05d", i)), K("mdn", fmt.Sprintf("mdn%05d", i))})
	}
	recs := lookup(t, s, nil, in...)
	for j, r := range recs {
		i := n - 1 - j
		if len(r.OpenRequests) != 1 || r.OpenRequests[0].RequestID != "BULK" || len(r.OpenIntents) != 1 ||
			!reflect.DeepEqual(r.OpenIntents[0].Devices, [][]store.DeviceKey{devs[i]}) {
			t.Fatalf("record %d (device %d): %+v", j, i, r)
		}
		if i%2 == 0 {
			if len(r.Latest) != 1 || r.Latest[0].Seq != int64(i/2+1) {
				t.Fatalf("device %d latest %+v, want seq %d", i, r.Latest, i/2+1)
			}
		} else if len(r.Latest) != 0 {
			t.Fatalf("device %d latest %+v, want none", i, r.Latest)
		}
	}
}

func testPurgeIntents(t *testing.T, s store.Store) {
	old := time.Now().UTC().Add(-48 * time.Hour).Truncate(time.Second)
	recent := time.Now().UTC().Truncate(time.Second)
	e1 := []store.DeviceKey{K("eid", "e1")}
	putIntent(t, s, NewIntent("OLD-OPEN", "serviceplan", old, e1))
	putIntent(t, s, NewIntent("OLD-REFUSED", "serviceplan", old, e1))
	updateIntent(t, s, "OLD-REFUSED", store.IntentChange{State: store.IntentRefused, At: old.Add(time.Minute)})
	putIntent(t, s, NewIntent("OLD-ACCEPTED", "serviceplan", old, e1))
	updateIntent(t, s, "OLD-ACCEPTED", store.IntentChange{State: store.IntentAccepted, RequestID: "R-OLD", At: old.Add(time.Minute)})
	putIntent(t, s, NewIntent("OLD-RESOLVED-LATELY", "serviceplan", old, e1))
	updateIntent(t, s, "OLD-RESOLVED-LATELY", store.IntentChange{State: store.IntentResolved, At: recent})
	if _, err := s.Purge(ctxT(t), recent.Add(-24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"OLD-REFUSED", "OLD-ACCEPTED"} {
		if _, err := s.Intent(ctxT(t), id, nil); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Intent(%s) after purge = %v, want ErrNotFound", id, err)
		}
	}
	// An open intent is kept whatever its age: its outcome is still unknown.
	if in := getIntent(t, s, "OLD-OPEN"); in.State != store.IntentOpen {
		t.Fatalf("old open intent %+v", in)
	}
	if got := intentIDs(lookup(t, s, nil, e1)[0].OpenIntents); !reflect.DeepEqual(got, []string{"OLD-OPEN"}) {
		t.Fatalf("open intents after purge: %v", got)
	}
	getIntent(t, s, "OLD-RESOLVED-LATELY")
	if _, err := s.Request(ctxT(t), "R-OLD", nil); !errors.Is(err, store.ErrGone) {
		t.Fatalf("the old accepted intent's request: %v, want ErrGone", err)
	}
}

// MigrationBackfill checks the schema migration that added the per-identifier record of terminal
// callbacks: a database written before it (simulated by downgrade, which must bring the store's
// database back to the previous schema version, keeping the data, and return the store opened
// again, migrated) answers "latest" for the callbacks it already held.
func MigrationBackfill(t *testing.T, s store.Store, downgrade func(t *testing.T, s store.Store) store.Store) {
	E, I := K("eid", "E"), K("iccid", "I")
	appendOK(t, s, CB("U", "w", "warning", false, at(10), E))
	u := CB("U", "t", "failed", true, at(11), E, I)
	appendOK(t, s, u)
	appendOK(t, s, CB("U", "older", "succeeded", true, at(9), E)) // seq 3, received earlier
	register(t, s, store.Registration{RequestID: "A", Account: "acct", Action: "download_enable", CreatedAt: at(1),
		Devices: [][]store.DeviceKey{{E, I}}})
	a := CB("A", "t", "succeeded", true, at(20), I)
	appendOK(t, s, a)
	s = downgrade(t, s)
	check := func(devs []store.DeviceKey, want map[string]store.Callback) {
		t.Helper()
		got := lookup(t, s, nil, devs)[0].Latest
		if len(got) != len(want) {
			t.Fatalf("latest for %v after the migration: %+v, want %d actions", devs, got, len(want))
		}
		for _, l := range got {
			w, ok := want[l.Action]
			if !ok || l.RequestID != w.RequestID || string(l.Body) != string(w.Body) || !l.ReceivedAt.Equal(w.ReceivedAt) {
				t.Fatalf("latest[%q] after the migration: %+v, want %s", l.Action, l, w.Body)
			}
		}
	}
	check([]store.DeviceKey{E, I}, map[string]store.Callback{"": u, "download_enable": a})
	check([]store.DeviceKey{E}, map[string]store.Callback{"": u})
	// New callbacks keep being recorded.
	b := CB("A", "t2", "failed", true, at(30), E)
	appendOK(t, s, b)
	check([]store.DeviceKey{E}, map[string]store.Callback{"": u, "download_enable": b})
	putIntent(t, s, NewIntent("I", "serviceplan", at(40), []store.DeviceKey{E}))
	if got := intentIDs(lookup(t, s, nil, []store.DeviceKey{I, E})[0].OpenIntents); !reflect.DeepEqual(got, []string{"I"}) {
		t.Fatalf("open intents after the migration: %v", got)
	}
}

// LookupFixture fills s with what a fleet of n devices looks like to the relay mid-rollout, and
// returns the devices as the provider looks them up (eid, iccid, imei and mdn each): every
// device in an older bulk request finished by callbacks carrying eid and iccid, a newer bulk
// request half finished, an open intent covering every device, and as many other devices in
// unrelated requests, so that the indexes are not trivially small. For benchmarks.
func LookupFixture(tb testing.TB, s store.Store, n int) [][]store.DeviceKey {
	ctx := context.Background()
	devs := make([][]store.DeviceKey, n)
	other := make([][]store.DeviceKey, n)
	for i := range devs {
		devs[i] = []store.DeviceKey{K("eid", fmt.Sprintf("8904903200000%019d", i)), K("iccid", fmt.Sprintf("8914800000%010d", i)),
			K("imei", fmt.Sprintf("35693803%07d", i)), K("mdn", fmt.Sprintf("55%08d", i))}
		other[i] = []store.DeviceKey{K("eid", fmt.Sprintf("8904903200001%019d", i)), K("iccid", fmt.Sprintf("8914800001%010d", i))}
	}
	must := func(err error) {
		if err != nil {
			tb.Fatal(err)
		}
	}
	for r, set := range [][][]store.DeviceKey{devs, devs, other} {
		id := fmt.Sprintf("BULK-%d", r)
		action := []string{"activate", "serviceplan", "activate"}[r]
		must(s.Register(ctx, store.Registration{RequestID: id, Account: "acct", Action: action, CreatedAt: at(r), Devices: set}))
		var cbs []store.Callback
		for i, d := range set {
			if r == 1 && i%2 == 1 {
				continue
			}
			c := CB(id, fmt.Sprint(i), "succeeded", true, at(10+r), d[0], d[1])
			c.Body = []byte(fmt.Sprintf(`{"requestId":%q,"deviceIds":[{"kind":"eid","id":%q},{"kind":"iccid","id":%q}],"status":"Success",`+
				`"deviceResponse":{"deviceProfileResponse":{"profileStatus":"ENABLE","profileRole":"LEAD","state":"ACTIVE"}}}`, id, d[0].ID, d[1].ID))
			cbs = append(cbs, c)
		}
		for i := 0; i < len(cbs); i += 500 {
			_, err := s.Append(ctx, cbs[i:min(i+500, len(cbs))])
			must(err)
		}
	}
	_, err := s.PutIntent(ctx, store.Intent{IntentID: "ROLLOUT", Account: "acct", Action: "serviceplan", BodySHA256: Hash("body"),
		CreatedAt: at(20), Devices: devs})
	must(err)
	return devs
}

// BenchLookup is the body of a store's lookup benchmark: one LookupDevices of devs (as
// LookupFixture returned them) per op, with the first record checked against the fixture.
func BenchLookup(b *testing.B, s store.Store, devs [][]store.DeviceKey) {
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		recs, err := s.LookupDevices(context.Background(), devs, nil)
		if err != nil {
			b.Fatal(err)
		}
		if len(recs) != len(devs) || len(recs[0].OpenIntents) != 1 || len(recs[0].Latest) != 2 {
			b.Fatalf("record 0: %+v", recs[0])
		}
	}
}
