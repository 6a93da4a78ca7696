package relay

import (
	"net/http"
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the relay's Prometheus metrics, on a registry of its own (several relays in one
// process, as in tests, do not collide).
type metrics struct {
	reg            *prometheus.Registry
	callbacks      *prometheus.CounterVec
	ingestDuration prometheus.Histogram
	carrierAttempt prometheus.Histogram
	storeDuration  *prometheus.HistogramVec
	waiters        prometheus.Gauge
	waitDuration   *prometheus.HistogramVec
	batchSize      prometheus.Histogram
	purged         prometheus.Counter
	changes        prometheus.Counter
	intents        *prometheus.CounterVec
}

func newMetrics(version string) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		callbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "thingspace_relay_callbacks_received_total",
			Help: "Callback deliveries by result: stored, duplicate, quarantined, unauthorized, forbidden, too_large, store_error, draining.",
		}, []string{"result"}),
		ingestDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "thingspace_relay_callback_ingest_duration_seconds",
			Help:    "Time from an ingest request's arrival to its answer.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		carrierAttempt: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "thingspace_relay_callback_carrier_attempts",
			Help:    "The callbackCount of callbacks when first stored (rising values: the carrier is retrying).",
			Buckets: []float64{1, 2, 3, 4, 5},
		}),
		storeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "thingspace_relay_store_operation_duration_seconds",
			Help:    "Store operation latency by operation.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"op"}),
		waiters: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "thingspace_relay_waiters",
			Help: "Long-polls currently waiting.",
		}),
		waitDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "thingspace_relay_wait_duration_seconds",
			Help:    "Long-poll duration by outcome: data, timeout, shutdown, canceled, gone.",
			Buckets: []float64{.001, .01, .05, .1, .5, 1, 5, 15, 30, 60, 120, 300},
		}, []string{"outcome"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "thingspace_relay_commit_batch_size_callbacks",
			Help:    "Callbacks committed per store transaction (group commit).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024},
		}),
		purged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "thingspace_relay_retention_deleted_total",
			Help: "Requests deleted by the retention purge.",
		}),
		changes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "thingspace_relay_notifications_received_total",
			Help: "Change hints received from the store.",
		}),
		intents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "thingspace_relay_intents_total",
			Help: "Write-ahead intents by event: written (new), accepted, refused, resolved (including superseded).",
		}, []string{"state"}),
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "thingspace_relay_build_info",
		Help: "Build information.",
	}, []string{"version", "goversion"})
	build.WithLabelValues(version, runtime.Version()).Set(1)
	m.reg.MustRegister(m.callbacks, m.ingestDuration, m.carrierAttempt, m.storeDuration, m.waiters,
		m.waitDuration, m.batchSize, m.purged, m.changes, m.intents, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, r := range []string{"stored", "duplicate", "quarantined", "unauthorized", "forbidden", "too_large", "store_error", "draining"} {
		m.callbacks.WithLabelValues(r)
	}
	for _, s := range []string{"written", "accepted", "refused", "resolved"} {
		m.intents.WithLabelValues(s)
	}
	return m
}

func promhttpHandler(m *metrics) http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

func goVersion() string { return runtime.Version() }
