package relay

import (
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/fleetform/terraform-provider-thingspace/internal/relay/forward"
)

// Dashboards and alerts select the relay's series by the thingspace_relay_ prefix, and read a
// histogram's unit from its name's suffix: a metric added without either would go unnoticed.
func TestMetricNamesPrefixedWithUnits(t *testing.T) {
	m := newMetrics("test")
	if _, err := forward.New(nil, forward.Config{URL: "http://127.0.0.1:1/"}, m.reg); err != nil {
		t.Fatal(err)
	}
	m.waitDuration.WithLabelValues("data").Observe(1)
	m.storeDuration.WithLabelValues("append").Observe(1)
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	units := []string{"_seconds", "_bytes", "_callbacks", "_attempts"}
	seen := 0
	for _, f := range fams {
		name := f.GetName()
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") {
			continue
		}
		seen++
		if !strings.HasPrefix(name, "thingspace_relay_") {
			t.Errorf("%s: not prefixed thingspace_relay_", name)
		}
		if f.GetType() == dto.MetricType_HISTOGRAM {
			ok := false
			for _, u := range units {
				ok = ok || strings.HasSuffix(name, u)
			}
			if !ok {
				t.Errorf("histogram %s: no unit suffix (one of %v)", name, units)
			}
		}
	}
	if seen < 10 {
		t.Fatalf("only %d relay metrics gathered", seen)
	}
}
