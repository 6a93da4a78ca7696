// Package retry is the one way this project waits before trying an HTTP call again:
// exponential backoff with jitter, a server's Retry-After honoured instead when it sent one,
// and a sleep that ends with its context. The ThingSpace client, the relay's API client, the
// waiter's long-poll and the relay's forwarder each used to carry their own copy, and their
// Retry-After parsers disagreed (one ignored HTTP dates). It imports the standard library only.
package retry

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Backoff says how long to wait before retry n (0 for the first retry). Without a Retry-After
// the wait is Base doubled n times, at most Max, of which jitter drops a random part of up to
// half, so that callers that failed together do not come back together. A server's Retry-After
// wins, held within [MinRetryAfter, MaxRetryAfter].
type Backoff struct {
	Base, Max time.Duration
	// MinRetryAfter is the shortest wait a Retry-After may ask for: a floor above 0 keeps
	// "Retry-After: 0" from becoming a hot loop. 0: none (the server is taken at its word).
	MinRetryAfter time.Duration
	// MaxRetryAfter caps a Retry-After; 0: no cap but ParseRetryAfter's day.
	MaxRetryAfter time.Duration
	// ZeroIsNoAdvice reads a Retry-After of 0 (or a date in the past) as no header: the wait
	// is Delay(n), which keeps growing while the server keeps answering 0. For a server that
	// may answer 0 while it restarts (the relay behind a proxy), where MinRetryAfter alone
	// would poll at a fixed short interval for as long as it lasts.
	ZeroIsNoAdvice bool
	// Rand returns a number in [0, 1); nil is math/rand/v2.Float64. Tests pin it.
	Rand func() float64
}

// Delay is the wait before retry n without a Retry-After: in [d/2, d] for d = Base·2ⁿ
// capped at Max.
func (b Backoff) Delay(n int) time.Duration {
	d := b.Base
	for i := 0; i < n && d < b.Max; i++ {
		d *= 2
	}
	if d <= 0 { // overflowed
		d = b.Max
	}
	d = min(d, b.Max)
	rnd := b.Rand
	if rnd == nil {
		rnd = rand.Float64
	}
	return d/2 + time.Duration(rnd()*float64(d-d/2))
}

// Wait is the wait before retry n after an answer whose Retry-After header was retryAfter
// ("" when there was none, or no answer): the header's wait when it is valid, else Delay(n).
func (b Backoff) Wait(n int, retryAfter string) time.Duration {
	d, ok := ParseRetryAfter(retryAfter, time.Now())
	if !ok || (d == 0 && b.ZeroIsNoAdvice) {
		return b.Delay(n)
	}
	d = max(d, b.MinRetryAfter)
	if b.MaxRetryAfter > 0 {
		d = min(d, b.MaxRetryAfter)
	}
	return d
}

// maxRetryAfter bounds what a Retry-After may ask for: a longer ask is read as a day.
const maxRetryAfter = 24 * time.Hour

// ParseRetryAfter reads a Retry-After header (RFC 9110, section 10.2.3): delay-seconds, or an
// HTTP date, which is measured from now (a date in the past is 0). ok is false for an empty or
// malformed header, and for negative seconds. Waits longer than a day are cut to a day.
func ParseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(min(n, int64(maxRetryAfter/time.Second))) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter), true
	}
	return 0, false
}

// Sleep waits d, or until ctx ends, and then returns ctx's error.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
