package wait

import (
	"fmt"
	"testing"

	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// bulkFixture is a 10,000-device request with one warning for every tenth device and a
// terminal callback for every device.
func bulkFixture(b *testing.B, n int) ([]tsapi.DeviceIDs, []*tsapi.Callback) {
	b.Helper()
	devices := make([]tsapi.DeviceIDs, n)
	var cbs []*tsapi.Callback
	for i := range n {
		devices[i] = dev(fmt.Sprintf("E%05d", i), fmt.Sprintf("I%05d", i))
		if i%10 == 0 {
			cb, _ := tsapi.ParseCallback([]byte(fmt.Sprintf(`{"requestId":"r","deviceIds":[{"kind":"Eid","id":"E%05d"}],"status":"warning"}`, i)))
			cbs = append(cbs, cb)
		}
		cb, err := tsapi.ParseCallback([]byte(fmt.Sprintf(`{"requestId":"r","deviceIds":[{"kind":"Iccid","id":"I%05d"}],"status":"SUCCESS"}`, i)))
		if err != nil {
			b.Fatal(err)
		}
		cbs = append(cbs, cb)
	}
	return devices, cbs
}

// BenchmarkEvaluateIncremental10k: the watch's per-identifier bookkeeping, as the Waiter runs
// it for a 10,000-device bulk request (apply every callback, then evaluate every device).
func BenchmarkEvaluateIncremental10k(b *testing.B) {
	devices, cbs := bulkFixture(b, 10000)
	b.ResetTimer()
	for range b.N {
		wt := &watch{action: tsapi.ActionActivate, byID: map[string]*idResult{}}
		for i, cb := range cbs {
			wt.addCallback(int64(i+1), cb)
		}
		for _, d := range devices {
			if wt.evaluate(d).Status != tsapi.StatusSucceeded {
				b.Fatal("not succeeded")
			}
		}
	}
}

// BenchmarkEvaluateResolveDevices10k is the baseline: tsapi.ResolveDevices, the reference
// statement of the completion rules, which matches every callback against every device.
func BenchmarkEvaluateResolveDevices10k(b *testing.B) {
	devices, cbs := bulkFixture(b, 10000)
	b.ResetTimer()
	for range b.N {
		out := tsapi.ResolveDevices(tsapi.ActionActivate, devices, cbs)
		if out[len(out)-1].Status != tsapi.StatusSucceeded {
			b.Fatal("not succeeded")
		}
	}
}
