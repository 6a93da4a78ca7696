// Package storetest is the conformance suite every store.Store implementation must pass.
//
// Semantics the suite pins down beyond the doc comments of package store:
//   - A device of a registered request matches a callback when any of the callback's identifiers
//     (kind and id) equals any identifier registered for the device. A terminal callback without
//     identifiers (a faultResponse without deviceIds) matches every device of its request.
//   - A device's Status is the status of its last terminal callback by seq when it has one, else
//     that of its last callback; Terminal is sticky.
//   - State: terminal when Expected > 0 and TerminalCount == Expected; partial when some registered
//     devices are terminal, or, for a request never registered (Expected 0), when it has a terminal
//     callback (it cannot be known to be complete); pending otherwise. Registration recomputes the
//     state from the callbacks already stored. A registered device without callbacks has Status
//     "pending".
//   - Times come from the data, not the wall clock: a request's CreatedAt is its registration's
//     CreatedAt or its first callback's ReceivedAt, its UpdatedAt the latest of those; Purge
//     compares UpdatedAt (and a quarantined body's ReceivedAt) with the cutoff.
//   - DeviceRequests is ordered newest first by CreatedAt.
//   - Callbacks of an unknown or purged request returns no callbacks (a nil error, or ErrNotFound
//     / ErrGone).
package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store"
)

// Base is the time the suite's data starts at (whole seconds, so every store keeps it exactly).
var Base = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// Run runs the conformance suite. open must return a new, empty, migrated store for each call;
// the suite closes it.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"AppendSeqs", testAppendSeqs},
		{"AppendEmpty", testAppendEmpty},
		{"AppendConcurrent", testAppendConcurrent},
		{"Duplicates", testDuplicates},
		{"DuplicateStorm", testDuplicateStorm},
		{"RegisterThenCallbacks", testRegisterThenCallbacks},
		{"CallbacksBeforeRegister", testCallbacksBeforeRegister},
		{"UnregisteredState", testUnregisteredState},
		{"LastTerminalWins", testLastTerminalWins},
		{"FaultWithoutDevices", testFaultWithoutDevices},
		{"KindCaseInsensitive", testKindCase},
		{"RegisterDuringAppends", testRegisterDuringAppends},
		{"RegisterIdempotentAndConflict", testRegisterConflict},
		{"NotFound", testNotFound},
		{"AccountScoping", testAccountScoping},
		{"CallbacksPaging", testPaging},
		{"DeviceRequests", testDeviceRequests},
		{"Quarantine", testQuarantine},
		{"Purge", testPurge},
		{"Changes", testChanges},
		{"PingAndMigrate", testPingMigrate},
		{"Bulk10000Devices", testBulk},
		{"RequestSummary", testRequestSummary},
		{"IntentPutIdempotentAndConflict", testIntentPut},
		{"IntentSupersedes", testIntentSupersedes},
		{"IntentAcceptRegisters", testIntentAccept},
		{"IntentAcceptConflictIsAtomic", testIntentAcceptConflict},
		{"IntentRefusedAndResolved", testIntentRefusedResolved},
		{"IntentAccountScoping", testIntentScoping},
		{"LookupMergesIdentifiers", testLookupMerge},
		{"LookupLatest", testLookupLatest},
		{"LookupOpenRequests", testLookupOpenRequests},
		{"LookupBulk", testLookupBulk},
		{"PurgeIntents", testPurgeIntents},
		{"Outbox", testOutbox},
		{"OutboxConcurrentClaims", testOutboxConcurrentClaims},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// K is a device identifier.
func K(kind, id string) store.DeviceKey { return store.DeviceKey{Kind: kind, ID: id} }

// CB builds a callback; its content hash and body derive from the request id and tag, so equal
// tags give duplicates.
func CB(req, tag, status string, terminal bool, at time.Time, devs ...store.DeviceKey) store.Callback {
	body := fmt.Sprintf(`{"requestId":%q,"status":%q,"tag":%q}`, req, status, tag)
	h := sha256.Sum256([]byte(body))
	return store.Callback{
		RequestID:   req,
		ReceivedAt:  at,
		Status:      status,
		Terminal:    terminal,
		ContentHash: hex.EncodeToString(h[:]),
		Devices:     devs,
		Body:        []byte(body),
	}
}

func appendOK(t *testing.T, s store.Store, cbs ...store.Callback) []store.AppendResult {
	t.Helper()
	res, err := s.Append(ctxT(t), cbs)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if len(res) != len(cbs) {
		t.Fatalf("Append: %d results for %d callbacks", len(res), len(cbs))
	}
	return res
}

func request(t *testing.T, s store.Store, id string, accounts ...string) *store.Request {
	t.Helper()
	r, err := s.Request(ctxT(t), id, accounts)
	if err != nil {
		t.Fatalf("Request(%s): %v", id, err)
	}
	return r
}

func register(t *testing.T, s store.Store, r store.Registration) {
	t.Helper()
	if err := s.Register(ctxT(t), r); err != nil {
		t.Fatalf("Register(%s): %v", r.RequestID, err)
	}
}

