package relayapi

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// Temporary failures are retried, waiting what the relay's Retry-After says, in either of its
// forms (seconds, or an HTTP date); a 410 is ErrGone and a refusal an *Error, neither retried.
func TestClientRetriesHonouringRetryAfter(t *testing.T) {
	for _, retryAfter := range []string{"1", "date"} {
		var calls atomic.Int32
		var first time.Time
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if calls.Add(1) == 1 {
				first = time.Now()
				ra := retryAfter
				if ra == "date" {
					// Two seconds ahead: at least one whole second once truncated to the second.
					ra = time.Now().Add(2 * time.Second).UTC().Format(http.TimeFormat)
				}
				w.Header().Set("Retry-After", ra)
				http.Error(w, "restarting", http.StatusServiceUnavailable)
				return
			}
			if since := time.Since(first); since < 900*time.Millisecond {
				t.Errorf("Retry-After %s: retried after %v", retryAfter, since)
			}
			w.Write([]byte(`{"version":"v1","ingest_url_sha256":[]}`))
		}))
		info, err := NewClient(srv.URL, "t", nil).Info(context.Background())
		srv.Close()
		if err != nil || info.Version != "v1" || calls.Load() != 2 {
			t.Fatalf("Retry-After %s: info %+v, err %v, calls %d", retryAfter, info, err, calls.Load())
		}
	}
	for _, c := range []struct {
		status int
		check  func(error) bool
	}{
		{http.StatusGone, func(err error) bool { return errors.Is(err, ErrGone) }},
		{http.StatusUnauthorized, func(err error) bool {
			var e *Error
			return errors.As(err, &e) && e.Status == http.StatusUnauthorized && RetryAfter(err) == "7"
		}},
	} {
		var calls atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(c.status)
		}))
		_, err := NewClient(srv.URL, "t", nil).Request(context.Background(), "R1")
		srv.Close()
		if !c.check(err) || calls.Load() != 1 {
			t.Errorf("HTTP %d: err %v after %d calls", c.status, err, calls.Load())
		}
	}
}
