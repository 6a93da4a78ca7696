package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/thingspace"
	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
	"github.com/fleetform/terraform-provider-thingspace/internal/wait"
)

// fakeWorld is a small in-memory carrier for the engine's own tests: one line per EID, whose
// state changes when an action is "applied", and a ledger of open intents and requests.
type fakeWorld struct {
	mu      sync.Mutex
	devices map[string]*tsapi.Device
	ledger  map[string]*Ledger
	sent    []string // "action eid"
	// onSend decides what a send does; nil: accept and apply.
	onSend func(action tsapi.Action, eid string) (apply bool, err error)
	// lag is how many observations still show the device as before after an action applied.
	lag       int
	lagging   map[string]*tsapi.Device
	observeFn func() error
	// waitFn answers Wait; nil: every target succeeded.
	waitFn   func(ctx context.Context, targets []wait.Target) ([]tsapi.DeviceOutcome, error)
	resolved []string
	n        int
}

func newFakeWorld(devs ...*tsapi.Device) *fakeWorld {
	w := &fakeWorld{devices: map[string]*tsapi.Device{}, ledger: map[string]*Ledger{}, lagging: map[string]*tsapi.Device{}}
	for _, d := range devs {
		eid := d.DeviceIDs.Get(tsapi.KindEID)
		w.devices[eid] = d
		w.ledger[eid] = &Ledger{}
	}
	return w
}

func (w *fakeWorld) Observe(_ context.Context, _ string, devices []Desired) ([]Observed, error) {
	if w.observeFn != nil {
		if err := w.observeFn(); err != nil {
			return nil, err
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]Observed, len(devices))
	for i, d := range devices {
		shown := w.devices[d.EID]
		if old, ok := w.lagging[d.EID]; ok && w.lag > 0 {
			w.lag--
			shown = old
		}
		if shown != nil {
			c := *shown
			c.CarrierInformations = append([]tsapi.CarrierInformation(nil), shown.CarrierInformations...)
			out[i].Device = &c
		}
		if l := w.ledger[d.EID]; l != nil {
			out[i].Ledger = Ledger{OpenRequests: append([]OpenRequest(nil), l.OpenRequests...),
				OpenIntents: append([]Intent(nil), l.OpenIntents...), Events: append([]Event(nil), l.Events...)}
		}
		out[i].Now = time.Now()
	}
	return out, nil
}

func (w *fakeWorld) Send(_ context.Context, action tsapi.Action, body tsapi.ProfileRequest) ([]thingspace.AcceptedRequest, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var accepted []thingspace.AcceptedRequest
	for _, e := range body.Devices {
		eid := thingspace.JournalIDs(e).Get(tsapi.KindEID)
		w.sent = append(w.sent, string(action)+" "+eid)
		apply, err := true, error(nil)
		if w.onSend != nil {
			apply, err = w.onSend(action, eid)
		}
		if apply {
			if w.lag > 0 {
				old := *w.devices[eid]
				old.CarrierInformations = append([]tsapi.CarrierInformation(nil), w.devices[eid].CarrierInformations...)
				w.lagging[eid] = &old
			}
			applyFake(w.devices[eid], action, body)
		}
		if err != nil {
			if thingspace.IsOutcomeUnknown(err) {
				w.n++
				w.ledger[eid].OpenIntents = append(w.ledger[eid].OpenIntents, Intent{ID: fmt.Sprintf("i-%d", w.n), Action: action,
					BodyHash: tsapi.BodyHash(action, body), Attempt: max(1, body.Attempt), CreatedAt: time.Now()})
			}
			return accepted, err
		}
		w.n++
		accepted = append(accepted, thingspace.AcceptedRequest{RequestID: fmt.Sprintf("r-%d", w.n), Devices: []tsapi.DeviceEntry{e}})
	}
	return accepted, nil
}