func allCallbacks(t *testing.T, s store.Store, id string) []store.Callback {
	t.Helper()
	var out []store.Callback
	after := int64(0)
	for i := 0; i < 10000; i++ {
		page, err := s.Callbacks(ctxT(t), id, after, 1000)
		if err != nil {
			t.Fatalf("Callbacks(%s, %d): %v", id, after, err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		after = page[len(page)-1].Seq
	}
	t.Fatal("Callbacks: too many pages")
	return nil
}

func checkGapFree(t *testing.T, cbs []store.Callback, want int) {
	t.Helper()
	if len(cbs) != want {
		t.Fatalf("%d callbacks stored, want %d", len(cbs), want)
	}
	for i, c := range cbs {
		if c.Seq != int64(i+1) {
			t.Fatalf("callback %d has seq %d, want %d (seqs must be gap-free from 1, in order)", i, c.Seq, i+1)
		}
	}
}

func wantState(t *testing.T, r *store.Request, state string, expected, terminal int) {
	t.Helper()
	if r.State != state || r.Expected != expected || r.TerminalCount != terminal {
		t.Fatalf("request %s: state %s expected %d terminal %d; want %s %d %d",
			r.RequestID, r.State, r.Expected, r.TerminalCount, state, expected, terminal)
	}
}

func wantDevice(t *testing.T, r *store.Request, i int, status string, terminal bool) {
	t.Helper()
	if i >= len(r.Devices) {
		t.Fatalf("request %s has %d devices, want index %d", r.RequestID, len(r.Devices), i)
	}
	d := r.Devices[i]
	if d.Status != status || d.Terminal != terminal {
		t.Fatalf("request %s device %d %v: status %q terminal %v; want %q %v", r.RequestID, i, d.IDs, d.Status, d.Terminal, status, terminal)
	}
}

func sortedKeys(ks []store.DeviceKey) []store.DeviceKey {
	out := append([]store.DeviceKey(nil), ks...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].ID < out[j].ID
	})
	if len(out) == 0 {
		return nil
	}
	return out
}

func at(sec int) time.Time { return Base.Add(time.Duration(sec) * time.Second) }

func testAppendSeqs(t *testing.T, s store.Store) {
	in := []store.Callback{
		CB("A", "1", "warning", false, at(1), K("eid", "e1"), K("iccid", "i1")),
		CB("B", "1", "pending", false, at(2), K("eid", "e2")),
		CB("A", "2", "succeeded", true, at(3), K("eid", "e1")),
		CB("A", "3", "failed", true, at(4)),
		CB("B", "2", "succeeded", true, at(5), K("imei", "m2")),
	}
	in[0].Account = "acct1"
	res := appendOK(t, s, in...)
	want := []int64{1, 1, 2, 3, 2}
	for i, r := range res {
		if r.Seq != want[i] || r.Duplicate {
			t.Fatalf("result %d = %+v, want seq %d not duplicate", i, r, want[i])
		}
	}
	res = appendOK(t, s, CB("A", "4", "warning", false, at(6)))
	if res[0].Seq != 4 {
		t.Fatalf("next seq of A = %d, want 4", res[0].Seq)
	}
	got := allCallbacks(t, s, "A")
	checkGapFree(t, got, 4)
	for i, c := range got[:3] {
		w := []store.Callback{in[0], in[2], in[3]}[i]
		if c.RequestID != w.RequestID || c.Account != w.Account || !c.ReceivedAt.Equal(w.ReceivedAt) ||
			c.Status != w.Status || c.Terminal != w.Terminal || c.ContentHash != w.ContentHash ||
			string(c.Body) != string(w.Body) || !reflect.DeepEqual(sortedKeys(c.Devices), sortedKeys(w.Devices)) {
			t.Fatalf("stored callback %d = %+v\nwant %+v", i, c, w)
		}
	}
	ra := request(t, s, "A")
	if ra.LastSeq != 4 || ra.RequestID != "A" || ra.Expected != 0 || ra.State == store.StateUnknown {
		t.Fatalf("request A = %+v", ra)
	}
	if !ra.CreatedAt.Equal(at(1)) || !ra.UpdatedAt.Equal(at(6)) {
		t.Fatalf("request A created %v updated %v, want %v %v", ra.CreatedAt, ra.UpdatedAt, at(1), at(6))
	}
	checkGapFree(t, allCallbacks(t, s, "B"), 2)
}

func testAppendEmpty(t *testing.T, s store.Store) {
	res, err := s.Append(ctxT(t), nil)
	if err != nil || len(res) != 0 {
		t.Fatalf("Append(nil) = %v, %v", res, err)
	}
}

