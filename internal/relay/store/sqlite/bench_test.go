package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store/sqlite"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store/storetest"
)

// BenchmarkAppend measures the store alone: transactions of 1, 16 and 64 callbacks spread over
// 64 requests, without and with an outbox entry per callback (-forward-to)
// (go test -run '^$' -bench Append -benchtime 1x ./internal/relay/store/sqlite/).
func BenchmarkAppend(b *testing.B) {
	for _, c := range []struct {
		batch   int
		forward bool
	}{{1, false}, {1, true}, {16, false}, {64, false}, {64, true}} {
		batch := c.batch
		b.Run(fmt.Sprintf("batch=%d,forward=%v", batch, c.forward), func(b *testing.B) {
			st, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "b.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			body := []byte(`{"requestId":"R","deviceIds":[{"kind":"eid","id":"E000001"}],"status":"Success","callbackCount":1,"maxCallbackThreshold":4}`)
			n := 0
			start := time.Now()
			for range b.N {
				for k := 0; k < 10000/batch && time.Since(start) < 5*time.Second; k++ {
					cbs := make([]store.Callback, batch)
					for i := range cbs {
						cbs[i] = store.Callback{RequestID: fmt.Sprintf("R%d", n%64), ReceivedAt: time.Now(), Status: "succeeded", Terminal: true,
							ContentHash: fmt.Sprintf("%064x", n), Devices: []store.DeviceKey{{Kind: "eid", ID: fmt.Sprintf("E%07d", n)}}, Body: body,
							Forward: c.forward}
						n++
					}
					if _, err := st.Append(context.Background(), cbs); err != nil {
						b.Fatal(err)
					}
				}
			}
			el := time.Since(start)
			b.ReportMetric(float64(n)/el.Seconds(), "callbacks/s")
			b.ReportMetric(float64(n/batch)/el.Seconds(), "commits/s")
		})
	}
}

// BenchmarkLookupDevices: one LookupDevices of 10,000 devices with 4 identifiers each, over the
// fleet of storetest.LookupFixture. One op is one lookup.
//
//	go test -run '^$' -bench BenchmarkLookupDevices -benchmem ./internal/relay/store/sqlite/
func BenchmarkLookupDevices(b *testing.B) {
	st, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "b.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	devs := storetest.LookupFixture(b, st, 10000)
	storetest.BenchLookup(b, st, devs)
}
