package relay_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/relay"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/pgtest"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store/postgres"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store/sqlite"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store/storetest"
	"github.com/fleetform/terraform-provider-thingspace/internal/relayapi"
)

// Each benchmark iteration does a fixed amount of work, so -benchtime 1x gives meaningful
// figures:
//
//	go test -run '^$' -bench . -benchtime 1x ./internal/relay/

// singleCommitRate measures durable single-row commits per second on this disk, through the
// SQLite store (one callback per transaction, as without group commit), for up to d or n commits.
func singleCommitRate(tb testing.TB, d time.Duration, n int) float64 {
	st, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "single.db"))
	if err != nil {
		tb.Fatal(err)
	}
	defer st.Close()
	return storeCommitRate(tb, st, d, n)
}

// storeCommitRate is singleCommitRate through any store.
func storeCommitRate(tb testing.TB, st store.Store, d time.Duration, n int) float64 {
	start := time.Now()
	i := 0
	for ; i < n && time.Since(start) < d; i++ {
		cb := store.Callback{RequestID: fmt.Sprintf("R%d", i%16), ReceivedAt: time.Now(), Status: "succeeded", Terminal: true,
			ContentHash: fmt.Sprintf("%064x", i), Devices: []store.DeviceKey{{Kind: "eid", ID: fmt.Sprint(i)}}, Body: []byte(`{}`)}
		if _, err := st.Append(context.Background(), []store.Callback{cb}); err != nil {
			tb.Fatal(err)
		}
	}
	return float64(i) / time.Since(start).Seconds()
}

