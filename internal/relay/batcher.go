package relay

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store"
)

// errDraining answers ingests that arrive after the batcher stopped.
var errDraining = errors.New("relay: shutting down")

// batcher is the group commit in front of Store.Append: callbacks queue while a commit runs,
// and the committer takes everything queued (up to max) into the next transaction. Nobody sleeps
// waiting for a batch to fill: a lone callback is committed at once, and under load the batch
// size grows to whatever arrived during the previous commit. Each caller is answered only after
// the transaction holding its callback committed.
type batcher struct {
	st      store.Store
	max     int
	timeout time.Duration
	m       *metrics
	notify  func(ids []string) // called after each commit with the request ids that got new rows

	mu      sync.Mutex
	queue   []*pendingAppend
	stopped bool
	wake    chan struct{}
	done    chan struct{}
}

type pendingAppend struct {
	cb  store.Callback
	res store.AppendResult
	err error
	ok  chan struct{}
}

func newBatcher(st store.Store, max int, timeout time.Duration, m *metrics, notify func([]string)) *batcher {
	b := &batcher{st: st, max: max, timeout: timeout, m: m, notify: notify,
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	go b.run()
	return b
}

// append queues one callback and waits for its commit.
func (b *batcher) append(cb store.Callback) (store.AppendResult, error) {
	p := &pendingAppend{cb: cb, ok: make(chan struct{})}
	b.mu.Lock()
	if b.stopped {
		b.mu.Unlock()
		return store.AppendResult{}, errDraining
	}
	b.queue = append(b.queue, p)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
	<-p.ok // always answered: the committer drains the queue before it exits
	return p.res, p.err
}

func (b *batcher) run() {
	defer close(b.done)
	for {
		b.mu.Lock()
		n := min(len(b.queue), b.max)
		batch := b.queue[:n:n]
		b.queue = b.queue[n:]
		if len(b.queue) == 0 {
			b.queue = nil
		}
		stopped := b.stopped
		b.mu.Unlock()
		if n == 0 {
			if stopped {
				return
			}
			<-b.wake
			continue
		}
		b.commit(batch)
	}
}

func (b *batcher) commit(batch []*pendingAppend) {
	cbs := make([]store.Callback, len(batch))
	for i, p := range batch {
		cbs[i] = p.cb
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	start := time.Now()
	res, err := b.st.Append(ctx, cbs)
	cancel()
	b.m.storeDuration.WithLabelValues("append").Observe(time.Since(start).Seconds())
	b.m.batchSize.Observe(float64(len(batch)))
	if err == nil && len(res) != len(batch) {
		err = errors.New("relay: store returned a wrong number of results")
	}
	var ids []string
	if err == nil {
		for i, r := range res {
			if !r.Duplicate {
				ids = appendUnique(ids, batch[i].cb.RequestID)
			}
		}
		// Wake waiters before answering the senders: the data is durable now.
		b.notify(ids)
	}
	for i, p := range batch {
		if err != nil {
			p.err = err
		} else {
			p.res = res[i]
		}
		close(p.ok)
	}
}

// stop lets the committer finish what is queued, then exit. Later appends get errDraining.
func (b *batcher) stop() {
	b.mu.Lock()
	b.stopped = true
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
	<-b.done
}

func appendUnique(s []string, v string) []string {
	for _, e := range s {
		if e == v {
			return s
		}
	}
	return append(s, v)
}
