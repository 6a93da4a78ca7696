package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/relay/pgtest"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store/postgres"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func open(t testing.TB, dsn string) *postgres.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, pgtest.Start(t))
	})
}

func ctx30(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// A duplicate storm through two instances sharing one database: every callback sent four
// times (twice through each instance, concurrently) is stored once, with gap-free seqs, and its
// deliveries counted.
func TestTwoInstancesDuplicateStorm(t *testing.T) {
	dsn := pgtest.Start(t)
	a, b := open(t, dsn), open(t, dsn)
	const n = 1000
	var cbs []store.Callback
	for i := 0; i < n; i++ {
		req := "STORM"
		if i%10 == 0 {
			req = fmt.Sprintf("OTHER-%d", i%3) // a few batches span several requests
		}
		cbs = append(cbs, storetest.CB(req, fmt.Sprint(i), "succeeded", true, storetest.Base, storetest.K("eid", fmt.Sprint(i))))
	}
	type res struct {
		hash string
		r    store.AppendResult
	}
	out := make(chan res, 8*n)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for w, s := range []*postgres.Store{a, b, a, b, a, b, a, b} {
		wg.Add(1)
		go func(w int, s *postgres.Store) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(w)))
			order := rng.Perm(n)
			for i := 0; i < len(order); {
				if w >= 4 && i >= n/2 {
					break // workers 4..7 send only half: each callback goes through 2 to 4 times
				}
				size := 1 + rng.Intn(16)
				var batch []store.Callback
				for ; size > 0 && i < n; size-- {
					batch = append(batch, cbs[order[i]])
					i++
				}
				rs, err := s.Append(context.Background(), batch)
				if err != nil {
					errs <- err
					return
				}
				for k, r := range rs {
					out <- res{batch[k].ContentHash, r}
				}
			}
		}(w, s)
	}
	wg.Wait()
	close(out)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seqOf, stored, sends := map[string]int64{}, map[string]int{}, 0
	for o := range out {
		sends++
		if q, ok := seqOf[o.hash]; ok && q != o.r.Seq {
			t.Fatalf("hash %s: seqs %d and %d", o.hash[:8], q, o.r.Seq)
		}
		seqOf[o.hash] = o.r.Seq
		if !o.r.Duplicate {
			stored[o.hash]++
		}
	}
	for _, c := range cbs {
		if stored[c.ContentHash] != 1 {
			t.Fatalf("callback %s stored %d times", c.Body, stored[c.ContentHash])
		}
	}
	total := 0
	for _, req := range []string{"STORM", "OTHER-0", "OTHER-1", "OTHER-2"} {
		got, err := b.Callbacks(ctx30(t), req, 0, 10000)
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range got {
			if c.Seq != int64(i+1) || seqOf[c.ContentHash] != c.Seq {
				t.Fatalf("%s: callback %d has seq %d (Append said %d)", req, i, c.Seq, seqOf[c.ContentHash])
			}
		}
		total += len(got)
	}
	if total != n {
		t.Fatalf("%d callbacks stored, want %d", total, n)
	}
	var deliveries int
	if err := a.Pool().QueryRow(ctx30(t), `SELECT sum(deliveries) FROM relay_callbacks`).Scan(&deliveries); err != nil {
		t.Fatal(err)
	}
	if deliveries != sends {
		t.Fatalf("deliveries %d, want %d (one per send)", deliveries, sends)
	}
}

