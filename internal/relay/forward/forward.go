// Package forward delivers the relay's outbox (store.Outbox) to one URL: the platform that
// received an account's callbacks before the relay took over the account's one registration
// with ThingSpace.
//
// Delivery is at least once. An entry leaves the outbox only after the target answered 2xx; an
// answer lost on the way back, or a relay stopped between the answer and the removal, sends it
// again. Each request carries the callback's request id and seq (Idempotency-Key) so that the
// target can drop repeats.
package forward

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store"
	"github.com/fleetform/terraform-provider-thingspace/internal/retry"
)

// Headers of a forwarded callback.
const (
	HeaderRequestID = "X-Thingspace-Relay-Request-Id"
	HeaderSeq       = "X-Thingspace-Relay-Seq"
	HeaderAttempt   = "X-Thingspace-Relay-Attempt"
	HeaderAccount   = "X-Thingspace-Relay-Account"
	// HeaderIdempotencyKey is "<request id>/<seq>": the same for every delivery of a callback.
	HeaderIdempotencyKey = "Idempotency-Key"
)

// Config configures a Forwarder. URL is required.
type Config struct {
	// URL receives every stored callback, POSTed as JSON. It may not carry credentials.
	URL string
	// Username and Password, when either is set, authenticate to URL (Basic auth). They are
	// never logged.
	Username, Password string
	// Timeout bounds one attempt (default 30s). An attempt's claim on its entry lasts twice as
	// long, so no other instance takes the entry meanwhile.
	Timeout time.Duration
	// MinBackoff and MaxBackoff bound the wait before another attempt (defaults 1s, or
	// MaxBackoff when shorter, and 5m): it doubles per failed attempt, with jitter (between half
	// and all of it).
	MinBackoff, MaxBackoff time.Duration
	// MaxRetryAfter caps how long a Retry-After answer may defer an entry (default 1h).
	MaxRetryAfter time.Duration
	// Batch is the most entries claimed at once (default 32); Concurrency the most delivered at
	// once (default 4).
	Batch, Concurrency int
	// PollInterval is how often an idle forwarder looks at the outbox (default 1s), for entries
	// queued by other instances sharing the store and for claims that ended.
	PollInterval time.Duration
	// Client sends the requests (default: a client that does not follow redirects, so that
	// credentials never go anywhere but URL). Its Timeout is not used; Timeout is.
	Client *http.Client
	// UserAgent is sent with every request.
	UserAgent string
	Logger    *slog.Logger
}

