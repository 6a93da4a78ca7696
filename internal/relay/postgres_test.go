package relay_test

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/relayapi"

	"github.com/jackc/pgx/v5"

	"github.com/fleetform/terraform-provider-thingspace/internal/relay"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/forward"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/pgtest"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store/postgres"
)

// TestMain stops the throwaway PostgreSQL servers of the tests below and removes their folders.
func TestMain(m *testing.M) { pgtest.Main(m) }

// newPGEnv starts a relay instance over its own connection pool (and LISTEN connection) to the
// database dsn, as a separate relay process would.
func newPGEnv(t testing.TB, dsn string, mod func(*relay.Config)) (*env, *postgres.Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() }) // after the relay's own cleanup (LIFO)
	return newEnvWith(t, st, mod), st
}

// TestTwoInstancesOnPostgres: two relays share one PostgreSQL database. A waiter on instance B
// is woken by a callback ingested by instance A through LISTEN/NOTIFY alone (B's periodic
// re-query is off), also when the hint itself was lost because B's LISTEN connection was down
// at the time; redeliveries spread over both instances are stored once.
func TestTwoInstancesOnPostgres(t *testing.T) {
	dsn := pgtest.Start(t)
	a, pa := newPGEnv(t, dsn, nil)
	b, _ := newPGEnv(t, dsn, func(c *relay.Config) { c.PollInterval = time.Hour })

	waitOnB := func(id string) <-chan relayapi.CallbackPage {
		done := make(chan relayapi.CallbackPage, 1)
		before := b.metric("thingspace_relay_waiters")
		go func() {
			out, _, _ := b.poll(id, 0, "60s", 0)
			done <- out
		}()
		waitFor(t, "the waiter on B", func() bool { return b.metric("thingspace_relay_waiters") == before+1 })
		return done
	}

	t.Run("waiter on B woken by an ingest on A", func(t *testing.T) {
		done := waitOnB("R-pg-notify")
		if code, out, _ := a.post(cbBody("R-pg-notify", "Success", 1, "eid", "E1")); code != 200 || out["result"] != "stored" {
			t.Fatalf("ingest on A: %d %v", code, out)
		}
		out := <-done
		if len(out.Callbacks) != 1 || out.NextAfter != 1 || !out.Callbacks[0].Terminal {
			t.Fatalf("waiter on B: %+v", out)
		}
		if b.metric("thingspace_relay_notifications_received_total") < 1 {
			t.Fatal("B received no change hint")
		}
	})

	t.Run("hint lost while B's LISTEN connection is down", func(t *testing.T) {
		ctx := ctx30(t)
		done := waitOnB("R-pg-lost")
		var db string
		if err := pa.Pool().QueryRow(ctx, `SELECT current_database()`).Scan(&db); err != nil {
			t.Fatal(err)
		}
		// Keep the LISTEN connections from coming back until the callback is committed: the
		// NOTIFY of that commit reaches no listener of B. (PostgreSQL refuses this from a
		// connection to the database itself.)
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		u.Path = "/postgres"
		admin, err := pgx.Connect(ctx, u.String())
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close(context.Background())
		allow := func(on bool) {
			t.Helper()
			actx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := admin.Exec(actx, fmt.Sprintf(`ALTER DATABASE %s ALLOW_CONNECTIONS %v`, pgx.Identifier{db}.Sanitize(), on)); err != nil {
				t.Fatal(err)
			}
		}
		allow(false)
		defer allow(true)
		if _, err := pa.Pool().Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE application_name = $1 AND datname = current_database()`, postgres.ListenApplicationName); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the LISTEN connections to end", func() bool {
			var n int
			err := pa.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
				WHERE application_name = $1 AND datname = current_database()`, postgres.ListenApplicationName).Scan(&n)
			return err == nil && n == 0
		})
		if code, out, _ := a.post(cbBody("R-pg-lost", "Success", 1, "eid", "E2")); code != 200 || out["result"] != "stored" {
			t.Fatalf("ingest on A: %d %v", code, out)
		}
		allow(true)
		out := <-done
		if len(out.Callbacks) != 1 || out.NextAfter != 1 {
			t.Fatalf("waiter on B after B's LISTEN came back: %+v", out)
		}
	})

	t.Run("redeliveries through both instances are stored once", func(t *testing.T) {
		const n = 50
		type answer struct {
			dev    int
			code   int
			result string
			seq    float64
		}
		answers := make(chan answer, 4*n)
		var wg sync.WaitGroup
		for dev := range n {
			for count := 1; count <= 4; count++ {
				e := a
				if count%2 == 0 {
					e = b
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					code, out, _ := e.post(cbBody("R-pg-storm", "Success", count, "eid", fmt.Sprintf("E%03d", dev)))
					res, _ := out["result"].(string)
					seq, _ := out["seq"].(float64)
					answers <- answer{dev, code, res, seq}
				}()
			}
		}
		wg.Wait()
		close(answers)
		stored, seqOf := map[int]int{}, map[int]float64{}
		for ans := range answers {
			if ans.code != 200 || (ans.result != "stored" && ans.result != "duplicate") {
				t.Fatalf("device %d: %d %q", ans.dev, ans.code, ans.result)
			}
			if s, ok := seqOf[ans.dev]; ok && s != ans.seq {
				t.Fatalf("device %d answered seqs %v and %v", ans.dev, s, ans.seq)
			}
			seqOf[ans.dev] = ans.seq
			if ans.result == "stored" {
				stored[ans.dev]++
			}
		}
		for dev := range n {
			if stored[dev] != 1 {
				t.Fatalf("device %d stored %d times", dev, stored[dev])
			}
		}
		out, idx, _ := b.poll("R-pg-storm", 0, "0s", 0)
		if len(out.Callbacks) != n || idx != n {
			t.Fatalf("%d callbacks, index %d; want %d", len(out.Callbacks), idx, n)
		}
		for i, c := range out.Callbacks {
			if c.Seq != int64(i+1) {
				t.Fatalf("callback %d has seq %d", i, c.Seq)
			}
		}
	})
}