func testAppendConcurrent(t *testing.T, s store.Store) {
	const workers, per = 16, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	seqs := make(chan int64, workers*per*2)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < per; {
				n := 1 + (w+i)%3 // batches of 1 to 3, some spanning two requests
				var batch []store.Callback
				for j := 0; j < n && i < per; j++ {
					batch = append(batch, CB("C", fmt.Sprintf("w%d-%d", w, i), "warning", false, at(i), K("eid", fmt.Sprint(w))))
					i++
				}
				batch = append(batch, CB("D", fmt.Sprintf("w%d-%d", w, i), "warning", false, at(i)))
				res, err := s.Append(context.Background(), batch)
				if err != nil {
					errs <- err
					return
				}
				for k, r := range res {
					if r.Duplicate {
						errs <- fmt.Errorf("unexpected duplicate %+v", r)
						return
					}
					if batch[k].RequestID == "C" {
						seqs <- r.Seq
					}
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	close(seqs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for q := range seqs {
		if seen[q] {
			t.Fatalf("seq %d given twice", q)
		}
		seen[q] = true
	}
	checkGapFree(t, allCallbacks(t, s, "C"), workers*per)
	if len(seen) != workers*per {
		t.Fatalf("%d seqs returned, want %d", len(seen), workers*per)
	}
	d := allCallbacks(t, s, "D")
	checkGapFree(t, d, len(d))
	if r := request(t, s, "C"); r.LastSeq != workers*per {
		t.Fatalf("LastSeq %d, want %d", r.LastSeq, workers*per)
	}
}

func testDuplicates(t *testing.T, s store.Store) {
	x := CB("R", "x", "succeeded", true, at(1), K("eid", "e1"))
	res := appendOK(t, s, x)
	if res[0].Seq != 1 || res[0].Duplicate {
		t.Fatalf("first append %+v", res[0])
	}
	retry := x
	retry.ReceivedAt = at(100) // a redelivery: same hash, later
	y := CB("R", "y", "warning", false, at(101), K("eid", "e2"))
	res = appendOK(t, s, retry, y, y, x)
	want := []store.AppendResult{{Seq: 1, Duplicate: true}, {Seq: 2}, {Seq: 2, Duplicate: true}, {Seq: 1, Duplicate: true}}
	if !reflect.DeepEqual(res, want) {
		t.Fatalf("results %+v, want %+v", res, want)
	}
	// The same content for another request is not a duplicate.
	other := x
	other.RequestID = "R2"
	if res = appendOK(t, s, other); res[0].Duplicate || res[0].Seq != 1 {
		t.Fatalf("other request: %+v", res[0])
	}
	got := allCallbacks(t, s, "R")
	checkGapFree(t, got, 2)
	if !got[0].ReceivedAt.Equal(at(1)) {
		t.Fatalf("duplicate changed the stored callback: %+v", got[0])
	}
	if r := request(t, s, "R"); r.LastSeq != 2 {
		t.Fatalf("LastSeq %d, want 2", r.LastSeq)
	}
}

func testDuplicateStorm(t *testing.T, s store.Store) {
	const workers, n = 8, 60
	var cbs []store.Callback
	for i := 0; i < n; i++ {
		cbs = append(cbs, CB("S", fmt.Sprint(i), "succeeded", true, at(i), K("eid", fmt.Sprint(i))))
	}
	type out struct {
		hash string
		res  store.AppendResult
	}
	results := make(chan out, workers*n)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(w)))
			order := rng.Perm(n)
			for i := 0; i < n; {
				size := 1 + rng.Intn(4)
				var batch []store.Callback
				for ; size > 0 && i < n; size-- {
					batch = append(batch, cbs[order[i]])
					i++
				}
				res, err := s.Append(context.Background(), batch)
				if err != nil {
					errs <- err
					return
				}
				for k, r := range res {
					results <- out{batch[k].ContentHash, r}
				}
			}
		}(w)
	}
	wg.Wait()
	close(results)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seqOf := map[string]int64{}
	firsts := map[string]int{}
	for o := range results {
		if q, ok := seqOf[o.hash]; ok && q != o.res.Seq {
			t.Fatalf("hash %s got seqs %d and %d", o.hash[:8], q, o.res.Seq)
		}
		seqOf[o.hash] = o.res.Seq
		if !o.res.Duplicate {
			firsts[o.hash]++
		}
	}
	for _, c := range cbs {
		if firsts[c.ContentHash] != 1 {
			t.Fatalf("callback %s stored %d times (non-duplicate results)", c.Body, firsts[c.ContentHash])
		}
	}
	got := allCallbacks(t, s, "S")
	checkGapFree(t, got, n)
	for _, c := range got {
		if seqOf[c.ContentHash] != c.Seq {
			t.Fatalf("stored seq %d, Append returned %d", c.Seq, seqOf[c.ContentHash])
		}
	}
}

func threeDevices(id string) store.Registration {
	return store.Registration{
		RequestID: id, Account: "acct", Action: "download_enable", CreatedAt: at(0),
		Devices: [][]store.DeviceKey{
			{K("eid", "e1"), K("iccid", "i1")},
			{K("eid", "e2"), K("iccid", "i2")},
			{K("eid", "e3"), K("imei", "m3")},
		},
	}
}

