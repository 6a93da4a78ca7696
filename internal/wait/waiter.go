// Package wait waits for the per-device results of asynchronous ThingSpace requests: by
// long-polling thingspace-relay (one long-poll per request id per process, shared by every
// waiting resource instance), with polling of ThingSpace's request-status endpoint as the
// fallback when no relay is configured and for devices whose callback never came. The relay's
// API and its client are internal/relayapi's.
package wait

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/relayapi"
	"github.com/fleetform/terraform-provider-thingspace/internal/retry"
	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// StatusReader reads ThingSpace's v2 request status; *thingspace.Client is one.
type StatusReader interface {
	RequestStatus(ctx context.Context, account, requestID string) (*tsapi.RequestStatusResponse, error)
}

// Options configure a Waiter.
type Options struct {
	// Relay is the relay API; nil makes the waiter poll the request status instead.
	Relay *relayapi.Client
	// Status reads the v2 request status (the fallback). Required.
	Status StatusReader
	// StatusPollAfter: with a relay, devices still without a final callback after this long
	// are also looked up in the request status (ThingSpace gives up on a callback after about
	// 4 attempts). Default 10 minutes.
	StatusPollAfter time.Duration
	// PollInterval is the longest interval between request-status polls. Default 30 s; without
	// a relay polling starts at 1 s and grows to it.
	PollInterval time.Duration
	// LongPollWait is the wait of one relay long-poll. Default 30 s.
	LongPollWait time.Duration
	// ProgressEvery is how often a still-waiting caller hears about it. Default 30 s.
	ProgressEvery time.Duration
}

// Waiter waits for the per-device outcomes of requests. One Waiter serves a whole provider
// process: every request id has at most one long-poll (and one status poller), shared by all
// the resource instances waiting on it.
type Waiter struct {
	opts    Options
	mu      sync.Mutex
	watches map[string]*watch
}

// New returns a Waiter.
func New(o Options) *Waiter {
	if o.StatusPollAfter <= 0 {
		o.StatusPollAfter = 10 * time.Minute
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 30 * time.Second
	}
	if o.LongPollWait <= 0 {
		o.LongPollWait = 30 * time.Second
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = 30 * time.Second
	}
	return &Waiter{opts: o, watches: map[string]*watch{}}
}

// Target is one device of one request to wait for.
type Target struct {
	Account   string
	RequestID string
	Action    tsapi.Action
	// Device is every identifier sent for the device; any of them matches a callback.
	Device tsapi.DeviceIDs
}

// Progress is reported to a waiting caller on every change and every ProgressEvery.
type Progress struct {
	Done, Total int
	Warnings    int
	Pending     []Target
	Elapsed     time.Duration
	// RelayError is the last error of a long-poll, while the relay is unreachable.
	RelayError error
}

// PendingError is returned when the context ends before every device has a final outcome. It
// names every device and request still pending.
type PendingError struct {
	Pending []PendingDevice
	Cause   error
}

// PendingDevice is one device still without a final outcome.
type PendingDevice struct {
	Target
	Status tsapi.CallbackStatus // pending or warning
}

func (e *PendingError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d device(s) still have no final result from ThingSpace", len(e.Pending))
	if errors.Is(e.Cause, context.DeadlineExceeded) {
		b.WriteString(" when the timeout ran out")
	} else if errors.Is(e.Cause, context.Canceled) {
		b.WriteString(" when Terraform was interrupted")
	}
	b.WriteString(":")
	for i, p := range e.Pending {
		if i == 10 {
			fmt.Fprintf(&b, "\n  ... and %d more", len(e.Pending)-10)
			break
		}
		fmt.Fprintf(&b, "\n  - %s: %s request %s is %s", describe(p.Device), p.Action, p.RequestID, p.Status)
	}
	return b.String()
}

func (e *PendingError) Unwrap() error { return e.Cause }

// describe names a device in messages: its EID, else its first identifier.
func describe(ids tsapi.DeviceIDs) string {
	if s := ids.Describe(); s != "" {
		return s
	}
	return "device"
}

