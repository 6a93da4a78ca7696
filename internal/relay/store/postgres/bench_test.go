package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/relay/pgtest"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store/postgres"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store/storetest"
)

// BenchmarkAppendPostgres measures durable appends (fsync on, one commit per Append) in
// callbacks per second: serial batches of 1 and 64, 32 concurrent appenders of single callbacks
// (each on its own requests, or all on one bulk request), and 32 appenders spread over two
// instances. One op is one Append call.
//
//	go test -run '^$' -bench BenchmarkAppendPostgres -benchtime 3s ./internal/relay/store/postgres/
func BenchmarkAppendPostgres(b *testing.B) {
	cases := []struct {
		name      string
		batch     int
		workers   int
		instances int
		oneReq    bool
	}{
		{"batch=1", 1, 1, 1, false},
		{"batch=64", 64, 1, 1, false},
		{"concurrent=32/batch=1", 1, 32, 1, false},
		{"concurrent=32/batch=1/one-request", 1, 32, 1, true},
		{"concurrent=32/batch=64", 64, 32, 1, false},
		{"two-instances/concurrent=32/batch=1", 1, 32, 2, false},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			dsn := pgtest.Start(b)
			var stores []*postgres.Store
			for i := 0; i < tc.instances; i++ {
				stores = append(stores, open(b, dsn))
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			var failed atomic.Value
			b.ResetTimer()
			start := time.Now()
			for w := 0; w < tc.workers; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					s := stores[w%len(stores)]
					for {
						op := next.Add(1) - 1
						if op >= int64(b.N) {
							return
						}
						batch := make([]store.Callback, tc.batch)
						for i := range batch {
							req := fmt.Sprintf("w%d-%d", w, op/16) // 16 appends per request
							if tc.oneReq {
								req = "BULK"
							}
							batch[i] = storetest.CB(req, fmt.Sprintf("%d-%d", op, i), "succeeded", true, storetest.Base,
								storetest.K("eid", fmt.Sprintf("%d-%d", op, i)))
						}
						if _, err := s.Append(context.Background(), batch); err != nil {
							failed.Store(err)
							return
						}
					}
				}(w)
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if err, _ := failed.Load().(error); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N*tc.batch)/elapsed.Seconds(), "callbacks/s")
		})
	}
}

// BenchmarkLookupDevicesPostgres: one LookupDevices of 10,000 devices with 4 identifiers each,
// over the fleet of storetest.LookupFixture, on a throwaway server. One op is one lookup (one
// round trip).
//
//	go test -run '^$' -bench BenchmarkLookupDevicesPostgres -benchmem ./internal/relay/store/postgres/
func BenchmarkLookupDevicesPostgres(b *testing.B) {
	st := open(b, pgtest.Start(b))
	devs := storetest.LookupFixture(b, st, 10000)
	if _, err := st.Pool().Exec(context.Background(), `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	storetest.BenchLookup(b, st, devs)
}
