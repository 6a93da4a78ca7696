package forward

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store"
)

// memOutbox is an outbox in memory that records what the forwarder did with each entry.
type memOutbox struct {
	mu      sync.Mutex
	entries []store.Forward
	done    []int64
	retries []scheduledRetry
}

type scheduledRetry struct {
	id       int64
	attempts int
	next     time.Time
	lastErr  string
}

func (o *memOutbox) ClaimForwards(_ context.Context, now time.Time, lease time.Duration, limit int) ([]store.Forward, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := o.entries
	o.entries = nil
	for i := range out {
		out[i].Attempts++
		out[i].ClaimUntil = now.Add(lease)
	}
	return out, nil
}

func (o *memOutbox) ForwardDone(_ context.Context, id int64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.done = append(o.done, id)
	return nil
}

func (o *memOutbox) ForwardRetry(_ context.Context, id int64, attempts int, next time.Time, lastErr string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.retries = append(o.retries, scheduledRetry{id, attempts, next, lastErr})
	return nil
}

func (o *memOutbox) OutboxStats(context.Context) (store.OutboxStats, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return store.OutboxStats{Pending: len(o.entries)}, nil
}

func newTestForwarder(t *testing.T, url string, o *memOutbox) *Forwarder {
	t.Helper()
	f, err := New(o, Config{URL: url, MinBackoff: time.Second, MaxBackoff: time.Minute, Username: "u", Password: "pw"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// A target that asks for time (429 or 503 with Retry-After) gets it: the entry is not retried
// earlier. Seconds and HTTP dates are both understood.
func TestRetryAfterHonoured(t *testing.T) {
	for _, ra := range []string{"120", time.Now().Add(125 * time.Second).UTC().Format(http.TimeFormat)} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", ra)
			w.WriteHeader(http.StatusTooManyRequests)
		}))
		o := &memOutbox{entries: []store.Forward{{ID: 7, RequestID: "r", Seq: 1, Body: []byte(`{}`)}}}
		f := newTestForwarder(t, srv.URL, o)
		before := time.Now()
		f.round(context.Background())
		srv.Close()
		if len(o.retries) != 1 || len(o.done) != 0 {
			t.Fatalf("Retry-After %s: retries %+v, done %v", ra, o.retries, o.done)
		}
		r := o.retries[0]
		if r.id != 7 || r.attempts != 1 || r.next.Before(before.Add(119*time.Second)) || !strings.Contains(r.lastErr, "429") {
			t.Fatalf("Retry-After %s: rescheduled %+v, want not before %v and the status recorded", ra, r, before.Add(120*time.Second))
		}
	}
}

// Without Retry-After the wait doubles per failed attempt up to the maximum, and jitter takes
// at most half of it away (so that entries failed together spread out). A Retry-After is held
// within [MinBackoff, MaxRetryAfter].
func TestRetryDelayBackoffWithJitter(t *testing.T) {
	f := &Forwarder{cfg: Config{MinBackoff: time.Second, MaxBackoff: time.Minute, MaxRetryAfter: time.Hour}}
	for _, c := range []struct {
		attempts int
		full     time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {7, time.Minute}, {60, time.Minute}} {
		lo := f.retryDelay(c.attempts, "", func() float64 { return 0 })
		hi := f.retryDelay(c.attempts, "", func() float64 { return 0.999999 })
		if lo != c.full/2 || hi < c.full*99/100 || hi > c.full {
			t.Errorf("attempt %d: delay in [%v, %v], want [%v, %v]", c.attempts, lo, hi, c.full/2, c.full)
		}
	}
	if d := f.retryDelay(1, "0", nil); d != time.Second {
		t.Errorf("Retry-After 0: %v, want the minimum back-off (1s), not a hot loop", d)
	}
	if d := f.retryDelay(1, "172800", nil); d != time.Hour {
		t.Errorf("Retry-After 48h: %v, want the 1h cap", d)
	}
}

// A refusal is not a verdict: 4xx answers are retried (an acknowledged callback is never
// dropped), and a redirect is not followed, so the Basic-auth credentials reach only the URL
// the operator configured.
func TestRefusalsKeptAndRedirectsNotFollowed(t *testing.T) {
	var elsewhere bool
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere = true }))
	defer other.Close()
	for _, h := range []http.HandlerFunc{
		func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadRequest) },
		func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.URL, http.StatusTemporaryRedirect)
		},
	} {
		srv := httptest.NewServer(h)
		o := &memOutbox{entries: []store.Forward{{ID: 1, RequestID: "r", Seq: 1, Body: []byte(`{}`)}}}
		newTestForwarder(t, srv.URL, o).round(context.Background())
		srv.Close()
		if len(o.done) != 0 || len(o.retries) != 1 {
			t.Fatalf("done %v, retries %+v: want the entry kept for a retry", o.done, o.retries)
		}
	}
	if elsewhere {
		t.Fatal("the redirect was followed")
	}
}

func TestConfigRefusesCredentialsInURL(t *testing.T) {
	for _, u := range []string{"https://user:pw@platform.example/cb", "ftp://platform.example/", "platform.example/cb"} {
		if _, err := New(&memOutbox{}, Config{URL: u}, nil); err == nil {
			t.Errorf("%s accepted", u)
		} else if strings.Contains(err.Error(), "pw@") {
			t.Errorf("the error repeats the credentials: %v", err)
		}
	}
}