// Wait blocks until every target has a final outcome (succeeded or failed) or ctx ends, and
// returns the outcomes in the order of targets. When ctx ends first it returns the outcomes
// so far and a *PendingError naming what is still pending. A failed device is an outcome,
// not an error: the caller decides what a failure means.
func (w *Waiter) Wait(ctx context.Context, targets []Target, progress func(Progress)) ([]tsapi.DeviceOutcome, error) {
	notify := make(chan struct{}, 1)
	byRequest := map[string][]int{}
	for i, t := range targets {
		byRequest[t.RequestID] = append(byRequest[t.RequestID], i)
	}
	joined := make(map[string]*watch, len(byRequest))
	for id, idx := range byRequest {
		t := targets[idx[0]]
		joined[id] = w.join(t.Account, id, t.Action, notify)
	}
	defer func() {
		for _, wt := range joined {
			w.leave(wt, notify)
		}
	}()

	start := time.Now()
	out := make([]tsapi.DeviceOutcome, len(targets))
	ticker := time.NewTicker(w.opts.ProgressEvery)
	defer ticker.Stop()
	lastDone, lastWarn, lastRelayDown := -1, -1, false
	for {
		done, warnings := 0, 0
		var pending []Target
		var relayErr error
		for id, idx := range byRequest {
			wt := joined[id]
			wt.mu.Lock()
			for _, i := range idx {
				out[i] = wt.evaluate(targets[i].Device)
				switch {
				case out[i].Status.Terminal():
					done++
				case out[i].Status == tsapi.StatusWarning:
					warnings++
					pending = append(pending, targets[i])
				default:
					pending = append(pending, targets[i])
				}
			}
			if wt.relayErr != nil {
				relayErr = wt.relayErr
			}
			wt.mu.Unlock()
		}
		report := func() {
			if progress != nil {
				progress(Progress{Done: done, Total: len(targets), Warnings: warnings, Pending: pending,
					Elapsed: time.Since(start), RelayError: relayErr})
			}
		}
		if done == len(targets) {
			return out, nil
		}
		if done != lastDone || warnings != lastWarn || (relayErr != nil) != lastRelayDown {
			lastDone, lastWarn, lastRelayDown = done, warnings, relayErr != nil
			report()
		}
		select {
		case <-notify:
			if len(targets) >= manyTargets {
				// Callbacks for thousands of devices arrive as a stream of notifications, and
				// each pass above looks at every target: let the next ones gather first.
				select {
				case <-time.After(gatherNotifications):
				case <-ctx.Done():
				}
			}
		case <-ticker.C:
			report()
		case <-ctx.Done():
			perr := &PendingError{Cause: ctx.Err()}
			for i, t := range targets {
				if !out[i].Status.Terminal() {
					perr.Pending = append(perr.Pending, PendingDevice{Target: t, Status: out[i].Status})
				}
			}
			return out, perr
		}
	}
}

// A wait for at least manyTargets devices re-evaluates them at most about once per
// gatherNotifications: a pass over ten thousand targets per callback notification cost more
// CPU than the rest of a fleet's apply.
const (
	manyTargets         = 1000
	gatherNotifications = 50 * time.Millisecond
)

// join subscribes notify to the watch of a request, starting it when it is the first.
func (w *Waiter) join(account, requestID string, action tsapi.Action, notify chan struct{}) *watch {
	w.mu.Lock()
	defer w.mu.Unlock()
	wt := w.watches[requestID]
	if wt == nil {
		ctx, cancel := context.WithCancel(context.Background())
		wt = &watch{w: w, account: account, requestID: requestID, action: action, cancel: cancel,
			byID: map[string]*idResult{}, subs: map[chan struct{}]bool{}, started: time.Now(),
			relayGone: make(chan struct{})}
		w.watches[requestID] = wt
		if w.opts.Relay != nil {
			go wt.longPoll(ctx)
		}
		go wt.pollStatus(ctx)
	}
	wt.mu.Lock()
	wt.subs[notify] = true
	wt.mu.Unlock()
	return wt
}

