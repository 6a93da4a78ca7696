package wait

import (
	"fmt"
	"testing"

	"github.com/fleetform/terraform-provider-thingspace/internal/thingspace"
)

// bulkFixture is a 10,000-device request with one warning for every tenth device and a
// terminal callback for every device.
func bulkFixture(b *testing.B, n int) ([]thingspace.DeviceIDs, []*thingspace.Callback) {
	b.Helper()
	devices := make([]thingspace.DeviceIDs, n)
	var cbs []*thingspace.Callback
	for i := range n {
		devices[i] = dev(fmt.Sprintf("E%05d", i), fmt.Sprintf("I%05d", i))
		if i%10 == 0 {
			cb, _ := thingspace.ParseCallback([]byte(fmt.Sprintf(`{"requestId":"r","deviceIds":[{"kind":"Eid","id":"E%05d"}],"status":"warning"}`, i)))
			cbs = append(cbs, cb)
		}
		cb, err := thingspace.ParseCallback([]byte(fmt.Sprintf(`{"requestId":"r","deviceIds":[{"kind":"Iccid","id":"I%05d"}],"status":"SUCCESS"}`, i)))
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
		wt := &watch{action: thingspace.ActionActivate, byID: map[string]*idResult{}}
		for i, cb := range cbs {
			wt.addCallback(int64(i+1), cb)
		}
		for _, d := range devices {
			if wt.evaluate(d).Status != thingspace.StatusSucceeded {
				b.Fatal("not succeeded")
			}
		}
	}
}

// BenchmarkEvaluateResolveDevices10k is the baseline: thingspace.ResolveDevices, the reference
// statement of the completion rules, which matches every callback against every device.
func BenchmarkEvaluateResolveDevices10k(b *testing.B) {
	devices, cbs := bulkFixture(b, 10000)
	b.ResetTimer()
	for range b.N {
		out := thingspace.ResolveDevices(thingspace.ActionActivate, devices, cbs)
		if out[len(out)-1].Status != thingspace.StatusSucceeded {
			b.Fatal("not succeeded")
		}
	}
}