func testRegisterThenCallbacks(t *testing.T, s store.Store) {
	reg := threeDevices("R")
	register(t, s, reg)
	r := request(t, s, "R")
	wantState(t, r, store.StatePending, 3, 0)
	if r.Account != "acct" || r.Action != "download_enable" || !r.CreatedAt.Equal(at(0)) || r.LastSeq != 0 || len(r.Devices) != 3 {
		t.Fatalf("registered request %+v", r)
	}
	for i, d := range r.Devices {
		if !reflect.DeepEqual(sortedKeys(d.IDs), sortedKeys(reg.Devices[i])) || d.Terminal || d.Status != store.StatePending {
			t.Fatalf("device %d = %+v, want ids %v, pending, not terminal", i, d, reg.Devices[i])
		}
	}
	appendOK(t, s, CB("R", "w1", "warning", false, at(1), K("eid", "e1")))
	r = request(t, s, "R")
	wantState(t, r, store.StatePending, 3, 0)
	wantDevice(t, r, 0, "warning", false)

	// Terminal for device 1 through its other identifier.
	appendOK(t, s, CB("R", "t1", "succeeded", true, at(2), K("iccid", "i1")))
	r = request(t, s, "R")
	wantState(t, r, store.StatePartial, 3, 1)
	wantDevice(t, r, 0, "succeeded", true)

	// A second terminal row and a late warning for the same device: still one device.
	appendOK(t, s, CB("R", "t1b", "succeeded", true, at(3), K("eid", "e1"), K("iccid", "i1")),
		CB("R", "w1b", "warning", false, at(4), K("eid", "e1")))
	r = request(t, s, "R")
	wantState(t, r, store.StatePartial, 3, 1)
	wantDevice(t, r, 0, "succeeded", true)

	// Device 2, and device 3 through one overlapping identifier among unknown ones.
	appendOK(t, s, CB("R", "t2", "failed", true, at(5), K("eid", "e2")))
	r = request(t, s, "R")
	wantState(t, r, store.StatePartial, 3, 2)
	appendOK(t, s, CB("R", "t3", "succeeded", true, at(6), K("iccid", "unknown"), K("imei", "m3")))
	r = request(t, s, "R")
	wantState(t, r, store.StateTerminal, 3, 3)
	wantDevice(t, r, 1, "failed", true)
	wantDevice(t, r, 2, "succeeded", true)

	// Sticky: late warnings never downgrade the request or a device.
	appendOK(t, s, CB("R", "late", "warning", false, at(7), K("eid", "e2")), CB("R", "late-all", "warning", false, at(8)))
	r = request(t, s, "R")
	wantState(t, r, store.StateTerminal, 3, 3)
	wantDevice(t, r, 1, "failed", true)
	if r.LastSeq != 8 || !r.UpdatedAt.Equal(at(8)) {
		t.Fatalf("LastSeq %d UpdatedAt %v, want 8 %v", r.LastSeq, r.UpdatedAt, at(8))
	}
	// A callback for an identifier of no registered device is stored and changes nothing.
	appendOK(t, s, CB("R", "stranger", "failed", true, at(9), K("eid", "e9")))
	wantState(t, request(t, s, "R"), store.StateTerminal, 3, 3)
}

func testCallbacksBeforeRegister(t *testing.T, s store.Store) {
	appendOK(t, s,
		CB("R", "w1", "warning", false, at(1), K("eid", "e1")),
		CB("R", "t1", "succeeded", true, at(2), K("iccid", "i1")),
		CB("R", "t1b", "succeeded", true, at(3), K("eid", "e1")),
		CB("R", "w2", "warning", false, at(4), K("iccid", "i2")))
	register(t, s, threeDevices("R"))
	r := request(t, s, "R")
	wantState(t, r, store.StatePartial, 3, 1)
	wantDevice(t, r, 0, "succeeded", true)
	wantDevice(t, r, 1, "warning", false)
	if r.LastSeq != 4 || r.Account != "acct" || r.Action != "download_enable" {
		t.Fatalf("request %+v", r)
	}
	appendOK(t, s, CB("R", "t2", "succeeded", true, at(5), K("eid", "e2")), CB("R", "t3", "failed", true, at(6), K("imei", "m3")))
	wantState(t, request(t, s, "R"), store.StateTerminal, 3, 3)

	// All callbacks before the registration: terminal as soon as it is registered.
	appendOK(t, s, CB("Q", "t1", "succeeded", true, at(1), K("eid", "e1")), CB("Q", "t2", "succeeded", true, at(2), K("eid", "e2")))
	register(t, s, store.Registration{RequestID: "Q", Account: "acct", Action: "a", CreatedAt: at(3),
		Devices: [][]store.DeviceKey{{K("eid", "e1")}, {K("eid", "e2")}}})
	wantState(t, request(t, s, "Q"), store.StateTerminal, 2, 2)
}

func testUnregisteredState(t *testing.T, s store.Store) {
	appendOK(t, s, CB("U", "w", "warning", false, at(1), K("eid", "e1")))
	r := request(t, s, "U")
	wantState(t, r, store.StatePending, 0, 0)
	if len(r.Devices) != 0 {
		t.Fatalf("unregistered request has devices %+v", r.Devices)
	}
	appendOK(t, s, CB("U", "t", "succeeded", true, at(2), K("eid", "e1")))
	if r = request(t, s, "U"); r.State != store.StatePartial || r.Expected != 0 {
		t.Fatalf("unregistered request with a terminal callback: %+v, want partial (never terminal unregistered)", r)
	}
	// Registering recomputes from the stored callbacks.
	register(t, s, store.Registration{RequestID: "U", Action: "a", CreatedAt: at(0),
		Devices: [][]store.DeviceKey{{K("eid", "e1")}, {K("eid", "e2")}}})
	wantState(t, request(t, s, "U"), store.StatePartial, 2, 1)
}

func testLastTerminalWins(t *testing.T, s store.Store) {
	register(t, s, store.Registration{RequestID: "L", Account: "a", Action: "x", CreatedAt: at(0),
		Devices: [][]store.DeviceKey{{K("eid", "e1")}, {K("eid", "e2")}}})
	appendOK(t, s,
		CB("L", "1", "failed", true, at(1), K("eid", "e1")),
		CB("L", "2", "warning", false, at(2), K("eid", "e1")),
		CB("L", "3", "succeeded", true, at(3), K("eid", "e1")),
		CB("L", "4", "warning", false, at(4), K("eid", "e1")),
		CB("L", "5", "succeeded", true, at(5), K("eid", "e2")))
	appendOK(t, s, CB("L", "6", "failed", true, at(6), K("eid", "e2")))
	r := request(t, s, "L")
	wantState(t, r, store.StateTerminal, 2, 2)
	wantDevice(t, r, 0, "succeeded", true)
	wantDevice(t, r, 1, "failed", true)
}