// leave unsubscribes; the last subscriber stops the watch.
func (w *Waiter) leave(wt *watch, notify chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	wt.mu.Lock()
	delete(wt.subs, notify)
	empty := len(wt.subs) == 0
	wt.mu.Unlock()
	if empty {
		wt.cancel()
		delete(w.watches, wt.requestID)
	}
}

// watches returns how many requests are being watched (for tests).
func (w *Waiter) activeWatches() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.watches)
}

// watch follows one request: the relay's callbacks, in sequence order, and the request
// status when polled. Per-device outcomes are kept incrementally by identifier, so that a
// 10,000-device request is evaluated in time linear in its callbacks.
type watch struct {
	w         *Waiter
	account   string
	requestID string
	action    tsapi.Action
	cancel    context.CancelFunc
	started   time.Time

	mu       sync.Mutex
	subs     map[chan struct{}]bool
	after    int64
	byID     map[string]*idResult // "kind:id" → results of callbacks naming that identifier
	wide     *idResult            // faults without deviceIds: they fail every device
	status   *tsapi.RequestStatusResponse
	relayErr error
	polls    int // long-poll answers received (for tests)
	// relayGone is closed when the relay answered 410: status polling starts at once.
	relayGone chan struct{}
}

// idResult is what the callbacks naming one identifier say so far.
type idResult struct {
	seq    int64 // of the last terminal callback; 0 = none yet
	status tsapi.CallbackStatus
	cb     *tsapi.Callback
	err    *tsapi.CallbackError
	warned bool
}

func idKey(id tsapi.DeviceID) string { return tsapi.NormalizeKind(id.Kind) + ":" + id.ID }

// addCallback applies one callback, in sequence order (see tsapi.ResolveDevices for when
// a device is done).
// Caller holds wt.mu.
func (wt *watch) addCallback(seq int64, cb *tsapi.Callback) {
	status, cbErr := cb.Outcome(wt.action)
	ids := cb.Identifiers()
	apply := func(r *idResult) {
		switch {
		case status.Terminal():
			r.seq, r.status, r.cb, r.err = seq, status, cb, cbErr
		case status == tsapi.StatusWarning:
			r.warned = true
		}
	}
	if cb.FaultResponse != nil && len(ids) == 0 {
		if wt.wide == nil {
			wt.wide = &idResult{}
		}
		apply(wt.wide)
		return
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if id.ID == "" {
			continue
		}
		k := idKey(id)
		if seen[k] {
			continue
		}
		seen[k] = true
		r := wt.byID[k]
		if r == nil {
			r = &idResult{}
			wt.byID[k] = r
		}
		apply(r)
	}
}

// evaluate returns a device's outcome: the last terminal callback matching any of its
// identifiers (or a request-wide fault), else the request status' verdict, else warning or
// pending. Caller holds wt.mu.
func (wt *watch) evaluate(device tsapi.DeviceIDs) tsapi.DeviceOutcome {
	out := tsapi.DeviceOutcome{Device: device, Status: tsapi.StatusPending}
	var best *idResult
	warned := false
	consider := func(r *idResult) {
		if r == nil {
			return
		}
		warned = warned || r.warned
		if r.seq > 0 && (best == nil || r.seq > best.seq) {
			best = r
		}
	}
	for _, id := range device {
		if id.ID != "" {
			consider(wt.byID[idKey(id)])
		}
	}
	consider(wt.wide)
	if best != nil {
		out.Status, out.Callback, out.Err = best.status, best.cb, best.err
		return out
	}
	if st := statusVerdict(wt.status, device); st.Status.Terminal() {
		st.Device = device
		return st
	}
	if warned {
		out.Status = tsapi.StatusWarning
	}
	return out
}

