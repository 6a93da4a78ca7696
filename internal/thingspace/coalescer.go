package thingspace

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"
)

// Coalescer merges concurrent action calls of many resource instances that share an action
// and a body (account, plan, options) into bulk calls, like the HCP provider's IAM batcher:
// the first caller opens a batch, later callers join it, and one POST carries every device.
// Each caller gets back the request that carried its own devices.
//
// The window is adaptive: callers announce themselves with Begin before their pre-checks, so
// a batch is sent once every announced caller has submitted or left and no other caller came
// for a short quiet period ("nobody else is coming"), and at the latest when the window ends or
// the batch reaches the bulk size.
type Coalescer struct {
	c      *Client
	window time.Duration
	// OnAccepted, when set, runs once for every request ThingSpace accepted, before any caller
	// hears of it: the provider registers the request and its devices at the relay there, so
	// every accepted action is indexed exactly once, with all its devices.
	OnAccepted func(ctx context.Context, action Action, account string, req AcceptedRequest)

	mu      sync.Mutex
	busy    int // callers between Begin and Submit/Done
	batches map[string]*batch
	idle    *time.Timer // sends the open batches once callers stopped coming (see flushIfIdleLocked)
}

// idleQuiet is how long no caller may have announced, submitted or left before the open
// batches go out early. Terraform starts its parallel Create calls a few milliseconds apart,
// so "no announced caller right now" alone sent the first arrivals in batches of one.
const idleQuiet = 100 * time.Millisecond

// NewCoalescer returns a Coalescer that sends through c and keeps a batch open at most window.
func (c *Client) NewCoalescer(window time.Duration) *Coalescer {
	return &Coalescer{c: c, window: window, batches: map[string]*batch{}}
}

type batch struct {
	key     string
	action  Action
	body    ProfileRequest // without devices
	entries []*entry
	timer   *time.Timer
	sent    bool
}

type entry struct {
	devices []DeviceEntry
	done    chan struct{}
	res     []AcceptedRequest
	err     error
}

// Participant is one caller's announced intention to submit.
type Participant struct {
	co   *Coalescer
	once sync.Once
}

// Begin announces a caller that may Submit soon. It must end with Submit or Done.
func (co *Coalescer) Begin() *Participant {
	co.mu.Lock()
	co.busy++
	co.mu.Unlock()
	return &Participant{co: co}
}

// Done withdraws the announcement without submitting (the caller adopted the device, or
// failed a pre-check). It is a no-op after Submit.
func (p *Participant) Done() {
	p.once.Do(func() {
		p.co.mu.Lock()
		defer p.co.mu.Unlock()
		p.co.busy--
		p.co.flushIfIdleLocked()
	})
}

// Submit sends body's devices as part of a bulk call of the same action and body, and returns
// the accepted request(s) that carried them. The call runs on a context of its own, so a
// caller that gives up does not cancel its batch-mates' call; a caller whose devices were not
// sent yet when ctx ends is taken out of the batch.
func (p *Participant) Submit(ctx context.Context, action Action, body ProfileRequest) ([]AcceptedRequest, error) {
	if err := ValidateActionBody(action, body); err != nil {
		p.Done()
		return nil, err
	}
	co := p.co
	e := &entry{devices: body.Devices, done: make(chan struct{})}
	key := batchKey(action, body)
	co.mu.Lock()
	b := co.batches[key]
	if b == nil {
		b = &batch{key: key, action: action, body: body}
		b.body.Devices = nil
		co.batches[key] = b
		b.timer = time.AfterFunc(co.window, func() {
			co.mu.Lock()
			defer co.mu.Unlock()
			co.flushLocked(b)
		})
	}
	b.entries = append(b.entries, e)
	p.once.Do(func() { co.busy-- })
	size := 0
	for _, x := range b.entries {
		size += len(x.devices)
	}
	if size >= co.c.BulkSize() {
		co.flushLocked(b)
	}
	co.flushIfIdleLocked()
	co.mu.Unlock()

	select {
	case <-e.done:
		return e.res, e.err
	case <-ctx.Done():
	}
	co.mu.Lock()
	if !b.sent {
		for i, x := range b.entries {
			if x == e {
				b.entries = append(b.entries[:i], b.entries[i+1:]...)
				break
			}
		}
		if len(b.entries) == 0 {
			b.timer.Stop()
			delete(co.batches, b.key)
		}
		co.mu.Unlock()
		return nil, ctx.Err()
	}
	co.mu.Unlock()
	// Already on the wire: wait for the answer (bounded by the HTTP timeout), so the caller
	// learns the request id and can record it even while it is being cancelled.
	<-e.done
	return e.res, e.err
}

// Submit is Begin followed by Submit, for a caller with nothing to announce earlier.
func (co *Coalescer) Submit(ctx context.Context, action Action, body ProfileRequest) ([]AcceptedRequest, error) {
	return co.Begin().Submit(ctx, action, body)
}