func testFaultWithoutDevices(t *testing.T, s store.Store) {
	register(t, s, threeDevices("F"))
	appendOK(t, s, CB("F", "ok1", "succeeded", true, at(1), K("eid", "e1")), CB("F", "w2", "warning", false, at(2), K("eid", "e2")))
	wantState(t, request(t, s, "F"), store.StatePartial, 3, 1)
	appendOK(t, s, CB("F", "fault", "failed", true, at(3)))
	r := request(t, s, "F")
	wantState(t, r, store.StateTerminal, 3, 3)
	for i := range 3 {
		wantDevice(t, r, i, "failed", true)
	}
	// Before registration too.
	appendOK(t, s, CB("G", "fault", "failed", true, at(1)))
	register(t, s, threeDevices("G"))
	wantState(t, request(t, s, "G"), store.StateTerminal, 3, 3)
}

func testKindCase(t *testing.T, s store.Store) {
	register(t, s, store.Registration{RequestID: "K", Account: "a", Action: "x", CreatedAt: at(0),
		Devices: [][]store.DeviceKey{{K("EID", "e1")}, {K("iccid", "i2")}}})
	appendOK(t, s, CB("K", "1", "succeeded", true, at(1), K("eid", "e1")), CB("K", "2", "succeeded", true, at(2), K("ICCID", "i2")))
	wantState(t, request(t, s, "K"), store.StateTerminal, 2, 2)
	for _, k := range []store.DeviceKey{K("eid", "e1"), K("Eid", "e1"), K("iccid", "i2"), K("ICCID", "i2")} {
		refs, err := s.DeviceRequests(ctxT(t), k, false, nil)
		if err != nil || len(refs) != 1 || refs[0].RequestID != "K" {
			t.Fatalf("DeviceRequests(%v) = %v, %v", k, refs, err)
		}
	}
}

// A registration racing with the callbacks of its devices: whatever the interleaving, every
// callback counts exactly once.
func testRegisterDuringAppends(t *testing.T, s store.Store) {
	const devices, workers = 200, 4
	reg := store.Registration{RequestID: "RACE", Account: "a", Action: "x", CreatedAt: at(0)}
	for i := 0; i < devices; i++ {
		reg.Devices = append(reg.Devices, []store.DeviceKey{K("eid", fmt.Sprint(i))})
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers+1)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < devices; i += workers {
				batch := []store.Callback{
					CB("RACE", fmt.Sprint("w", i), "warning", false, at(1), K("eid", fmt.Sprint(i))),
					CB("RACE", fmt.Sprint("t", i), "succeeded", true, at(2), K("eid", fmt.Sprint(i))),
				}
				if _, err := s.Append(context.Background(), batch); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := s.Register(context.Background(), reg); err != nil {
			errs <- err
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	r := request(t, s, "RACE")
	wantState(t, r, store.StateTerminal, devices, devices)
	checkGapFree(t, allCallbacks(t, s, "RACE"), 2*devices)
}

func testRegisterConflict(t *testing.T, s store.Store) {
	reg := threeDevices("R")
	register(t, s, reg)
	register(t, s, reg)
	again := threeDevices("R")
	again.CreatedAt = at(50) // a retried PUT
	register(t, s, again)
	other := threeDevices("R")
	other.Devices = other.Devices[:2]
	if err := s.Register(ctxT(t), other); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Register with other devices: %v, want ErrConflict", err)
	}
	other = threeDevices("R")
	other.Devices[2] = []store.DeviceKey{K("eid", "e3"), K("imei", "m4")}
	if err := s.Register(ctxT(t), other); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Register with another identifier: %v, want ErrConflict", err)
	}
	other = threeDevices("R")
	other.Account = "someone-else"
	if err := s.Register(ctxT(t), other); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Register with another account: %v, want ErrConflict", err)
	}
	r := request(t, s, "R")
	wantState(t, r, store.StatePending, 3, 0)
	if r.Account != "acct" {
		t.Fatalf("account %q after conflicts", r.Account)
	}
}

func testNotFound(t *testing.T, s store.Store) {
	if _, err := s.Request(ctxT(t), "nope", nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Request(unknown) = %v, want ErrNotFound", err)
	}
	cbs, err := s.Callbacks(ctxT(t), "nope", 0, 10)
	if len(cbs) != 0 || (err != nil && !errors.Is(err, store.ErrNotFound)) {
		t.Fatalf("Callbacks(unknown) = %v, %v", cbs, err)
	}
	refs, err := s.DeviceRequests(ctxT(t), K("eid", "nobody"), false, nil)
	if err != nil || len(refs) != 0 {
		t.Fatalf("DeviceRequests(unknown) = %v, %v", refs, err)
	}
}

