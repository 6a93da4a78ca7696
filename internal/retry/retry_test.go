package retry

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

// Without Retry-After the wait doubles per retry up to Max, and jitter takes at most half of
// it away.
func TestDelayDoublesToMaxWithJitter(t *testing.T) {
	b := Backoff{Base: time.Second, Max: time.Minute}
	for _, c := range []struct {
		n    int
		full time.Duration
	}{{0, time.Second}, {1, 2 * time.Second}, {2, 4 * time.Second}, {6, time.Minute}, {59, time.Minute}, {1000, time.Minute}} {
		b.Rand = func() float64 { return 0 }
		lo := b.Delay(c.n)
		b.Rand = func() float64 { return 0.999999 }
		hi := b.Delay(c.n)
		if lo != c.full/2 || hi < c.full*99/100 || hi > c.full {
			t.Errorf("retry %d: delay in [%v, %v], want [%v, %v]", c.n, lo, hi, c.full/2, c.full)
		}
	}
	b.Rand = nil
	for range 100 {
		if d := b.Delay(3); d < 4*time.Second || d > 8*time.Second {
			t.Fatalf("retry 3 with math/rand: %v, want within [4s, 8s]", d)
		}
	}
}

// A server's Retry-After wins over the backoff, held within the bounds the caller sets.
func TestWaitHonoursRetryAfter(t *testing.T) {
	b := Backoff{Base: time.Hour, Max: time.Hour, Rand: func() float64 { return 0 }}
	for _, c := range []struct {
		header string
		want   time.Duration
	}{{"7", 7 * time.Second}, {"0", 0}, {"", 30 * time.Minute}, {"soon", 30 * time.Minute}, {"-1", 30 * time.Minute}} {
		if got := b.Wait(0, c.header); got != c.want {
			t.Errorf("Retry-After %q: %v, want %v", c.header, got, c.want)
		}
	}
	b = Backoff{Base: time.Second, Max: time.Minute, MinRetryAfter: time.Second, MaxRetryAfter: time.Hour}
	if d := b.Wait(0, "0"); d != time.Second {
		t.Errorf("Retry-After 0: %v, want the floor (1s), not a hot loop", d)
	}
	if d := b.Wait(0, "172800"); d != time.Hour {
		t.Errorf("Retry-After 48h: %v, want the 1h cap", d)
	}
	date := time.Now().Add(2 * time.Minute).UTC().Format(http.TimeFormat)
	if d := b.Wait(0, date); d < 118*time.Second || d > 2*time.Minute {
		t.Errorf("Retry-After %s: %v, want about 2m", date, d)
	}
}

// With ZeroIsNoAdvice, answers of "Retry-After: 0" (or a date in the past) in a row wait the
// growing backoff steps, as if the server had said nothing; a positive Retry-After still wins.
func TestWaitZeroIsNoAdvice(t *testing.T) {
	b := Backoff{Base: time.Second, Max: time.Minute, MinRetryAfter: 200 * time.Millisecond, ZeroIsNoAdvice: true,
		Rand: func() float64 { return 1 }}
	past := time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
	for n, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second} {
		if got := b.Wait(n, "0"); got != want {
			t.Errorf("retry %d after Retry-After 0: %v, want the backoff step %v", n, got, want)
		}
		if got := b.Wait(n, past); got != want {
			t.Errorf("retry %d after a Retry-After date in the past: %v, want the backoff step %v", n, got, want)
		}
	}
	if got := b.Wait(3, "2"); got != 2*time.Second {
		t.Errorf("Retry-After 2: %v, want 2s", got)
	}
}

// Delay does not overflow into a negative or zero wait for a large n and Max.
func TestDelayDoesNotOverflow(t *testing.T) {
	b := Backoff{Base: time.Second, Max: time.Duration(1<<63 - 1), Rand: func() float64 { return 1 }}
	if d := b.Delay(80); d <= 0 {
		t.Errorf("Delay(80) = %v, want a positive wait", d)
	}
}

// Both forms of RFC 9110's Retry-After are read: delay-seconds and an HTTP date.
func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"3", 3 * time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		{"0", 0, true},
		{"99999999999999", 24 * time.Hour, true},
		{now.Add(time.Hour).Format(http.TimeFormat), time.Hour, true},
		{"Friday, 04-Dec-26 12:00:30 GMT", 30 * time.Second, true}, // RFC 850, obsolete but allowed
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{now.Add(72 * time.Hour).Format(http.TimeFormat), 24 * time.Hour, true},
		{"", 0, false},
		{"-1", 0, false},
		{"soon", 0, false},
		{"1.5", 0, false},
	} {
		got, ok := ParseRetryAfter(c.v, now)
		if got != c.want || ok != c.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", c.v, got, ok, c.want, c.ok)
		}
	}
}

func TestSleepEndsWithItsContext(t *testing.T) {
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) || time.Since(start) > time.Second {
		t.Fatalf("Sleep on a cancelled context: %v after %v", err, time.Since(start))
	}
}