// Changes of one instance fires for an Append through another, and again after its LISTEN
// connection was killed.
func TestChangesAcrossInstances(t *testing.T) {
	dsn := pgtest.Start(t)
	a, b := open(t, dsn), open(t, dsn)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := b.Changes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	storetest.WaitChange(t, ch, "X", func() {
		if _, err := a.Append(ctx30(t), []store.Callback{storetest.CB("X", "1", "warning", false, storetest.Base)}); err != nil {
			t.Fatal(err)
		}
	})
	// A registration notifies too (it can complete a request).
	storetest.WaitChange(t, ch, "R", func() {
		err := a.Register(ctx30(t), store.Registration{RequestID: "R", Account: "a", Action: "x", CreatedAt: storetest.Base,
			Devices: [][]store.DeviceKey{{storetest.K("eid", "1")}}})
		if err != nil {
			t.Fatal(err)
		}
	})
	var killed int
	err = a.Pool().QueryRow(ctx30(t), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1 AND datname = current_database()`, postgres.ListenApplicationName).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminated %d LISTEN connections (%v), want 1", killed, err)
	}
	i := 0
	storetest.WaitChange(t, ch, "Y", func() {
		i++
		if _, err := a.Append(ctx30(t), []store.Callback{storetest.CB("Y", fmt.Sprint(i), "warning", false, storetest.Base)}); err != nil {
			t.Fatal(err)
		}
	})
}

// The store comes back by itself when PostgreSQL restarts.
func TestPostgresRestart(t *testing.T) {
	srv := pgtest.NewServer(t)
	s := open(t, srv.NewDatabase(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := s.Changes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cb := func(tag string) []store.Callback {
		return []store.Callback{storetest.CB("R", tag, "warning", false, storetest.Base)}
	}
	if _, err := s.Append(ctx30(t), cb("1")); err != nil {
		t.Fatal(err)
	}
	srv.Stop(t)
	short, cancelShort := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelShort()
	if _, err := s.Append(short, cb("2")); err == nil {
		t.Fatal("Append succeeded with PostgreSQL stopped")
	}
	if err := s.Ping(short); err == nil {
		t.Fatal("Ping succeeded with PostgreSQL stopped")
	}
	srv.Start(t)
	if err := s.Ping(ctx30(t)); err != nil {
		t.Fatalf("Ping after restart: %v", err)
	}
	res, err := s.Append(ctx30(t), cb("3"))
	if err != nil {
		t.Fatalf("Append after restart: %v", err)
	}
	if res[0].Seq != 2 {
		t.Fatalf("seq after restart %d, want 2", res[0].Seq)
	}
	// The LISTEN connection is back too.
	i := 3
	storetest.WaitChange(t, ch, "R", func() {
		i++
		if _, err := s.Append(ctx30(t), cb(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	})
}

// Instances starting at once on an empty database migrate it once (advisory lock).
func TestConcurrentMigrate(t *testing.T) {
	dsn := pgtest.Start(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := postgres.Open(ctx30(t), dsn)
			if err != nil {
				errs <- err
				return
			}
			s.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Open: %v", err)
	}
	s := open(t, dsn)
	// One row per schema version, each applied once.
	var rows, versions, latest int
	if err := s.Pool().QueryRow(ctx30(t), `SELECT count(*), count(DISTINCT version), max(version) FROM relay_schema_migrations`).
		Scan(&rows, &versions, &latest); err != nil || rows != versions || versions != latest {
		t.Fatalf("%d migration rows for %d versions, latest %d (%v): each version must be applied once", rows, versions, latest, err)
	}
}

// Appends are durable even where the database defaults to synchronous_commit=off.
func TestSynchronousCommitForcedOn(t *testing.T) {
	dsn := pgtest.Start(t)
	s := open(t, dsn)
	if _, err := s.Pool().Exec(ctx30(t), `DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET synchronous_commit = off', current_database()); END $$`); err != nil {
		t.Fatal(err)
	}
	s2 := open(t, dsn)
	var sc string
	if err := s2.Pool().QueryRow(ctx30(t), `SELECT current_setting('synchronous_commit')`).Scan(&sc); err != nil || sc != "on" {
		t.Fatalf("synchronous_commit = %q (%v), want on", sc, err)
	}
}

// Two instances purging at once purge every old request exactly once, in several batches.
func TestConcurrentPurge(t *testing.T) {
	dsn := pgtest.Start(t)
	a, b := open(t, dsn), open(t, dsn)
	old := time.Now().Add(-72 * time.Hour).UTC().Truncate(time.Second)
	const n = 2500
	for i := 0; i < n; i += 250 {
		var batch []store.Callback
		for j := i; j < i+250; j++ {
			batch = append(batch, storetest.CB(fmt.Sprint("old-", j), "1", "succeeded", true, old, storetest.K("eid", fmt.Sprint(j))))
		}
		if _, err := a.Append(ctx30(t), batch); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Append(ctx30(t), []store.Callback{storetest.CB("new", "1", "warning", false, time.Now().UTC())}); err != nil {
		t.Fatal(err)
	}
	cut := time.Now().Add(-24 * time.Hour)
	counts := make(chan int, 2)
	errs := make(chan error, 2)
	for _, s := range []*postgres.Store{a, b} {
		go func(s *postgres.Store) {
			c, err := s.Purge(ctx30(t), cut)
			counts <- c
			errs <- err
		}(s)
	}
	total := 0
	for i := 0; i < 2; i++ {
		total += <-counts
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if total != n {
		t.Fatalf("purged %d, want %d", total, n)
	}
	for _, id := range []string{"old-0", "old-1234", fmt.Sprint("old-", n-1)} {
		if _, err := b.Request(ctx30(t), id, nil); !errors.Is(err, store.ErrGone) {
			t.Fatalf("Request(%s) = %v, want ErrGone", id, err)
		}
	}
	if _, err := b.Request(ctx30(t), "new", nil); err != nil {
		t.Fatal(err)
	}
	var left int
	if err := a.Pool().QueryRow(ctx30(t), `SELECT (SELECT count(*) FROM relay_callbacks) + (SELECT count(*) FROM relay_callback_keys)`).Scan(&left); err != nil || left != 1 {
		t.Fatalf("%d callback and key rows left (%v), want 1", left, err)
	}
}

// TestMigrationBackfill: a database of schema version 1 (before intents) is migrated in place
// and answers the device lookup for the callbacks it held.
func TestMigrationBackfill(t *testing.T) {
	dsn := pgtest.Start(t)
	storetest.MigrationBackfill(t, open(t, dsn), func(t *testing.T, s store.Store) store.Store {
		pool := s.(*postgres.Store).Pool()
		for _, q := range []string{
			`ALTER TABLE relay_callback_keys DROP COLUMN term_seq, DROP COLUMN term_at`,
			`DROP TABLE relay_intents`,
			`DROP TABLE relay_intent_keys`,
			`DROP TABLE relay_outbox`,
			`DELETE FROM relay_schema_migrations WHERE version > 1`,
		} {
			if _, err := pool.Exec(ctx30(t), q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		return open(t, dsn)
	})
}