func testAccountScoping(t *testing.T, s store.Store) {
	register(t, s, store.Registration{RequestID: "RA", Account: "a", Action: "x", CreatedAt: at(1), Devices: [][]store.DeviceKey{{K("eid", "shared")}}})
	register(t, s, store.Registration{RequestID: "RB", Account: "b", Action: "y", CreatedAt: at(2), Devices: [][]store.DeviceKey{{K("eid", "shared")}}})
	c := CB("RC", "1", "warning", false, at(3), K("eid", "shared"))
	c.Account = "a"
	appendOK(t, s, c)

	for _, tc := range []struct {
		id       string
		accounts []string
		ok       bool
	}{
		{"RA", nil, true}, {"RA", []string{"a"}, true}, {"RA", []string{"b"}, false}, {"RA", []string{"b", "a"}, true},
		{"RB", []string{"a"}, false}, {"RB", []string{"b"}, true},
		{"RC", []string{"a"}, true}, {"RC", []string{"b"}, false}, {"RC", nil, true},
	} {
		r, err := s.Request(ctxT(t), tc.id, tc.accounts)
		if tc.ok && (err != nil || r.RequestID != tc.id) {
			t.Fatalf("Request(%s, %v) = %v, %v", tc.id, tc.accounts, r, err)
		}
		if !tc.ok && !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Request(%s, %v) = %v, want ErrNotFound", tc.id, tc.accounts, err)
		}
	}
	if r := request(t, s, "RC"); r.Account != "a" {
		t.Fatalf("callback-created request account %q, want a", r.Account)
	}
	ids := func(accounts ...string) []string {
		refs, err := s.DeviceRequests(ctxT(t), K("eid", "shared"), false, accounts)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range refs {
			out = append(out, r.RequestID)
		}
		return out
	}
	if got := ids(); !reflect.DeepEqual(got, []string{"RC", "RB", "RA"}) {
		t.Fatalf("DeviceRequests(all) = %v", got)
	}
	if got := ids("b"); !reflect.DeepEqual(got, []string{"RB"}) {
		t.Fatalf("DeviceRequests(b) = %v", got)
	}
	if got := ids("a"); !reflect.DeepEqual(got, []string{"RC", "RA"}) {
		t.Fatalf("DeviceRequests(a) = %v", got)
	}
	if got := ids("c"); len(got) != 0 {
		t.Fatalf("DeviceRequests(c) = %v", got)
	}
}

func testPaging(t *testing.T, s store.Store) {
	var cbs []store.Callback
	for i := 0; i < 25; i++ {
		cbs = append(cbs, CB("P", fmt.Sprint(i), "warning", false, at(i)))
	}
	appendOK(t, s, cbs...)
	for _, tc := range []struct {
		after       int64
		limit       int
		first, last int64
	}{{0, 10, 1, 10}, {10, 10, 11, 20}, {20, 10, 21, 25}, {25, 10, 0, 0}, {7, 1, 8, 8}, {30, 5, 0, 0}, {0, 100, 1, 25}} {
		got, err := s.Callbacks(ctxT(t), "P", tc.after, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		if tc.first == 0 {
			if len(got) != 0 {
				t.Fatalf("after %d: %d callbacks, want none", tc.after, len(got))
			}
			continue
		}
		if int64(len(got)) != tc.last-tc.first+1 {
			t.Fatalf("after %d limit %d: %d callbacks, want %d", tc.after, tc.limit, len(got), tc.last-tc.first+1)
		}
		for i, c := range got {
			if c.Seq != tc.first+int64(i) || string(c.Body) != string(cbs[c.Seq-1].Body) {
				t.Fatalf("after %d: callback %d has seq %d body %s", tc.after, i, c.Seq, c.Body)
			}
		}
	}
}

func testDeviceRequests(t *testing.T, s store.Store) {
	register(t, s, store.Registration{RequestID: "R1", Account: "a", Action: "download", CreatedAt: at(10),
		Devices: [][]store.DeviceKey{{K("eid", "e1"), K("iccid", "i1")}}})
	appendOK(t, s, CB("R2", "1", "warning", false, at(20), K("iccid", "i1")))
	register(t, s, store.Registration{RequestID: "R3", Account: "a", Action: "enable", CreatedAt: at(30),
		Devices: [][]store.DeviceKey{{K("imei", "m1"), K("eid", "e1")}}})
	appendOK(t, s, CB("R3", "1", "succeeded", true, at(31), K("imei", "m1")))
	register(t, s, store.Registration{RequestID: "R4", Account: "a", Action: "other", CreatedAt: at(40),
		Devices: [][]store.DeviceKey{{K("eid", "e2")}}})

	refs := func(k store.DeviceKey, open bool) []store.RequestRef {
		t.Helper()
		out, err := s.DeviceRequests(ctxT(t), k, open, nil)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	ids := func(rs []store.RequestRef) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.RequestID)
		}
		return out
	}
	got := refs(K("eid", "e1"), false)
	if !reflect.DeepEqual(ids(got), []string{"R3", "R1"}) {
		t.Fatalf("eid e1: %v", ids(got))
	}
	if want := (store.RequestRef{RequestID: "R3", Account: "a", Action: "enable", State: store.StateTerminal, CreatedAt: at(30)}); !reflect.DeepEqual(got[0], want) {
		t.Fatalf("ref %+v, want %+v", got[0], want)
	}
	if want := (store.RequestRef{RequestID: "R1", Account: "a", Action: "download", State: store.StatePending, CreatedAt: at(10)}); !reflect.DeepEqual(got[1], want) {
		t.Fatalf("ref %+v, want %+v", got[1], want)
	}
	if r2 := refs(K("iccid", "i1"), false)[0]; r2.RequestID != "R2" || !r2.CreatedAt.Equal(at(20)) {
		t.Fatalf("callback-only request %+v, want created at its first callback %v", r2, at(20))
	}
	if g := ids(refs(K("iccid", "i1"), false)); !reflect.DeepEqual(g, []string{"R2", "R1"}) {
		t.Fatalf("iccid i1 (registered and callback-only): %v", g)
	}
	if g := ids(refs(K("imei", "m1"), false)); !reflect.DeepEqual(g, []string{"R3"}) {
		t.Fatalf("imei m1: %v", g)
	}
	if g := ids(refs(K("eid", "e1"), true)); !reflect.DeepEqual(g, []string{"R1"}) {
		t.Fatalf("eid e1 open: %v", g)
	}
	if g := ids(refs(K("iccid", "e1"), false)); len(g) != 0 {
		t.Fatalf("kind must match: %v", g)
	}
	if g := ids(refs(K("eid", "e2"), true)); !reflect.DeepEqual(g, []string{"R4"}) {
		t.Fatalf("eid e2 open: %v", g)
	}
}