func ctx30(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestForwardTwoInstancesOnPostgres: two forwarding relays share one PostgreSQL database and
// its outbox. While the target refuses, both retry; once one instance has stopped, the other
// delivers every callback, those the stopped one acknowledged included.
func TestForwardTwoInstancesOnPostgres(t *testing.T) {
	const m = 30
	dsn := pgtest.Start(t)
	ft := newForwardTarget(t)
	fwd := func(c *relay.Config) {
		c.Forward = forward.Config{URL: ft.srv.URL, Username: "platform", Password: "fwd-s3cret",
			MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond, PollInterval: 10 * time.Millisecond}
	}
	a, _ := newPGEnv(t, dsn, fwd)
	b, _ := newPGEnv(t, dsn, fwd)
	for i := range m {
		e := a
		if i%2 == 1 {
			e = b
		}
		if code, ans, _ := e.post(cbBody(fmt.Sprintf("pg-fw-%02d", i), "succeeded", 1, "eid", fmt.Sprintf("8904%028d", i))); code != 200 || ans["result"] != "stored" {
			t.Fatalf("callback %d: %d %v", i, code, ans)
		}
	}
	waitFor(t, "the target to refuse 2 attempts per callback", func() bool { return ft.refused.Load() >= 2*m })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.relay.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	ft.refusing.Store(false)
	waitFor(t, "every callback at the target", func() bool { return ft.distinct() == m })
	waitFor(t, "an empty outbox", func() bool { return b.metric("thingspace_relay_forward_pending") == 0 })
	dups := ft.duplicates(t)
	t.Logf("%d callbacks over 2 instances, %d refused attempts, %d delivered by the remaining instance, %d duplicates",
		m, ft.refused.Load(), ft.distinct(), dups)
}