// BenchmarkSingleCommit is this disk's fsync ceiling: single-row commits per second, raw
// (autocommit INSERTs with the store's pragmas) and through Store.Append with one callback.
func BenchmarkSingleCommit(b *testing.B) {
	b.Run("raw", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "raw.db")
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)")
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		db.SetMaxOpenConns(1)
		if _, err := db.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)`); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		total, start := 0, time.Now()
		for range b.N {
			for i := 0; i < 2000 && time.Since(start) < 3*time.Second; i++ {
				if _, err := db.Exec(`INSERT INTO t (v) VALUES (?)`, "x"); err != nil {
					b.Fatal(err)
				}
				total++
			}
		}
		b.ReportMetric(float64(total)/time.Since(start).Seconds(), "commits/s")
	})
	b.Run("store", func(b *testing.B) {
		var rate float64
		for range b.N {
			rate = singleCommitRate(b, 3*time.Second, 2000)
		}
		b.ReportMetric(rate, "commits/s")
	})
}

// BenchmarkIngest: durable ingest through the real HTTP ingest handler on 127.0.0.1 with 32
// concurrent senders (group commit on SQLite), while one long-poll waiter per request follows
// every callback. It reports callbacks/s, the ratio to the single-commit ceiling measured in the
// same run, acknowledgement latency, and the latency from the start of an ingest to the waiter
// receiving the callback.
func BenchmarkIngest(b *testing.B) {
	baseline := singleCommitRate(b, 2*time.Second, 1000)
	sqliteEnv := func(b *testing.B) benchSetup {
		e := newEnv(b, quietLogs)
		return benchSetup{ingest: []*env{e}, waiters: e}
	}
	b.Run("waiters=0", func(b *testing.B) { benchIngest(b, baseline, sqliteEnv(b), false, 0) })
	b.Run("waiters=64", func(b *testing.B) { benchIngest(b, baseline, sqliteEnv(b), true, 0) })
	// The wake-up latency at a steady 1,000 callbacks/s, below saturation.
	b.Run("waiters=64,rate=1000", func(b *testing.B) { benchIngest(b, baseline, sqliteEnv(b), true, 1000) })
}

// BenchmarkIngestPostgres is BenchmarkIngest on PostgreSQL (fsync on), with one relay instance
// and with two instances sharing the database: the senders alternate between instances A and B,
// the 64 long-poll waiters are all on B, so half the callbacks wake a waiter on another instance
// (LISTEN/NOTIFY). The two-instance runs report their figures as ratios to the one-instance run
// of the same invocation (x-one-instance-*), which must therefore run first:
//
//	go test -run '^$' -bench BenchmarkIngestPostgres -benchtime 1x ./internal/relay/
func BenchmarkIngestPostgres(b *testing.B) {
	ceiling := func(b *testing.B, dsn string) float64 {
		st, err := postgres.Open(context.Background(), dsn)
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		return storeCommitRate(b, st, 2*time.Second, 1000)
	}
	setup := func(b *testing.B, instances int) (benchSetup, float64) {
		dsn := pgtest.Start(b)
		var s benchSetup
		for range instances {
			e, _ := newPGEnv(b, dsn, quietLogs)
			s.ingest = append(s.ingest, e)
		}
		s.waiters = s.ingest[len(s.ingest)-1]
		return s, ceiling(b, pgtest.Start(b))
	}
	for _, rate := range []int{0, 1000} {
		var one benchFigures
		for _, instances := range []int{1, 2} {
			name := fmt.Sprintf("instances=%d,waiters=64", instances)
			if rate > 0 {
				name += fmt.Sprintf(",rate=%d", rate)
			}
			b.Run(name, func(b *testing.B) {
				s, baseline := setup(b, instances)
				f := benchIngest(b, baseline, s, true, rate)
				if instances == 1 {
					one = f
					return
				}
				if one.rate == 0 {
					b.Log("the one-instance run did not run first: no ratios")
					return
				}
				b.ReportMetric(f.rate/one.rate, "x-one-instance-callbacks/s")
				b.ReportMetric(f.wakeP50/one.wakeP50, "x-one-instance-wake-p50")
				b.ReportMetric(f.wakeP99/one.wakeP99, "x-one-instance-wake-p99")
				b.ReportMetric(f.crossP99/one.wakeP99, "x-one-instance-cross-wake-p99")
			})
		}
	}
}

// quietLogs keeps the benchmarks' relays from logging every callback.
func quietLogs(c *relay.Config) {
	c.Logger = slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// benchSetup is where benchIngest sends callbacks (round robin over ingest) and waits for them.
type benchSetup struct {
	ingest  []*env
	waiters *env
}

// benchFigures are benchIngest's results (latencies in milliseconds).
type benchFigures struct {
	rate, wakeP50, wakeP99, crossP50, crossP99 float64
}

// benchIngest sends perOp callbacks from 32 senders, as fast as they are acknowledged or, with
// rate > 0, paced to rate callbacks per second in total. Callback i goes to s.ingest[i % n];
// the waiters follow every request on s.waiters. With several instances it also reports the
// wake-up latency of the callbacks ingested by another instance than the waiters' (cross-wake).
func benchIngest(b *testing.B, baseline float64, s benchSetup, withWaiters bool, rate int) benchFigures {
	const (
		senders   = 32
		requests  = 64
		waitParam = "30s"
	)
	perOp := 20000
	if rate > 0 {
		perOp = 5 * rate
	}
	e := s.waiters
	batchCount := func() float64 {
		n := 0.0
		for _, x := range s.ingest {
			n += x.metric("thingspace_relay_commit_batch_size_callbacks_count")
		}
		return n
	}
	var rates, acks, wakes, cross []float64
	var batches float64
	b.ResetTimer()
	for op := range b.N {
		sent := make([]atomic.Int64, perOp) // UnixNano of each ingest's start
		got := make([]atomic.Int64, perOp)  // UnixNano of the waiter receiving it
		ackLat := make([]float64, perOp)
		prefix := fmt.Sprintf("B%d-", op)
		ctx, cancel := context.WithCancel(context.Background())
		var received atomic.Int64
		var wwg sync.WaitGroup
		waitClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: requests + 8}}
		for r := range requests {
			if !withWaiters {
				break
			}
			wwg.Add(1)
			go func() {
				defer wwg.Done()
				after := int64(0)
				for ctx.Err() == nil {
					req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/v1/requests/%s%d/callbacks?after=%d&wait=%s&limit=10000", e.api.URL, prefix, r, after, waitParam), nil)
					req.Header.Set("Authorization", "Bearer "+apiToken)
					resp, err := waitClient.Do(req)
					if err != nil {
						continue
					}
					var out relayapi.CallbackPage
					err = json.NewDecoder(resp.Body).Decode(&out)
					resp.Body.Close()
					now := time.Now().UnixNano()
					if err != nil {
						continue
					}
					for _, c := range out.Callbacks {
						var body struct {
							DeviceIDs []struct{ ID string } `json:"deviceIds"`
						}
						json.Unmarshal(c.Body, &body)
						var n int
						if len(body.DeviceIDs) > 0 {
							fmt.Sscanf(body.DeviceIDs[0].ID, "E%d", &n)
							if got[n].CompareAndSwap(0, now) {
								received.Add(1)
							}
						}
					}
					after = out.NextAfter
				}
			}()
		}
		// Let the waiters start waiting.
		for i := 0; i < 200 && withWaiters && e.metric("thingspace_relay_waiters") < requests; i++ {
			time.Sleep(10 * time.Millisecond)
		}
		batchesBefore := batchCount()
		var next atomic.Int64
		var failed atomic.Int64
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: senders + 8}}
		start := time.Now()
		var swg sync.WaitGroup
		for range senders {
			swg.Add(1)
			go func() {
				defer swg.Done()
				for {
					i := next.Add(1) - 1
					if i >= int64(perOp) {
						return
					}
					if rate > 0 {
						due := start.Add(time.Duration(i) * time.Second / time.Duration(rate))
						time.Sleep(time.Until(due))
					}
					body := cbBody(fmt.Sprintf("%s%d", prefix, i%requests), "Success", 1, "eid", fmt.Sprintf("E%06d", i))
					t0 := time.Now()
					sent[i].Store(t0.UnixNano())
					via := s.ingest[int(i)%len(s.ingest)]
					if !ingestOnce(client, via.ingest.URL, body) {
						failed.Add(1)
						continue
					}
					ackLat[i] = float64(time.Since(t0).Microseconds()) / 1000
				}
			}()
		}
		swg.Wait()
		elapsed := time.Since(start)
		if failed.Load() > 0 {
			b.Fatalf("%d ingests failed", failed.Load())
		}
		for i := 0; i < 1000 && withWaiters && received.Load() < int64(perOp); i++ {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		wwg.Wait()
		if withWaiters && received.Load() < int64(perOp) {
			b.Fatalf("waiters received %d of %d callbacks", received.Load(), perOp)
		}
		rates = append(rates, float64(perOp)/elapsed.Seconds())
		acks = append(acks, ackLat...)
		for i := range perOp {
			if withWaiters {
				w := float64(got[i].Load()-sent[i].Load()) / 1e6
				wakes = append(wakes, w)
				if s.ingest[i%len(s.ingest)] != s.waiters {
					cross = append(cross, w)
				}
			}
		}
		batches += batchCount() - batchesBefore
	}
	b.StopTimer()
	achieved := 0.0
	for _, r := range rates {
		achieved += r
	}
	achieved /= float64(len(rates))
	slices.Sort(acks)
	slices.Sort(wakes)
	slices.Sort(cross)
	pct := func(s []float64, p float64) float64 {
		if len(s) == 0 {
			return 0
		}
		return s[min(len(s)-1, int(p*float64(len(s))))]
	}
	sum := func(name string) float64 {
		t := 0.0
		for _, x := range s.ingest {
			t += x.metric(name)
		}
		return t
	}
	b.ReportMetric(achieved, "callbacks/s")
	b.ReportMetric(baseline, "single-commits/s")
	b.ReportMetric(achieved/baseline, "x-single-commit")
	b.ReportMetric(float64(perOp*b.N)/batches, "callbacks/commit")
	b.ReportMetric(1000*sum(`thingspace_relay_store_operation_duration_seconds_sum{op="append"}`)/sum(`thingspace_relay_store_operation_duration_seconds_count{op="append"}`), "commit-mean-ms")
	b.ReportMetric(pct(acks, 0.5), "ack-p50-ms")
	b.ReportMetric(pct(acks, 0.99), "ack-p99-ms")
	f := benchFigures{rate: achieved}
	if withWaiters {
		f.wakeP50, f.wakeP99 = pct(wakes, 0.5), pct(wakes, 0.99)
		b.ReportMetric(f.wakeP50, "wake-p50-ms")
		b.ReportMetric(f.wakeP99, "wake-p99-ms")
		if len(cross) > 0 {
			f.crossP50, f.crossP99 = pct(cross, 0.5), pct(cross, 0.99)
			b.ReportMetric(f.crossP50, "cross-wake-p50-ms")
			b.ReportMetric(f.crossP99, "cross-wake-p99-ms")
		}
	}
	return f
}

// BenchmarkLookupAPI: POST /v1/devices/lookup of 10,000 devices with 4 identifiers each over
// HTTP on 127.0.0.1 (SQLite), the fleet of storetest.LookupFixture: the store's lookup plus the
// JSON both ways. One op is one call.
//
//	go test -run '^$' -bench BenchmarkLookupAPI -benchmem ./internal/relay/
func BenchmarkLookupAPI(b *testing.B) {
	e := newEnv(b, quietLogs)
	devs := storetest.LookupFixture(b, e.store, 10000)
	body, _ := json.Marshal(relayapi.LookupRequest{Devices: apiDevices(devs)})
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		req, _ := http.NewRequest("POST", e.api.URL+"/v1/devices/lookup", strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+apiToken)
		resp, err := e.client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		var out relayapi.Lookup
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || len(out.Devices) != len(devs) {
			b.Fatalf("%d %v", resp.StatusCode, err)
		}
	}
}