func testQuarantine(t *testing.T, s store.Store) {
	for i, body := range [][]byte{[]byte(`{"status":"x"}`), {0xff, 0x00, 'n', 'o', 't', ' ', 'j', 's', 'o', 'n'}} {
		h := sha256.Sum256(body)
		q := store.Quarantined{ReceivedAt: at(i), Account: "a", Reason: "no requestId", ContentHash: hex.EncodeToString(h[:]), Body: body}
		if err := s.Quarantine(ctxT(t), q); err != nil {
			t.Fatalf("Quarantine: %v", err)
		}
		if err := s.Quarantine(ctxT(t), q); err != nil {
			t.Fatalf("Quarantine again: %v", err)
		}
	}
}

func testPurge(t *testing.T, s store.Store) {
	old := time.Now().UTC().Add(-48 * time.Hour).Truncate(time.Second)
	recent := time.Now().UTC().Truncate(time.Second)
	register(t, s, store.Registration{RequestID: "OLD", Account: "a", Action: "x", CreatedAt: old,
		Devices: [][]store.DeviceKey{{K("eid", "e1")}}})
	appendOK(t, s, CB("OLD", "1", "succeeded", true, old.Add(time.Minute), K("eid", "e1")))
	appendOK(t, s, CB("NEW", "1", "warning", false, recent, K("eid", "e1")))
	// Updated recently although created long ago: kept.
	appendOK(t, s, CB("ACTIVE", "1", "warning", false, old, K("eid", "e1")), CB("ACTIVE", "2", "warning", false, recent, K("eid", "e1")))
	if err := s.Quarantine(ctxT(t), store.Quarantined{ReceivedAt: old, Reason: "r", ContentHash: "00", Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	n, err := s.Purge(ctxT(t), recent.Add(-24*time.Hour))
	if err != nil || n < 1 {
		t.Fatalf("Purge = %d, %v; want at least 1", n, err)
	}
	if _, err := s.Request(ctxT(t), "OLD", nil); !errors.Is(err, store.ErrGone) {
		t.Fatalf("Request(purged) = %v, want ErrGone", err)
	}
	if _, err := s.Request(ctxT(t), "OLD", []string{"a"}); !errors.Is(err, store.ErrGone) && !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Request(purged, scoped) = %v, want ErrGone", err)
	}
	cbs, err := s.Callbacks(ctxT(t), "OLD", 0, 10)
	if len(cbs) != 0 || (err != nil && !errors.Is(err, store.ErrGone) && !errors.Is(err, store.ErrNotFound)) {
		t.Fatalf("Callbacks(purged) = %v, %v", cbs, err)
	}
	refs, err := s.DeviceRequests(ctxT(t), K("eid", "e1"), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range refs {
		ids = append(ids, r.RequestID)
	}
	sort.Strings(ids)
	if !reflect.DeepEqual(ids, []string{"ACTIVE", "NEW"}) {
		t.Fatalf("DeviceRequests after purge = %v", ids)
	}
	checkGapFree(t, allCallbacks(t, s, "NEW"), 1)
	checkGapFree(t, allCallbacks(t, s, "ACTIVE"), 2)
	if n, err := s.Purge(ctxT(t), recent.Add(-24*time.Hour)); err != nil || n != 0 {
		t.Fatalf("second Purge = %d, %v; want 0", n, err)
	}
	if _, err := s.Request(ctxT(t), "OLD", nil); !errors.Is(err, store.ErrGone) {
		t.Fatalf("Request(purged) after a second purge = %v, want ErrGone", err)
	}
}

func testChanges(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := s.Changes(ctx)
	if err != nil {
		t.Fatalf("Changes: %v", err)
	}
	WaitChange(t, ch, "X", func() { appendOK(t, s, CB("X", "1", "warning", false, at(1))) })
	WaitChange(t, ch, "Y", func() { appendOK(t, s, CB("Z", "1", "warning", false, at(1)), CB("Y", "1", "warning", false, at(1))) })
	cancel()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("Changes channel not closed 30s after its context ended")
		}
	}
}

// WaitChange calls do (repeatedly, at most 30 times a second apart, since a LISTEN connection
// may be re-establishing) until ch delivers id.
func WaitChange(t *testing.T, ch <-chan string, id string, do func()) {
	t.Helper()
	for attempt := 0; attempt < 30; attempt++ {
		do()
		timeout := time.After(time.Second)
	wait:
		for {
			select {
			case got, ok := <-ch:
				if !ok {
					t.Fatal("Changes channel closed")
				}
				if got == id {
					return
				}
			case <-timeout:
				break wait
			}
		}
	}
	t.Fatalf("Changes never delivered %q", id)
}