// statusVerdict reads a device's entry of the v2 request status.
func statusVerdict(st *tsapi.RequestStatusResponse, device tsapi.DeviceIDs) tsapi.DeviceOutcome {
	out := tsapi.DeviceOutcome{Status: tsapi.StatusPending}
	if st == nil {
		return out
	}
	verdict := func(s string) {
		switch tsapi.NormalizeStatus(s) {
		case tsapi.StatusSucceeded:
			out.Status = tsapi.StatusSucceeded
		case tsapi.StatusFailed:
			out.Status = tsapi.StatusFailed
			out.Err = &tsapi.CallbackError{Code: "RequestStatus.Failed",
				Message: "ThingSpace's request status reports this device as failed (no callback with the details arrived)"}
		}
	}
	for _, sub := range st.SubRequests {
		if sub.IDs.Matches(device) {
			verdict(sub.Status)
			return out
		}
	}
	if len(st.SubRequests) == 0 && tsapi.NormalizeStatus(st.Status) == tsapi.StatusFailed {
		verdict(st.Status)
	}
	return out
}

// broadcast wakes every subscriber. Caller holds wt.mu.
func (wt *watch) broadcast() {
	for ch := range wt.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// longPoll follows the relay's callbacks of the request until the watch is stopped
// (the relay's long-poll, design/relay.md): the cursor advances with next_after; errors back off with jitter
// and keep the cursor; 410 or an index that went backwards start again from 0.
func (wt *watch) longPoll(ctx context.Context) {
	relay := wt.w.opts.Relay
	failures := 0 // in a row
	for ctx.Err() == nil {
		wt.mu.Lock()
		after := wt.after
		wt.mu.Unlock()
		page, err := relay.Callbacks(ctx, wt.requestID, after, wt.w.opts.LongPollWait, 1000)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, relayapi.ErrGone) {
			// Retention purged the request: the callbacks are gone; the request status poll
			// (started at once below) is the only source left.
			wt.mu.Lock()
			wt.relayErr = err
			wt.broadcast()
			wt.mu.Unlock()
			close(wt.relayGone)
			return
		}
		if err != nil {
			wt.mu.Lock()
			wt.relayErr = err
			wt.broadcast()
			wt.mu.Unlock()
			if retry.Sleep(ctx, longPollBackoff.Wait(failures, relayapi.RetryAfter(err))) != nil {
				return
			}
			failures++
			continue
		}
		failures = 0
		wt.mu.Lock()
		wt.polls++
		wt.relayErr = nil
		if page.Index > 0 && page.Index < wt.after {
			// The relay's index went backwards (a new database): start over.
			wt.after, wt.byID, wt.wide = 0, map[string]*idResult{}, nil
		}
		for _, sc := range page.Callbacks {
			if sc.Seq <= wt.after {
				continue
			}
			cb, perr := tsapi.ParseCallback(sc.Body)
			if perr == nil {
				wt.addCallback(sc.Seq, cb)
			}
			wt.after = sc.Seq
		}
		if page.NextAfter > wt.after {
			wt.after = page.NextAfter
		}
		wt.broadcast()
		wt.mu.Unlock()
	}
}

// pollStatus reads the v2 request status: at once and then growing to PollInterval without
// a relay; with a relay, only once StatusPollAfter has passed (or the relay lost the request).
func (wt *watch) pollStatus(ctx context.Context) {
	o := wt.w.opts
	if o.Status == nil {
		return
	}
	interval := time.Second
	if o.Relay != nil {
		t := time.NewTimer(o.StatusPollAfter)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-wt.relayGone:
		}
		interval = o.PollInterval
	}
	for ctx.Err() == nil {
		st, err := o.Status.RequestStatus(ctx, wt.account, wt.requestID)
		if err == nil {
			wt.mu.Lock()
			wt.status = st
			wt.broadcast()
			wt.mu.Unlock()
		}
		if retry.Sleep(ctx, interval) != nil {
			return
		}
		interval = min(o.PollInterval, interval*3/2+time.Duration(rand.N(int64(250*time.Millisecond))))
	}
}

// longPollBackoff spaces the long-poll's tries while the relay fails. A Retry-After of 0 is
// no advice: the wait is the growing backoff step (the relay restarting is no reason to
// hammer it, however long the restart takes).
var longPollBackoff = retry.Backoff{Base: 250 * time.Millisecond, Max: 15 * time.Second, MinRetryAfter: 250 * time.Millisecond, ZeroIsNoAdvice: true}
