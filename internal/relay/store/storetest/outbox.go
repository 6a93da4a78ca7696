package storetest

import (
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store"
)

func fwd(cb store.Callback) store.Callback {
	cb.Forward = true
	return cb
}

func claim(t *testing.T, s store.Store, now time.Time, limit int) []store.Forward {
	t.Helper()
	fs, err := s.ClaimForwards(ctxT(t), now, time.Minute, limit)
	if err != nil {
		t.Fatalf("ClaimForwards: %v", err)
	}
	return fs
}

func forwardIDs(fs []store.Forward) []int64 {
	ids := make([]int64, len(fs))
	for i, f := range fs {
		ids[i] = f.ID
	}
	return ids
}

func outboxStats(t *testing.T, s store.Store) store.OutboxStats {
	t.Helper()
	st, err := s.OutboxStats(ctxT(t))
	if err != nil {
		t.Fatalf("OutboxStats: %v", err)
	}
	return st
}

// testOutbox: Append queues new callbacks asked to be forwarded (not duplicates, not the others)
// in its transaction; a claim hides an entry until it ends (a claimer that died), a retry
// reschedules only the current claim, Done removes, and the purge leaves undelivered entries.
func testOutbox(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	if st := outboxStats(t, s); st.Pending != 0 || !st.Oldest.IsZero() {
		t.Fatalf("empty outbox: %+v", st)
	}
	a := fwd(CB("R", "a", "pending", false, at(2), K("eid", "E")))
	a.Account = "acct"
	b := fwd(CB("R", "b", "succeeded", true, at(3), K("eid", "E")))
	c := fwd(CB("S", "c", "failed", true, at(1)))
	res := appendOK(t, s, a, CB("R", "not-forwarded", "pending", false, at(2)), b, c)
	if st := outboxStats(t, s); st.Pending != 3 || !st.Oldest.Equal(at(1)) {
		t.Fatalf("stats after 3 forwarded callbacks: %+v, want 3 pending, oldest %v", st, at(1))
	}
	if r := appendOK(t, s, a); !r[0].Duplicate {
		t.Fatal("the same callback again was not a duplicate")
	}
	if st := outboxStats(t, s); st.Pending != 3 {
		t.Fatalf("a duplicate was queued again: %d pending", st.Pending)
	}

	t0 := at(100)
	got := claim(t, s, t0, 10)
	if len(got) != 3 {
		t.Fatalf("claimed %d, want 3", len(got))
	}
	for i, w := range []struct {
		cb  store.Callback
		seq int64
	}{{a, res[0].Seq}, {b, res[2].Seq}, {c, res[3].Seq}} {
		f := got[i]
		if f.RequestID != w.cb.RequestID || f.Seq != w.seq || f.Account != w.cb.Account || string(f.Body) != string(w.cb.Body) ||
			!f.QueuedAt.Equal(w.cb.ReceivedAt) || f.Attempts != 1 || f.LastError != "" || !f.ClaimUntil.Equal(t0.Add(time.Minute)) {
			t.Fatalf("entry %d: %+v, want %s seq %d in queue order, attempt 1", i, f, w.cb.Body, w.seq)
		}
		if i > 0 && f.ID <= got[i-1].ID {
			t.Fatalf("ids not increasing in queue order: %v", forwardIDs(got))
		}
	}
	if again := claim(t, s, t0.Add(30*time.Second), 10); len(again) != 0 {
		t.Fatalf("claimed entries were claimed again before their claim ended: %v", forwardIDs(again))
	}
	// The claimer died: the entries are due again when the claim ends.
	got = claim(t, s, t0.Add(time.Minute), 10)
	if len(got) != 3 || got[0].Attempts != 2 {
		t.Fatalf("after the claim ended: %+v, want the 3 entries at attempt 2", got)
	}
	fa, fb, fc := got[0], got[1], got[2]
	t1 := t0.Add(time.Minute)
	for _, err := range []error{
		s.ForwardDone(ctx, fa.ID),
		s.ForwardRetry(ctx, fb.ID, fb.Attempts, t1.Add(10*time.Second), "HTTP 503"),
		s.ForwardRetry(ctx, fc.ID, fc.Attempts-1, t1.Add(5*time.Second), "a stale claim"), // changes nothing
		s.ForwardDone(ctx, fa.ID), // again: a no-op
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := claim(t, s, t1.Add(9*time.Second), 10); len(got) != 0 {
		t.Fatalf("claimed before the retry time: %v", forwardIDs(got))
	}
	got = claim(t, s, t1.Add(10*time.Second), 10)
	if len(got) != 1 || got[0].ID != fb.ID || got[0].Attempts != 3 || got[0].LastError != "HTTP 503" {
		t.Fatalf("at the retry time: %+v, want only entry %d at attempt 3 with its last error", got, fb.ID)
	}
	if _, err := s.Purge(ctx, at(1_000_000)); err != nil {
		t.Fatal(err)
	}
	if st := outboxStats(t, s); st.Pending != 2 || !st.Oldest.Equal(c.ReceivedAt) {
		t.Fatalf("after a purge of everything: %+v, want the 2 undelivered entries kept", st)
	}
	far := at(1_000_000)
	if got := claim(t, s, far, 1); len(got) != 1 || got[0].ID != fb.ID {
		t.Fatalf("limit 1: %v, want the oldest entry %d", forwardIDs(got), fb.ID)
	}
	for _, id := range []int64{fb.ID, fc.ID} {
		if err := s.ForwardDone(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if st := outboxStats(t, s); st.Pending != 0 || !st.Oldest.IsZero() {
		t.Fatalf("after every entry was delivered: %+v", st)
	}
	if got := claim(t, s, far.Add(time.Hour), 10); len(got) != 0 {
		t.Fatalf("delivered entries claimed: %v", forwardIDs(got))
	}
}

// testOutboxConcurrentClaims: claimers running at once (relay instances sharing a database)
// never get the same entry while its claim lasts.
func testOutboxConcurrentClaims(t *testing.T, s store.Store) {
	const n = 200
	cbs := make([]store.Callback, n)
	for i := range cbs {
		cbs[i] = fwd(CB("R", string(rune('a'+i%26))+string(rune('a'+i/26)), "pending", false, at(i)))
	}
	appendOK(t, s, cbs...)
	var mu sync.Mutex
	seen := map[int64]int{}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ { // bounded: at least one entry per round while any is left
				fs, err := s.ClaimForwards(ctxT(t), at(n), time.Hour, 7)
				if err != nil {
					errs <- err
					return
				}
				if len(fs) == 0 {
					return
				}
				mu.Lock()
				for _, f := range fs {
					seen[f.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var twice []int64
	for id, k := range seen {
		if k > 1 {
			twice = append(twice, id)
		}
	}
	sort.Slice(twice, func(i, j int) bool { return twice[i] < twice[j] })
	if len(seen) != n || len(twice) > 0 {
		t.Fatalf("%d of %d entries claimed; claimed more than once: %v", len(seen), n, twice)
	}
}