func applyFake(d *tsapi.Device, action tsapi.Action, body tsapi.ProfileRequest) {
	ci := &d.CarrierInformations[0]
	switch action {
	case tsapi.ActionActivate:
		ci.State, ci.ServicePlan = "active", body.ServicePlan
	case tsapi.ActionServicePlan:
		ci.ServicePlan = body.ServicePlan
	case tsapi.ActionDeviceSuspend:
		ci.State = "suspend"
	case tsapi.ActionDeviceResume:
		ci.State = "active"
	case tsapi.ActionDeactivate:
		ci.State = "deactive"
	}
}

func (w *fakeWorld) Wait(ctx context.Context, targets []wait.Target) ([]tsapi.DeviceOutcome, error) {
	if w.waitFn != nil {
		return w.waitFn(ctx, targets)
	}
	out := make([]tsapi.DeviceOutcome, len(targets))
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, t := range targets {
		out[i] = tsapi.DeviceOutcome{Device: t.Device, Status: tsapi.StatusSucceeded}
		for _, l := range w.ledger {
			l.OpenRequests = nil // the request is over
		}
	}
	return out, nil
}

func (w *fakeWorld) ConfirmStatus(context.Context, string, string, tsapi.DeviceIDs) (bool, error) {
	return true, nil
}

func (w *fakeWorld) ResolveIntent(_ context.Context, in Intent, rid, _ string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.resolved = append(w.resolved, in.ID+" "+rid)
	for _, l := range w.ledger {
		for i := range l.OpenIntents {
			if l.OpenIntents[i].ID == in.ID {
				l.OpenIntents = append(l.OpenIntents[:i], l.OpenIntents[i+1:]...)
				break
			}
		}
	}
	return nil
}

func (w *fakeWorld) sends() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.sent...)
}

var fast = Options{Poll: time.Millisecond, MaxPoll: 5 * time.Millisecond}

func TestRunActivatesAndConfirms(t *testing.T) {
	w := newFakeWorld(dev("pre-active", ""))
	r := Run(context.Background(), w, fast, testAcct, []Desired{want(GoalCreate)})[0]
	if r.Err != nil || !r.Changed || r.LastRequestID() == "" || r.Last.State() != tsapi.StateActive {
		t.Fatalf("result = %+v", r)
	}
	if s := w.sends(); len(s) != 1 {
		t.Fatalf("sent %v, want one activate", s)
	}
}