// flushIfIdleLocked sends every open batch when no announced caller is still coming and none
// arrived for a quiet period (min(window, idleQuiet)); every Submit or Done starts the quiet
// period again, and each batch's window still bounds the wait.
func (co *Coalescer) flushIfIdleLocked() {
	if co.busy > 0 || len(co.batches) == 0 {
		return
	}
	quiet := min(co.window, idleQuiet)
	if co.idle != nil {
		co.idle.Stop()
	}
	co.idle = time.AfterFunc(quiet, func() {
		co.mu.Lock()
		defer co.mu.Unlock()
		if co.busy > 0 {
			return // the Submit or Done of the caller that came starts a new quiet period
		}
		for _, b := range co.batches {
			co.flushLocked(b)
		}
	})
}

// flushLocked sends a batch (once) in the background.
func (co *Coalescer) flushLocked(b *batch) {
	if b.sent || len(b.entries) == 0 {
		return
	}
	b.sent = true
	b.timer.Stop()
	if co.batches[b.key] == b {
		delete(co.batches, b.key)
	}
	go co.send(b.action, b.body, b.entries)
}

// sendTimeout bounds one batch's POSTs, which run on a context of their own.
const sendTimeout = 5 * time.Minute

// send posts the entries' devices in one call and fans the results out. When ThingSpace
// refuses the call with an error that names devices of the batch, those callers get the error
// and the rest are sent again without them: one bad device never fails its batch-mates.
func (co *Coalescer) send(action Action, body ProfileRequest, entries []*entry) {
	ctx, cancel := context.WithTimeout(context.Background(), sendTimeout)
	defer cancel()
	for len(entries) > 0 {
		merged := body
		merged.Devices = nil
		owner := make([]*entry, 0, len(entries))
		for _, e := range entries {
			for range e.devices {
				owner = append(owner, e)
			}
			merged.Devices = append(merged.Devices, e.devices...)
		}
		res, err := co.c.PostAction(ctx, action, merged)
		// Hand every accepted chunk to its callers (after OnAccepted), error or not.
		covered := 0
		if res != nil {
			for _, r := range res.Requests {
				if co.OnAccepted != nil {
					co.OnAccepted(ctx, action, body.AccountName, r)
				}
				for i, d := range r.Devices {
					// Each caller hears of its own devices only.
					e := owner[covered+i]
					if n := len(e.res); n == 0 || e.res[n-1].RequestID != r.RequestID {
						e.res = append(e.res, AcceptedRequest{RequestID: r.RequestID})
					}
					last := &e.res[len(e.res)-1]
					last.Devices = append(last.Devices, d)
				}
				covered += len(r.Devices)
			}
		}
		if err == nil {
			finish(entries, nil)
			return
		}
		// The chunks not accepted start at device index `covered`.
		rest := uniqueEntries(owner[covered:])
		var apiErr *Error
		if len(rest) > 1 && errors.As(err, &apiErr) && apiErr.HTTPStatus < 500 && !IsOutcomeUnknown(err) {
			named, others := splitNamed(rest, apiErr.Message+" "+apiErr.Code)
			if len(named) > 0 && len(others) > 0 {
				finish(named, err)
				finishAccepted(entries, rest)
				entries = others
				continue
			}
		}
		finish(rest, err)
		finishAccepted(entries, rest)
		return
	}
}

// finish completes entries with err (nil: their accepted requests stand).
func finish(entries []*entry, err error) {
	for _, e := range entries {
		e.err = err
		close(e.done)
	}
}

// finishAccepted completes the entries of all that are not in failed (their devices were
// accepted in an earlier chunk).
func finishAccepted(all, failed []*entry) {
	skip := make(map[*entry]bool, len(failed))
	for _, e := range failed {
		skip[e] = true
	}
	for _, e := range all {
		if !skip[e] && !closed(e.done) {
			close(e.done)
		}
	}
}

func closed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func uniqueEntries(owner []*entry) []*entry {
	var out []*entry
	seen := map[*entry]bool{}
	for _, e := range owner {
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	return out
}

// splitNamed separates the entries with a device identifier that appears in msg.
func splitNamed(entries []*entry, msg string) (named, others []*entry) {
	for _, e := range entries {
		hit := false
		for _, d := range e.devices {
			for _, id := range d.DeviceIDs {
				if len(id.ID) >= 6 && strings.Contains(msg, id.ID) {
					hit = true
				}
			}
		}
		if hit {
			named = append(named, e)
		} else {
			others = append(others, e)
		}
	}
	return named, others
}

// batchKey identifies calls that may share a POST: the same action and the same body apart
// from the devices.
func batchKey(action Action, body ProfileRequest) string {
	body.Devices = nil
	b, _ := json.Marshal(body)
	return string(action) + " " + string(b)
}
