// Package relay is thingspace-relay: the durable listener ThingSpace posts its callbacks to, and
// the API the provider waits on.
//
// A Relay has three handlers, meant for three http.Servers with their own timeouts:
//
//   - IngestHandler: POST /callbacks/v1/thingspace/{pathToken}, carrier-facing. It answers 200
//     only after the callback is committed durably (a group commit shares one transaction among
//     concurrent deliveries).
//   - APIHandler: the provider-facing API (bearer tokens): request summaries, the long-poll,
//     registrations, the device index, write-ahead intents and the device lookup.
//   - AdminHandler: /livez, /readyz, /metrics, /version.
//
// In-process use (the provider's acceptance tests):
//
//	st, _ := sqlite.Open(ctx, filepath.Join(t.TempDir(), "relay.db"))
//	r, _ := relay.New(relay.Config{Store: st, PathTokens: []string{"tok"},
//		APITokens: []relay.APIToken{{Token: "api"}}})
//	ingest := httptest.NewServer(r.IngestHandler())
//	api := httptest.NewServer(r.APIHandler())
//	defer func() { r.Shutdown(ctx); ingest.Close(); api.Close(); st.Close() }()
package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/relay/forward"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store"
)

// Relay is one relay instance over a Store.
type Relay struct {
	cfg   Config
	st    store.Store
	log   *slog.Logger
	m     *metrics
	hub   *hub
	batch *batcher
	fwd   *forward.Forwarder // nil: not forwarding

	actions actionCache

	mu       sync.Mutex
	draining bool
	inflight sync.WaitGroup
	shutdown chan struct{} // closed when draining starts: open long-polls answer

	bgCancel context.CancelFunc
	bgDone   sync.WaitGroup
	stopOnce sync.Once
}

