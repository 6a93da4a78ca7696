package relay_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/relay"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/forward"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store/sqlite"
)

// forwardTarget is the platform that received the callbacks before the relay: it refuses while
// refusing is set (503, Retry-After 0), and records what it accepted.
type forwardTarget struct {
	srv      *httptest.Server
	refusing atomic.Bool
	refused  atomic.Int64

	mu       sync.Mutex
	received map[string]int // Idempotency-Key -> deliveries accepted
	bodies   []string
	problems []string
}

func newForwardTarget(t *testing.T) *forwardTarget {
	ft := &forwardTarget{received: map[string]int{}}
	ft.refusing.Store(true)
	ft.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if ft.refusing.Load() {
			ft.refused.Add(1)
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		ft.mu.Lock()
		defer ft.mu.Unlock()
		key := r.Header.Get(forward.HeaderIdempotencyKey)
		want := r.Header.Get(forward.HeaderRequestID) + "/" + r.Header.Get(forward.HeaderSeq)
		user, pass, _ := r.BasicAuth()
		switch {
		case key != want:
			ft.problems = append(ft.problems, fmt.Sprintf("Idempotency-Key %q, want %q", key, want))
		case user != "platform" || pass != "fwd-s3cret":
			ft.problems = append(ft.problems, fmt.Sprintf("Basic auth %q:%q", user, pass))
		case r.Header.Get(forward.HeaderAccount) != "acme" || r.Header.Get("Content-Type") != "application/json":
			ft.problems = append(ft.problems, fmt.Sprintf("headers %v", r.Header))
		case !strings.Contains(string(b), `"requestId":"`+r.Header.Get(forward.HeaderRequestID)+`"`):
			ft.problems = append(ft.problems, "body of another callback: "+string(b))
		}
		ft.received[key]++
		ft.bodies = append(ft.bodies, string(b))
	}))
	t.Cleanup(ft.srv.Close)
	return ft
}

// duplicates reports the problems the target saw (t.Error) and counts the callbacks it received
// more than once.
func (ft *forwardTarget) duplicates(t *testing.T) int {
	t.Helper()
	ft.mu.Lock()
	defer ft.mu.Unlock()
	for _, p := range ft.problems {
		t.Error(p)
	}
	dups := 0
	for _, n := range ft.received {
		dups += n - 1
	}
	return dups
}

func (ft *forwardTarget) distinct() int {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return len(ft.received)
}

// An account's existing platform keeps receiving every callback the relay acknowledged, though
// it refused them for a while and the relay was stopped and started again meanwhile: the outbox
// is in the database, not in the process. What is forwarded is the redacted body, never the
// registration's credentials.
func TestForwardSurvivesRestart(t *testing.T) {
	const m = 40
	ft := newForwardTarget(t)
	fwd := func(c *relay.Config) {
		c.Forward = forward.Config{URL: ft.srv.URL + "/thingspace/callbacks", Username: "platform", Password: "fwd-s3cret",
			MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond, PollInterval: 10 * time.Millisecond}
	}
	e := newEnv(t, fwd)
	keys := map[string]bool{}
	for i := range m {
		// Two callbacks per request: the request's seq tells them apart.
		id := fmt.Sprintf("fw-%02d", i/2)
		status := "pending"
		if i%2 == 1 {
			status = "succeeded"
		}
		code, ans, _ := e.post(cbBody(id, status, 1, "eid", fmt.Sprintf("8904%028d", i/2)))
		if code != 200 || ans["result"] != "stored" {
			t.Fatalf("callback %d: %d %v", i, code, ans)
		}
		keys[fmt.Sprintf("%s/%v", id, ans["seq"])] = true
	}
	// ThingSpace sending one again (its retry of a lost answer) is not queued again.
	if code, ans, _ := e.post(cbBody("fw-00", "pending", 2, "eid", fmt.Sprintf("8904%028d", 0))); code != 200 || ans["result"] != "duplicate" {
		t.Fatalf("repeated callback: %d %v", code, ans)
	}
	waitFor(t, "the target to refuse 3 attempts per callback", func() bool { return ft.refused.Load() >= 3*m })
	waitFor(t, "the outbox size metric", func() bool { return e.metric("thingspace_relay_forward_pending") == m })
	if f := e.metric(`thingspace_relay_forward_failed_attempts_total{reason="status_5xx"}`); f < 3*m {
		t.Fatalf("failed attempts metric %v, want at least %d", f, 3*m)
	}

	// Stopped while every callback is still undelivered, and started again on the same file.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.relay.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	e.store.Close()
	refusedBefore := ft.refused.Load()
	st, err := sqlite.Open(context.Background(), e.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e2 := newEnvWith(t, st, fwd)
	ft.refusing.Store(false)
	waitFor(t, "every callback at the target", func() bool { return ft.distinct() == m })
	waitFor(t, "an empty outbox", func() bool {
		return e2.metric("thingspace_relay_forward_pending") == 0 && e2.metric("thingspace_relay_forward_delivered_total") >= m
	})

	dups := ft.duplicates(t)
	ft.mu.Lock()
	defer ft.mu.Unlock()
	for k := range ft.received {
		if !keys[k] {
			t.Errorf("forwarded %s, which the relay did not acknowledge", k)
		}
	}
	for _, b := range ft.bodies {
		if strings.Contains(b, "tspass") || strings.Contains(b, "tsuser") {
			t.Fatalf("forwarded body carries the callback credentials: %s", b)
		}
	}
	for _, logs := range []string{e.logs.String(), e2.logs.String()} {
		if strings.Contains(logs, "fwd-s3cret") || strings.Contains(logs, "tspass") {
			t.Fatal("a credential was logged")
		}
	}
	t.Logf("callbacks acknowledged %d, refused attempts %d before the restart, received %d distinct, %d duplicates",
		m, refusedBefore, len(ft.received), dups)
}