// An action whose outcome is unknown is never sent again in the run: the device waits for
// evidence, and when time runs out the error names the device and what it waits on (never
// "context deadline exceeded").
func TestRunNeverResendsAnActionWhoseOutcomeIsUnknown(t *testing.T) {
	w := newFakeWorld(dev("active", planA))
	w.onSend = func(tsapi.Action, string) (bool, error) {
		return false, &thingspace.OutcomeUnknownError{Action: tsapi.ActionServicePlan, Cause: errors.New("HTTP 502")}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	r := Run(ctx, w, fast, testAcct, []Desired{want(GoalUpdate, func(d *Desired) { d.ServicePlan = planB })})[0]
	if s := w.sends(); len(s) != 1 {
		t.Fatalf("sent %v, want exactly one serviceplan", s)
	}
	var ue *UnknownOutcomeError
	if !errors.As(r.Err, &ue) || !r.Pending() || !strings.Contains(r.Err.Error(), testEID) || strings.Contains(r.Err.Error(), "context deadline exceeded") {
		t.Fatalf("err = %v, want an UnknownOutcomeError naming the EID", r.Err)
	}
}

// The same without a ledger that shows the intent: the run's own memory still never sends it
// twice.
func TestRunNeverResendsWithoutALedger(t *testing.T) {
	w := newFakeWorld(dev("active", planA))
	w.onSend = func(tsapi.Action, string) (bool, error) {
		return false, &thingspace.OutcomeUnknownError{Action: tsapi.ActionServicePlan, Cause: errors.New("HTTP 502")}
	}
	w.ledger = map[string]*Ledger{testEID: {}}
	orig := w.onSend
	w.onSend = func(a tsapi.Action, e string) (bool, error) {
		apply, err := orig(a, e)
		w.ledger[testEID].OpenIntents = nil // a ledger that lost the intent
		return apply, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	r := Run(ctx, w, fast, testAcct, []Desired{want(GoalUpdate, func(d *Desired) { d.ServicePlan = planB })})[0]
	if s := w.sends(); len(s) != 1 || r.Err == nil {
		t.Fatalf("sent %v (err %v), want one serviceplan and an error", s, r.Err)
	}
}

// A request already open for the device is waited on, then the device is decided afresh.
func TestRunWaitsForAnOpenRequestThenDecides(t *testing.T) {
	w := newFakeWorld(dev("pre-active", ""))
	w.ledger[testEID].OpenRequests = []OpenRequest{{RequestID: "r-open", Action: tsapi.ActionActivate}}
	waited := false
	w.waitFn = func(_ context.Context, targets []wait.Target) ([]tsapi.DeviceOutcome, error) {
		waited = true
		if targets[0].RequestID != "r-open" {
			t.Errorf("waited on %s", targets[0].RequestID)
		}
		w.mu.Lock()
		applyFake(w.devices[testEID], tsapi.ActionActivate, tsapi.ProfileRequest{ServicePlan: planA})
		w.ledger[testEID].OpenRequests = nil
		w.mu.Unlock()
		return []tsapi.DeviceOutcome{{Device: targets[0].Device, Status: tsapi.StatusSucceeded}}, nil
	}
	r := Run(context.Background(), w, fast, testAcct, []Desired{want(GoalCreate)})[0]
	if r.Err != nil || !waited || len(w.sends()) != 0 {
		t.Fatalf("err %v, waited %v, sent %v: want the open activate waited on and the device adopted", r.Err, waited, w.sends())
	}
}

// When time runs out while an open request is waited on, the error names it.
func TestRunTimeoutNamesThePendingRequest(t *testing.T) {
	w := newFakeWorld(dev("pre-active", ""))
	w.ledger[testEID].OpenRequests = []OpenRequest{{RequestID: "r-open", Action: tsapi.ActionActivate}}
	w.waitFn = func(ctx context.Context, targets []wait.Target) ([]tsapi.DeviceOutcome, error) {
		<-ctx.Done()
		pe := &wait.PendingError{Cause: ctx.Err()}
		for _, t := range targets {
			pe.Pending = append(pe.Pending, wait.PendingDevice{Target: t, Status: tsapi.StatusPending})
		}
		return make([]tsapi.DeviceOutcome, len(targets)), pe
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	r := Run(ctx, w, fast, testAcct, []Desired{want(GoalCreate)})[0]
	if msg := fmt.Sprint(r.Err); !strings.Contains(msg, "r-open") || !strings.Contains(msg, testEID) || !r.Pending() {
		t.Fatalf("err = %v, want it to name the device and request r-open", r.Err)
	}
	if len(w.sends()) != 0 {
		t.Fatalf("sent %v while a request was open", w.sends())
	}
}

// A device read that fails stops the run: nothing is sent on a guess.
func TestRunReadFailureSendsNothing(t *testing.T) {
	w := newFakeWorld(dev("active", planA, "active", globalPlan))
	w.observeFn = func() error { return errors.New("read refused") }
	r := Run(context.Background(), w, fast, testAcct, []Desired{want(GoalUpdate, global, suspended)})[0]
	if r.Err == nil || !strings.Contains(r.Err.Error(), "read refused") || len(w.sends()) != 0 {
		t.Fatalf("err %v, sent %v: want the read's error and nothing sent", r.Err, w.sends())
	}
}

// A success the device does not show is read again a few times (the list may lag), then
// reported as unconfirmed; it is never sent again.
func TestRunUnconfirmedSuccessIsNotResent(t *testing.T) {
	w := newFakeWorld(dev("active", planA))
	w.onSend = func(tsapi.Action, string) (bool, error) { return false, nil } // "success", nothing applied
	r := Run(context.Background(), w, fast, testAcct, []Desired{want(GoalUpdate, func(d *Desired) { d.ServicePlan = planB })})[0]
	if !errors.Is(r.Err, ErrUnconfirmed) || len(w.sends()) != 1 {
		t.Fatalf("err %v, sent %v: want one serviceplan and an unconfirmed error", r.Err, w.sends())
	}
	// A read that lags by two observations still confirms.
	w = newFakeWorld(dev("active", planA))
	w.lag = 2
	r = Run(context.Background(), w, fast, testAcct, []Desired{want(GoalUpdate, func(d *Desired) { d.ServicePlan = planB })})[0]
	if r.Err != nil || len(w.sends()) != 1 {
		t.Fatalf("lagging read: err %v, sent %v", r.Err, w.sends())
	}
}

// A caller whose action never went out gets an error naming the device.
func TestRunNotSentNamesTheDevice(t *testing.T) {
	w := newFakeWorld(dev("pre-active", ""))
	ctx, cancel := context.WithCancel(context.Background())
	w.onSend = func(a tsapi.Action, _ string) (bool, error) {
		cancel()
		return false, &thingspace.NotSentError{Action: a, Devices: []tsapi.DeviceEntry{{DeviceIDs: tsapi.DeviceIDs{{Kind: "eid", ID: testEID}}}},
			Cause: context.Canceled}
	}
	r := Run(ctx, w, fast, testAcct, []Desired{want(GoalCreate)})[0]
	if msg := fmt.Sprint(r.Err); !strings.Contains(msg, testEID) || !strings.Contains(msg, "nothing was applied") || strings.Contains(msg, "context canceled") {
		t.Fatalf("err = %v", r.Err)
	}
}

// With AllOrNothing, one device that cannot take the change holds every other back.
func TestRunAllOrNothing(t *testing.T) {
	other := dev("pre-active", "")
	other.DeviceIDs[0].ID = "89049032000001000000000000000099"
	w := newFakeWorld(dev("active", planB), other)
	opt := fast
	opt.AllOrNothing = true
	res := Run(context.Background(), w, opt, testAcct, []Desired{want(GoalPlan), want(GoalPlan, func(d *Desired) { d.EID = other.DeviceIDs[0].ID })})
	var held *HeldBackError
	if !errors.As(res[0].Err, &held) || res[1].Err == nil || len(w.sends()) != 0 {
		t.Fatalf("results %v / %v, sent %v", res[0].Err, res[1].Err, w.sends())
	}
}

// An open intent past the horizon: the action goes once more, with a warning naming the device
// and the earlier attempt, and the old intent is resolved as superseded.
func TestRunResendsOnceAfterTheHorizon(t *testing.T) {
	w := newFakeWorld(dev("active", planA))
	hash := tsapi.BodyHash(tsapi.ActionServicePlan, tsapi.ProfileRequest{AccountName: testAcct, ServicePlan: planB})
	w.ledger[testEID].OpenIntents = []Intent{{ID: "i-old", Action: tsapi.ActionServicePlan, BodyHash: hash, Attempt: 1,
		CreatedAt: time.Now().Add(-2 * time.Hour)}}
	opt := fast
	opt.Horizon = time.Hour
	r := Run(context.Background(), w, opt, testAcct, []Desired{want(GoalUpdate, func(d *Desired) { d.ServicePlan = planB })})[0]
	if r.Err != nil || len(w.sends()) != 1 || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "i-old") ||
		!strings.Contains(r.Warnings[0], "attempt 2") || len(w.resolved) != 1 {
		t.Fatalf("err %v, sent %v, warnings %q, resolved %v", r.Err, w.sends(), r.Warnings, w.resolved)
	}
}