func testPingMigrate(t *testing.T, s store.Store) {
	if err := s.Ping(ctxT(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	appendOK(t, s, CB("M", "1", "warning", false, at(1)))
	for i := 0; i < 2; i++ {
		if err := s.Migrate(ctxT(t)); err != nil {
			t.Fatalf("Migrate #%d: %v", i+1, err)
		}
	}
	checkGapFree(t, allCallbacks(t, s, "M"), 1)
	if res := appendOK(t, s, CB("M", "2", "warning", false, at(2))); res[0].Seq != 2 {
		t.Fatalf("seq after Migrate: %d", res[0].Seq)
	}
}

func testBulk(t *testing.T, s store.Store) {
	const n = 10000
	reg := store.Registration{RequestID: "BULK", Account: "a", Action: "download_enable", CreatedAt: at(0)}
	for i := 0; i < n; i++ {
		reg.Devices = append(reg.Devices, []store.DeviceKey{K("eid", fmt.Sprintf("eid%05d", i)), K("iccid", fmt.Sprintf("icc%05d", i))})
	}
	register(t, s, reg)
	// One terminal callback per device, a warning before every third, and late warnings after
	// terminal ones, in batches of 100; the last device's terminal callback comes last.
	var cbs []store.Callback
	for i := 0; i < n; i++ {
		if i%3 == 0 {
			cbs = append(cbs, CB("BULK", fmt.Sprintf("w%d", i), "warning", false, at(1), K("eid", fmt.Sprintf("eid%05d", i))))
		}
		key := K("eid", fmt.Sprintf("eid%05d", i))
		if i%2 == 1 {
			key = K("iccid", fmt.Sprintf("icc%05d", i))
		}
		cbs = append(cbs, CB("BULK", fmt.Sprintf("t%d", i), "succeeded", true, at(2), key))
		if i%5 == 0 && i > 0 {
			cbs = append(cbs, CB("BULK", fmt.Sprintf("late%d", i-1), "warning", false, at(3), K("eid", fmt.Sprintf("eid%05d", i-1))))
		}
	}
	last := cbs[len(cbs)-1]
	cbs = cbs[:len(cbs)-1]
	if last.Devices[0].ID != fmt.Sprintf("eid%05d", n-1) && last.Devices[0].ID != fmt.Sprintf("icc%05d", n-1) {
		t.Fatalf("test bug: last callback %v", last.Devices)
	}
	for i := 0; i < len(cbs); i += 100 {
		end := min(i+100, len(cbs))
		appendOK(t, s, cbs[i:end]...)
		if i == 5000 {
			r := request(t, s, "BULK")
			if r.State != store.StatePartial || r.TerminalCount == 0 || r.TerminalCount >= n {
				t.Fatalf("half way: %s %d/%d", r.State, r.TerminalCount, r.Expected)
			}
		}
	}
	r := request(t, s, "BULK")
	wantState(t, r, store.StatePartial, n, n-1)
	appendOK(t, s, CB("BULK", "late-warning", "warning", false, at(4), K("eid", "eid00010")))
	wantState(t, request(t, s, "BULK"), store.StatePartial, n, n-1)
	appendOK(t, s, last)
	r = request(t, s, "BULK")
	wantState(t, r, store.StateTerminal, n, n)
	appendOK(t, s, CB("BULK", "later-warning", "warning", false, at(5), K("eid", fmt.Sprintf("eid%05d", n-1))))
	r = request(t, s, "BULK")
	wantState(t, r, store.StateTerminal, n, n)
	if len(r.Devices) != n {
		t.Fatalf("%d devices", len(r.Devices))
	}
	for i, d := range r.Devices {
		if !d.Terminal || d.Status != "succeeded" {
			t.Fatalf("device %d: %+v", i, d)
		}
	}
	checkGapFree(t, allCallbacks(t, s, "BULK"), len(cbs)+3)
}

// Summarizer is the optional Store extension the relay uses for long-polls: Request without the
// devices (see store/INTERFACE-CHANGES.md).
type Summarizer interface {
	RequestSummary(ctx context.Context, requestID string, accounts []string) (*store.Request, error)
}

// testRequestSummary: where a store has RequestSummary, it answers what Request answers (state,
// counts, last seq, account, errors and scoping), without the devices.
func testRequestSummary(t *testing.T, s store.Store) {
	sm, ok := s.(Summarizer)
	if !ok {
		t.Skip("the store has no RequestSummary (optional)")
	}
	register(t, s, threeDevices("R"))
	appendOK(t, s, CB("R", "w1", "warning", false, at(1), K("eid", "e1")), CB("R", "t2", "succeeded", true, at(2), K("eid", "e2")))
	full := request(t, s, "R")
	sum, err := sm.RequestSummary(ctxT(t), "R", []string{"acct"})
	if err != nil {
		t.Fatalf("RequestSummary: %v", err)
	}
	if len(sum.Devices) != 0 {
		t.Fatalf("RequestSummary returned %d devices", len(sum.Devices))
	}
	full.Devices, sum.Devices = nil, nil
	if !reflect.DeepEqual(sum, full) {
		t.Fatalf("RequestSummary = %+v, Request = %+v", sum, full)
	}
	if _, err := sm.RequestSummary(ctxT(t), "R", []string{"other"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RequestSummary of another account = %v, want ErrNotFound", err)
	}
	if _, err := sm.RequestSummary(ctxT(t), "nope", nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RequestSummary(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := s.Purge(ctxT(t), at(3600)); err != nil {
		t.Fatal(err)
	}
	if _, err := sm.RequestSummary(ctxT(t), "R", nil); !errors.Is(err, store.ErrGone) {
		t.Fatalf("RequestSummary(purged) = %v, want ErrGone", err)
	}
}