// New starts a relay: its group committer, its change listener and (with Retention) its purge.
// Shutdown stops them; the caller closes the store afterwards.
func New(cfg Config) (*Relay, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	r := &Relay{
		cfg:      cfg,
		st:       cfg.Store,
		log:      cfg.Logger,
		m:        newMetrics(cfg.Version),
		hub:      newHub(),
		shutdown: make(chan struct{}),
	}
	r.actions.entries = map[string]actionEntry{}
	if cfg.Forward.URL != "" {
		fc := cfg.Forward
		if fc.Logger == nil {
			fc.Logger = cfg.Logger
		}
		if fc.UserAgent == "" {
			fc.UserAgent = "thingspace-relay/" + cfg.Version
		}
		f, err := forward.New(cfg.Store, fc, r.m.reg)
		if err != nil {
			return nil, fmt.Errorf("relay: %w", err)
		}
		r.fwd = f
	}
	r.batch = newBatcher(r.st, cfg.MaxBatch, cfg.StoreTimeout, r.m, func(ids []string) {
		for _, id := range ids {
			r.hub.notify(id)
		}
		if r.fwd != nil && len(ids) > 0 {
			r.fwd.Wake()
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	r.bgCancel = cancel
	// Subscribe before serving: on PostgreSQL the LISTEN is then in place when New returns, so
	// a callback ingested by another instance right after start wakes this one's waiters.
	feed, err := r.st.Changes(ctx)
	if err != nil {
		r.log.Warn("store change feed unavailable; waiters rely on re-query until it is back", "err", err)
	}
	r.bgDone.Add(1)
	go r.listenChanges(ctx, feed)
	if cfg.Retention > 0 {
		r.bgDone.Add(1)
		go r.purgeLoop(ctx)
	}
	if r.fwd != nil {
		r.bgDone.Add(1)
		go func() {
			defer r.bgDone.Done()
			r.fwd.Run(ctx)
		}()
	}
	return r, nil
}

// Drain turns readiness off and answers every open long-poll at once; new long-polls answer
// without waiting and new ingests get 503. Shutdown calls it; call it earlier to let a load
// balancer notice the instance leaving.
func (r *Relay) Drain() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.draining {
		r.draining = true
		close(r.shutdown)
	}
}

// Draining reports whether Drain was called.
func (r *Relay) Draining() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.draining
}

// Shutdown drains the relay, waits for the ingests in flight to be committed and answered (or
// ctx to end), and stops the background work. It does not close the store.
func (r *Relay) Shutdown(ctx context.Context) error {
	r.Drain()
	done := make(chan struct{})
	go func() {
		r.inflight.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	r.stopOnce.Do(func() {
		r.batch.stop()
		r.bgCancel()
		r.bgDone.Wait()
	})
	return err
}

// beginIngest registers an ingest in flight, or reports that the relay is draining.
func (r *Relay) beginIngest() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.draining {
		return false
	}
	r.inflight.Add(1)
	return true
}

// listenChanges wakes local waiters on the store's change hints (other instances' ingests on
// PostgreSQL), starting with feed (nil: subscribe first). The waiters' own periodic re-query
// covers lost hints; when the feed had to be subscribed again, or the store says hints were lost
// (store.AnyChange), every waiter looks again at once.
func (r *Relay) listenChanges(ctx context.Context, feed <-chan string) {
	defer r.bgDone.Done()
	for ctx.Err() == nil {
		if feed == nil {
			ch, err := r.st.Changes(ctx)
			if err != nil {
				r.log.Warn("store change feed unavailable; waiters rely on re-query", "err", err)
			} else {
				feed = ch
				r.hub.notifyAll() // hints sent while there was no feed are lost
			}
		}
		for id := range feed {
			r.m.changes.Inc()
			if id == store.AnyChange {
				r.hub.notifyAll()
			} else {
				r.hub.notify(id)
			}
		}
		feed = nil
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (r *Relay) purgeLoop(ctx context.Context) {
	defer r.bgDone.Done()
	t := time.NewTimer(min(time.Minute, r.cfg.PurgeInterval))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		n, err := r.st.Purge(ctx, time.Now().Add(-r.cfg.Retention))
		r.m.storeDuration.WithLabelValues("purge").Observe(time.Since(start).Seconds())
		r.m.purged.Add(float64(n))
		if err != nil {
			r.log.Warn("retention purge failed", "err", err)
		} else if n > 0 {
			r.log.Info("retention purge", "requests", n)
		}
		t.Reset(r.cfg.PurgeInterval)
	}
}

// actionCache remembers the action registered for a request id, so that ingest judges callbacks
// with it (tsapi.Callback.Outcome) without a store read per callback. Registered actions
// never change; "not registered (yet)" is remembered briefly.
type actionCache struct {
	mu      sync.Mutex
	entries map[string]actionEntry
}

type actionEntry struct {
	action  string
	expires time.Time // zero: for good
}

const (
	actionCacheMax    = 100_000
	actionNegativeTTL = 2 * time.Second
)

func (c *actionCache) get(id string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[id]
	if !ok || (!e.expires.IsZero() && time.Now().After(e.expires)) {
		return "", false
	}
	return e.action, true
}

func (c *actionCache) put(id, action string, registered bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= actionCacheMax {
		clear(c.entries)
	}
	e := actionEntry{action: action}
	if !registered {
		e.expires = time.Now().Add(actionNegativeTTL)
	}
	c.entries[id] = e
}

// lookupAction returns the action registered for a request, or "" when unknown.
func (r *Relay) lookupAction(ctx context.Context, id string) string {
	if a, ok := r.actions.get(id); ok {
		return a
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.StoreTimeout)
	defer cancel()
	req, err := r.summary(ctx, id, nil)
	if err == nil && req.State == store.StateUnknown {
		err = store.ErrNotFound
	}
	switch {
	case err == nil && req.Action != "":
		r.actions.put(id, req.Action, true)
		return req.Action
	case err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrGone):
		r.actions.put(id, "", false)
	}
	return ""
}
