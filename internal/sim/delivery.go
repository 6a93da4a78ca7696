package sim

import (
	"bytes"
	"container/heap"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// task is a unit of scheduled work: a job whose callback is due (job), or a delivery attempt
// of a message (msg, attempt).
type task struct {
	due     time.Time
	seq     uint64
	gen     uint64
	job     *job
	msg     *message
	attempt int
}

type taskHeap []*task

func (h taskHeap) Len() int { return len(h) }
func (h taskHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].seq < h[j].seq
}
func (h taskHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *taskHeap) Push(x any)   { *h = append(*h, x.(*task)) }
func (h *taskHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return t
}

// scheduler holds timed tasks; one dispatcher goroutine hands due tasks to the bounded worker
// pool through work.
type scheduler struct {
	mu     sync.Mutex
	h      taskHeap
	seq    uint64
	wake   chan struct{}
	work   chan *task
	closed bool
	// busy counts tasks handed to workers and not finished (see Simulator.WaitIdle).
	busy *atomic.Int64
}

func (q *scheduler) init() {
	q.wake = make(chan struct{}, 1)
	q.work = make(chan *task, 256)
}

func (q *scheduler) pushAll(ts []*task) {
	if len(ts) == 0 {
		return
	}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	for _, t := range ts {
		q.seq++
		t.seq = q.seq
		heap.Push(&q.h, t)
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *scheduler) push(t *task) { q.pushAll([]*task{t}) }

func (q *scheduler) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.h)
}

// purgeBefore drops the tasks of generations older than gen (after a reset).
func (q *scheduler) purgeBefore(gen uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	keep := q.h[:0]
	for _, t := range q.h {
		if t.gen >= gen {
			keep = append(keep, t)
		}
	}
	for i := len(keep); i < len(q.h); i++ {
		q.h[i] = nil
	}
	q.h = keep
	heap.Init(&q.h)
}

func (q *scheduler) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// dispatch hands due tasks to the workers until ctx ends or the scheduler closes; it then
// closes the work channel so the workers exit.
func (q *scheduler) dispatch(ctx context.Context) {
	defer close(q.work)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return
		}
		var wait time.Duration = -1
		var t *task
		if len(q.h) > 0 {
			if d := time.Until(q.h[0].due); d > 0 {
				wait = d
			} else {
				t = heap.Pop(&q.h).(*task)
				q.busy.Add(1) // counted before it leaves the heap, so WaitIdle sees no gap
			}
		}
		q.mu.Unlock()
		if t != nil {
			select {
			case q.work <- t:
			case <-ctx.Done():
				q.busy.Add(-1)
				return
			}
			continue
		}
		if wait < 0 {
			select {
			case <-q.wake:
			case <-ctx.Done():
				return
			}
			continue
		}
		timer.Reset(wait)
		select {
		case <-q.wake:
		case <-timer.C:
		case <-ctx.Done():
			return
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

func (s *Simulator) startWorkers() {
	s.sched.busy = &s.inflight
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.sched.dispatch(s.ctx)
	}()
	for i := 0; i < s.opts.Workers; i++ {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for t := range s.sched.work {
				s.runTask(t)
				s.inflight.Add(-1)
			}
		}()
	}
}

func (s *Simulator) runTask(t *task) {
	if s.ctx.Err() != nil {
		return
	}
	if t.job != nil {
		msgs, again := s.applyJob(t.job)
		if !again.IsZero() {
			s.sched.push(&task{due: again, gen: t.gen, job: t.job})
		}
		s.cb.messages.Add(int64(len(msgs)))
		for _, m := range msgs {
			s.deliver(m, 1)
		}
		return
	}
	s.deliver(t.msg, t.attempt)
}

// callbackCounters are the callback statistics (GET /sim/v1/stats "callbacks").
type callbackCounters struct {
	messages, sent, duplicates, acknowledged, failedAttempts, retried, dropped, noListener atomic.Int64
}

func (c *callbackCounters) reset() {
	for _, v := range []*atomic.Int64{&c.messages, &c.sent, &c.duplicates, &c.acknowledged, &c.failedAttempts, &c.retried, &c.dropped, &c.noListener} {
		v.Store(0)
	}
}

// deliver makes attempt n of a message: to the URL registered for DeviceProfileService of the
// message's account, with the registered credentials and callbackCount n. An unacknowledged
// attempt is repeated after the retry interval, up to maxCallbackThreshold attempts.
func (s *Simulator) deliver(m *message, attempt int) {
	s.mu.Lock()
	if m.gen != s.gen {
		s.mu.Unlock()
		return
	}
	reg, ok := s.listeners[m.account][tsapi.ServiceDeviceProfile]
	fs := s.faults
	seed := s.opts.Seed
	s.mu.Unlock()
	if !ok {
		s.cb.noListener.Add(1)
		s.cb.dropped.Add(1)
		s.log.Debug("callback dropped: no listener registered", "account", m.account, "requestId", m.cb.RequestID)
		return
	}
	if s.fired(FaultDrop, draw(seed, fs.rates[FaultDrop], FaultDrop, m.key, attempt)) {
		s.cb.failedAttempts.Add(1)
		s.retryOrDrop(m, attempt)
		return
	}
	body := m.cb
	body.Username, body.Password = reg.Username, reg.Password
	body.CallbackCount = tsapi.FlexInt(attempt)
	b, err := json.Marshal(body)
	if err != nil {
		s.log.Error("callback marshal", "err", err)
		return
	}
	s.cb.sent.Add(1)
	acked := s.post(reg.URL, b)
	if s.fired(FaultDup, draw(seed, fs.rates[FaultDup], FaultDup, m.key, attempt)) {
		s.cb.duplicates.Add(1)
		s.post(reg.URL, b)
	}
	if acked {
		s.cb.acknowledged.Add(1)
		return
	}
	s.cb.failedAttempts.Add(1)
	s.retryOrDrop(m, attempt)
}

func (s *Simulator) retryOrDrop(m *message, attempt int) {
	if attempt >= maxCallbackAttempts {
		s.cb.dropped.Add(1)
		s.log.Warn("callback dropped after the last attempt", "requestId", m.cb.RequestID, "attempts", attempt)
		return
	}
	s.cb.retried.Add(1)
	s.sched.push(&task{due: time.Now().Add(s.opts.CallbackRetryInterval), gen: m.gen, msg: m, attempt: attempt + 1})
}

// post sends one callback body and reports whether the listener acknowledged it (2xx).
func (s *Simulator) post(url string, body []byte) bool {
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "thingspace-sim/callback")
	resp, err := s.client.Do(req)
	if err != nil {
		s.log.Debug("callback attempt failed", "err", err)
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 300
}
