package thingspace

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
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
	action  tsapi.Action
	body    tsapi.ProfileRequest // without devices
	entries []*entry
	timer   *time.Timer
	sent    bool
}

type entry struct {
	// ctx is the caller's: the batch's POST logs through the first caller's logger, on a
	// context of its own (see send).
	ctx      context.Context
	devices  []tsapi.DeviceEntry
	done     chan struct{}
	finished bool // done is closed (guarded by the single sender of the batch)
	res      []AcceptedRequest
	err      error
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
func (p *Participant) Submit(ctx context.Context, action tsapi.Action, body tsapi.ProfileRequest) ([]AcceptedRequest, error) {
	if err := ValidateActionBody(action, body); err != nil {
		p.Done()
		return nil, err
	}
	co := p.co
	e := &entry{ctx: ctx, devices: body.Devices, done: make(chan struct{})}
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
		return nil, &NotSentError{Action: action, Devices: body.Devices, Cause: context.Cause(ctx)}
	}
	co.mu.Unlock()
	// Already on the wire: wait for the answer (bounded by the HTTP timeout), so the caller
	// learns the request id and can record it even while it is being cancelled.
	<-e.done
	return e.res, e.err
}

// Submit is Begin followed by Submit, for a caller with nothing to announce earlier.
func (co *Coalescer) Submit(ctx context.Context, action tsapi.Action, body tsapi.ProfileRequest) ([]AcceptedRequest, error) {
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

// slot is one device of one caller in a batch being sent.
type slot struct {
	e *entry
	d tsapi.DeviceEntry
}

// send posts the entries' devices in one call and fans the results out. The POSTs run on a
// context of their own (a caller that gives up must not cancel its batch-mates' call) that
// keeps the first caller's values, so the client's logs reach Terraform's log.
//
// When ThingSpace refuses a chunk with an error that names devices of the batch, those callers
// get the error and the devices not accepted yet are sent again without them: one bad device
// never fails its batch-mates, and a device accepted in an earlier chunk is never sent twice.
func (co *Coalescer) send(action tsapi.Action, body tsapi.ProfileRequest, entries []*entry) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(entries[0].ctx), sendTimeout)
	defer cancel()
	todo := make([]slot, 0, len(entries))
	for _, e := range entries {
		for _, d := range e.devices {
			todo = append(todo, slot{e, d})
		}
	}
	for len(todo) > 0 {
		merged := body
		merged.Devices = make([]tsapi.DeviceEntry, len(todo))
		for i, s := range todo {
			merged.Devices[i] = s.d
		}
		res, err := co.c.PostAction(ctx, action, merged)
		covered := 0
		if res != nil {
			for _, r := range res.Requests {
				for i, d := range r.Devices {
					// Each caller hears of its own devices only.
					e := todo[covered+i].e
					if n := len(e.res); n == 0 || e.res[n-1].RequestID != r.RequestID {
						e.res = append(e.res, AcceptedRequest{RequestID: r.RequestID})
					}
					last := &e.res[len(e.res)-1]
					last.Devices = append(last.Devices, d)
				}
				covered += len(r.Devices)
			}
		}
		todo = todo[covered:]
		if err == nil {
			finish(entries, nil)
			return
		}
		// The devices not accepted start at todo[0]; their callers failed or are retried.
		failed := uniqueEntries(todo)
		var apiErr *Error
		if len(failed) > 1 && errors.As(err, &apiErr) && apiErr.HTTPStatus < 500 && !IsOutcomeUnknown(err) {
			named, others := splitNamed(failed, apiErr.Message+" "+apiErr.Code)
			if len(named) > 0 && len(others) > 0 {
				finish(named, err)
				keep := make(map[*entry]bool, len(others))
				for _, e := range others {
					keep[e] = true
				}
				todo = slices.DeleteFunc(todo, func(s slot) bool { return !keep[s.e] })
				continue
			}
		}
		finish(failed, err)
		finish(entries, nil) // the others: every device accepted
		return
	}
	finish(entries, nil)
}

// finish completes the entries not completed yet with err (nil: their accepted requests stand).
func finish(entries []*entry, err error) {
	for _, e := range entries {
		if e.finished {
			continue
		}
		e.finished = true
		e.err = err
		close(e.done)
	}
}

func uniqueEntries(todo []slot) []*entry {
	var out []*entry
	seen := map[*entry]bool{}
	for _, s := range todo {
		if !seen[s.e] {
			seen[s.e] = true
			out = append(out, s.e)
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
// from the devices. A repeated attempt (Attempt > 1) never shares a POST with first attempts.
func batchKey(action tsapi.Action, body tsapi.ProfileRequest) string {
	return fmt.Sprintf("%s #%d", tsapi.BodyHash(action, body), body.Attempt)
}