func (c *Config) setDefaults() error {
	u, err := url.Parse(c.URL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may hold credentials
		}
		return fmt.Errorf("forward URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("forward URL: want http(s)://host/path")
	}
	if u.User != nil {
		// A URL is logged and shown in process lists; credentials go in Username/Password.
		return errors.New("forward URL: credentials in the URL are not accepted; give them as Basic auth credentials")
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 5 * time.Minute
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = min(time.Second, c.MaxBackoff)
	}
	c.MaxBackoff = max(c.MaxBackoff, c.MinBackoff)
	if c.MaxRetryAfter <= 0 {
		c.MaxRetryAfter = time.Hour
	}
	if c.Batch <= 0 {
		c.Batch = 32
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.Client == nil {
		c.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Forwarder delivers an outbox to Config.URL.
type Forwarder struct {
	cfg  Config
	st   store.Outbox
	log  *slog.Logger
	wake chan struct{}
	m    metrics

	mu      sync.Mutex
	failing bool // the last attempt failed (logged once per outage, not per attempt)
}

type metrics struct {
	pending   prometheus.Gauge
	oldest    prometheus.Gauge
	delivered prometheus.Counter
	failed    *prometheus.CounterVec
	duration  prometheus.Histogram
}

// Failure reasons (the reason label of thingspace_relay_forward_failed_attempts_total).
const (
	reasonTransport = "transport" // no answer: connection refused, reset, DNS, TLS
	reasonTimeout   = "timeout"
	reason3xx       = "status_3xx"
	reason4xx       = "status_4xx"
	reason5xx       = "status_5xx"
	reasonShutdown  = "shutdown" // the relay stopped during the attempt
)

// New returns a forwarder over st and registers its metrics with reg.
func New(st store.Outbox, cfg Config, reg prometheus.Registerer) (*Forwarder, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	f := &Forwarder{cfg: cfg, st: st, log: cfg.Logger.With("forward_to", cfg.URL), wake: make(chan struct{}, 1)}
	f.m = metrics{
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "thingspace_relay_forward_pending",
			Help: "Callbacks in the outbox, not yet delivered to the forward target.",
		}),
		oldest: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "thingspace_relay_forward_oldest_pending_age_seconds",
			Help: "Age of the oldest undelivered callback in the outbox (0 when empty).",
		}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "thingspace_relay_forward_delivered_total",
			Help: "Callbacks delivered to the forward target (2xx) and removed from the outbox.",
		}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "thingspace_relay_forward_failed_attempts_total",
			Help: "Failed forward attempts by reason: transport, timeout, status_3xx, status_4xx, status_5xx, shutdown.",
		}, []string{"reason"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "thingspace_relay_forward_attempt_duration_seconds",
			Help:    "Duration of forward attempts, successful or not.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
	}
	for _, r := range []string{reasonTransport, reasonTimeout, reason3xx, reason4xx, reason5xx, reasonShutdown} {
		f.m.failed.WithLabelValues(r)
	}
	if reg != nil {
		if err := errors.Join(reg.Register(f.m.pending), reg.Register(f.m.oldest), reg.Register(f.m.delivered),
			reg.Register(f.m.failed), reg.Register(f.m.duration)); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// Wake tells the forwarder that entries were queued.
func (f *Forwarder) Wake() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends. Attempts interrupted then are made due again at once, so that a
// restarted relay resumes them without waiting for their claims to end.
func (f *Forwarder) Run(ctx context.Context) {
	var lastStats time.Time
	for ctx.Err() == nil {
		claimed, next := f.round(ctx)
		if now := time.Now(); now.Sub(lastStats) >= f.cfg.PollInterval || claimed == 0 {
			f.refreshStats(ctx)
			lastStats = now
		}
		if claimed == f.cfg.Batch {
			continue // more may be due
		}
		wait := f.cfg.PollInterval
		if !next.IsZero() {
			wait = min(wait, max(time.Until(next), 0))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-f.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

func (f *Forwarder) refreshStats(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := f.st.OutboxStats(sctx)
	if err != nil {
		if ctx.Err() == nil {
			f.log.Warn("reading the outbox size failed", "err", err)
		}
		return
	}
	f.m.pending.Set(float64(st.Pending))
	if st.Oldest.IsZero() {
		f.m.oldest.Set(0)
	} else {
		f.m.oldest.Set(max(time.Since(st.Oldest).Seconds(), 0))
	}
}

// round claims the due entries and attempts each once. It returns how many it claimed and the
// earliest retry it scheduled (zero: none).
func (f *Forwarder) round(ctx context.Context) (int, time.Time) {
	if ctx.Err() != nil {
		return 0, time.Time{}
	}
	// Not cancelled by shutdown: a claim cancelled while its transaction commits may have
	// claimed entries without returning them, and they would wait for the claim to end (twice
	// Timeout) before anyone sends them. Claimed entries are attempted and released below.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	entries, err := f.st.ClaimForwards(cctx, time.Now(), 2*f.cfg.Timeout, f.cfg.Batch)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			f.log.Warn("claiming outbox entries failed", "err", err)
		}
		return 0, time.Time{}
	}
	var (
		mu   sync.Mutex
		next time.Time
		wg   sync.WaitGroup
		sem  = make(chan struct{}, f.cfg.Concurrency)
	)
	for _, e := range entries {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if at, again := f.attempt(ctx, e); again {
				mu.Lock()
				if next.IsZero() || at.Before(next) {
					next = at
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return len(entries), next
}

// attempt delivers one entry and records the outcome; again reports a scheduled next attempt.
func (f *Forwarder) attempt(ctx context.Context, e store.Forward) (at time.Time, again bool) {
	start := time.Now()
	res := f.send(ctx, e)
	f.m.duration.Observe(time.Since(start).Seconds())
	// The outcome is recorded even when ctx ended: otherwise a delivered entry stays claimed
	// and is sent again after a restart.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if res.ok {
		f.m.delivered.Inc()
		f.recovered()
		if err := f.st.ForwardDone(sctx, e.ID); err != nil {
			// It stays claimed, and is delivered again when the claim ends: a duplicate.
			f.log.Warn("removing a delivered entry from the outbox failed; it will be delivered again",
				"err", err, "request_id", e.RequestID, "seq", e.Seq)
		}
		return time.Time{}, false
	}
	if ctx.Err() != nil {
		res.reason, res.detail = reasonShutdown, "interrupted by shutdown"
	}
	f.m.failed.WithLabelValues(res.reason).Inc()
	delay := time.Duration(0)
	if res.reason != reasonShutdown {
		delay = f.retryDelay(e.Attempts, res.retryAfter, nil)
	}
	at = time.Now().Add(delay)
	f.failed(e, res, delay)
	if err := f.st.ForwardRetry(sctx, e.ID, e.Attempts, at, res.detail); err != nil {
		f.log.Warn("scheduling a forward retry failed; the entry is due again when its claim ends",
			"err", err, "request_id", e.RequestID, "seq", e.Seq)
		return e.ClaimUntil, true
	}
	return at, true
}

// failed logs a failed attempt: the first of an outage at Warn, the others at Debug.
func (f *Forwarder) failed(e store.Forward, res result, delay time.Duration) {
	f.mu.Lock()
	first := !f.failing
	f.failing = true
	f.mu.Unlock()
	level := slog.LevelDebug
	msg := "forward attempt failed"
	if first && res.reason != reasonShutdown {
		level, msg = slog.LevelWarn, "forward target failing; callbacks wait in the outbox"
	}
	f.log.Log(context.Background(), level, msg, "reason", res.reason, "error", res.detail,
		"request_id", e.RequestID, "seq", e.Seq, "attempt", e.Attempts, "retry_in", delay.String())
}

func (f *Forwarder) recovered() {
	f.mu.Lock()
	was := f.failing
	f.failing = false
	f.mu.Unlock()
	if was {
		f.log.Info("forward target accepting callbacks again")
	}
}

type result struct {
	ok         bool
	reason     string
	detail     string // for the entry's LastError and the logs: never credentials
	retryAfter string // the target's Retry-After header, if it sent one
}

func (f *Forwarder) send(ctx context.Context, e store.Forward) result {
	actx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, f.cfg.URL, bytes.NewReader(e.Body))
	if err != nil {
		return result{reason: reasonTransport, detail: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	if f.cfg.UserAgent != "" {
		req.Header.Set("User-Agent", f.cfg.UserAgent)
	}
	seq := strconv.FormatInt(e.Seq, 10)
	req.Header.Set(HeaderRequestID, e.RequestID)
	req.Header.Set(HeaderSeq, seq)
	req.Header.Set(HeaderAttempt, strconv.Itoa(e.Attempts))
	req.Header.Set(HeaderIdempotencyKey, e.RequestID+"/"+seq)
	if e.Account != "" {
		req.Header.Set(HeaderAccount, e.Account)
	}
	if f.cfg.Username != "" || f.cfg.Password != "" {
		req.SetBasicAuth(f.cfg.Username, f.cfg.Password)
	}
	resp, err := f.cfg.Client.Do(req)
	if err != nil {
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
			return result{reason: reasonTimeout, detail: fmt.Sprintf("no answer within %v", f.cfg.Timeout)}
		}
		return result{reason: reasonTransport, detail: err.Error()}
	}
	// Read a little of the body so that the connection can be reused; it is not kept.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return result{ok: true}
	}
	r := result{detail: "HTTP " + resp.Status}
	switch {
	case resp.StatusCode >= 500:
		r.reason = reason5xx
	case resp.StatusCode >= 400:
		r.reason = reason4xx
	default:
		r.reason = reason3xx
	}
	r.retryAfter = resp.Header.Get("Retry-After")
	return r
}

// retryDelay is the wait before the next attempt of an entry that has failed attempts times
// (1 or more): a Retry-After the target sent (at least MinBackoff, at most MaxRetryAfter), or
// else MinBackoff doubled per earlier failure up to MaxBackoff, of which a random half at most
// is dropped, so that entries queued together do not retry together. rnd: nil, or the
// jitter's source pinned by a test.
func (f *Forwarder) retryDelay(attempts int, retryAfter string, rnd func() float64) time.Duration {
	b := retry.Backoff{Base: f.cfg.MinBackoff, Max: f.cfg.MaxBackoff,
		MinRetryAfter: f.cfg.MinBackoff, MaxRetryAfter: f.cfg.MaxRetryAfter, Rand: rnd}
	return b.Wait(attempts-1, retryAfter)
}
