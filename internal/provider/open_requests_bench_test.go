package provider

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/relay"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store/sqlite"
	"github.com/fleetform/terraform-provider-thingspace/internal/thingspace"
)

// BenchmarkOpenRequestChecks measures the relay questions a plan assignment asks before it
// sends anything (is a request open for this device?), for 200 devices with two identifiers
// each, against a relay on 127.0.0.1 answering at once or after a round trip of 5 ms (a relay
// in another data centre), with the relay client the provider builds.
func BenchmarkOpenRequestChecks(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "relay.db"))
	if err != nil {
		b.Fatal(err)
	}
	r, err := relay.New(relay.Config{Store: st, PathTokens: []string{testPathToken},
		APITokens: []relay.APIToken{{Token: testRelayToken}}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = r.Shutdown(ctx); _ = st.Close() })
	const n = 200
	devices := make([]thingspace.DeviceIDs, n)
	for i := range devices {
		devices[i] = thingspace.DeviceIDs{{Kind: thingspace.KindEID, ID: fmt.Sprintf("8904903299547035010402924%07d", i)},
			{Kind: thingspace.KindICCID, ID: fmt.Sprintf("891480000000%08d", i)}}
	}
	for _, rtt := range []time.Duration{0, 5 * time.Millisecond} {
		api := r.APIHandler()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			time.Sleep(rtt)
			api.ServeHTTP(w, req)
		}))
		cfg := &Config{RelayURL: srv.URL, RelayToken: testRelayToken, Client: &thingspace.Client{}}
		cfg.start()
		for _, workers := range []int{1, openRequestWorkers} {
			b.Run(fmt.Sprintf("rtt=%s,workers=%d", rtt, workers), func(b *testing.B) {
				for range b.N {
					if err := cfg.awaitOpenRequestsAll(ctx, "0000123456-00001", devices, workers); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/device")
			})
		}
		srv.Close()
	}
}
