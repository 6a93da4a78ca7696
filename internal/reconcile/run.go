package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/retry"
	"github.com/fleetform/terraform-provider-thingspace/internal/thingspace"
	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
	"github.com/fleetform/terraform-provider-thingspace/internal/wait"
)

// World is what the engine observes and acts through; the provider implements it with the
// ThingSpace client (through its coalescer and journal), the waiter and the relay.
type World interface {
	// Observe reads each device (Device nil when it is not in the account) and its ledger,
	// looked up by every identifier of the device. It sends nothing.
	Observe(ctx context.Context, account string, devices []Desired) ([]Observed, error)
	// Send sends one action for the devices of body and returns the requests ThingSpace
	// accepted, each with the entries it carried (some, with an error, when a later chunk
	// failed). It journals every chunk before it is sent.
	Send(ctx context.Context, action tsapi.Action, body tsapi.ProfileRequest) ([]thingspace.AcceptedRequest, error)
	// Wait waits for the devices' final outcomes in their requests; when ctx ends first it
	// returns the outcomes so far and a *wait.PendingError naming what is still pending.
	Wait(ctx context.Context, targets []wait.Target) ([]tsapi.DeviceOutcome, error)
	// ConfirmStatus reports whether ThingSpace's request status shows the device's part of the
	// request succeeded: the only confirmation of the actions the device list cannot show.
	ConfirmStatus(ctx context.Context, account, requestID string, device tsapi.DeviceIDs) (bool, error)
	// ResolveIntent records that an open intent is settled; requestID is the request the
	// evidence came from ("" when the device's state settled it).
	ResolveIntent(ctx context.Context, in Intent, requestID, reason string) error
}

// Options tune Run.
type Options struct {
	// Horizon: how long an intent without evidence blocks its devices (DefaultHorizon).
	Horizon time.Duration
	// Poll is the first interval of observing again while waiting on a PENDING state or an
	// intent; it doubles up to MaxPoll. Defaults 2 s and 30 s.
	Poll, MaxPoll time.Duration
	// ConfirmTries bounds the observations that may still lag behind a success reported by
	// ThingSpace before the success counts as unconfirmed (default 5).
	ConfirmTries int
	// AllOrNothing: when the first decision refuses any device, no device acts; the others end
	// with a *HeldBackError. For a resource that owns a list of devices, where a partly applied
	// change is harder to reason about than none.
	AllOrNothing bool
}

func (o Options) withDefaults() Options {
	if o.Horizon <= 0 {
		o.Horizon = DefaultHorizon
	}
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	if o.MaxPoll < o.Poll {
		o.MaxPoll = max(o.Poll, 30*time.Second)
	}
	if o.ConfirmTries <= 0 {
		o.ConfirmTries = 5
	}
	return o
}

// maxRounds bounds one run: a device's whole lifecycle takes a handful of actions, and every
// wait ends with the context.
const maxRounds = 1000

// Result is what a run did for one device.
type Result struct {
	// First and Last are the device as first and last observed (nil: not in the account).
	First, Last *tsapi.Device
	// RequestIDs are the requests ThingSpace accepted for the device in this run, in order.
	RequestIDs []string
	// Actions are the actions of RequestIDs, in the same order.
	Actions []tsapi.Action
	// UnknownAction is the last action of this run whose answer never came (ThingSpace may
	// have applied it; no request id is known), "" when none.
	UnknownAction tsapi.Action
	// Changed: an action of this run succeeded for the device (it is no longer as it was).
	Changed bool
	// ProfileStatus and ProfileRole come from the newest callback about the managed profile
	// ("" when no callback tells).
	ProfileStatus, ProfileRole string
	// Warnings are for the user (an action sent again after the horizon).
	Warnings []string
	// Err is why the device is not as desired; nil when it is.
	Err error
}

// Pending reports whether the device ended with an action whose outcome is not known yet
// (still pending, or unknown): it may still complete, so the caller must not treat the device
// as unchanged.
func (r Result) Pending() bool {
	var pe *wait.PendingError
	var ue *UnknownOutcomeError
	return errors.As(r.Err, &pe) || errors.As(r.Err, &ue) || thingspace.IsOutcomeUnknown(r.Err)
}

// LastRequestID is the last request accepted for the device in this run ("" when none).
func (r Result) LastRequestID() string {
	if len(r.RequestIDs) == 0 {
		return ""
	}
	return r.RequestIDs[len(r.RequestIDs)-1]
}

// LastAction is the action of LastRequestID ("" when nothing was accepted).
func (r Result) LastAction() tsapi.Action {
	if len(r.Actions) == 0 {
		return ""
	}
	return r.Actions[len(r.Actions)-1]
}

// Seen is the device as the run last observed it, else as it first observed it (nil when the
// device was never found): what a caller records of a device whose run failed.
func (r Result) Seen() *tsapi.Device {
	if r.Last != nil {
		return r.Last
	}
	return r.First
}

// devRun is the engine's memory of one device during a run.
type devRun struct {
	settled map[string]bool // requests whose final outcome for the device is known
	events  []Event         // outcomes seen in this run (the ledger may not show them yet)
	sent    map[string]sentAction
	lag     int    // observations since a success that the device does not show yet
	waiting string // what the device waits on, for the error when time runs out
	unknown error  // an outcome-unknown error of this run
	done    bool
}

// sentAction is an action sent in this run, by its key (action, body hash, attempt).
type sentAction struct {
	requestID string
	succeeded bool
}

// target is one device's wait in a round: an action of this run, or an open request.
type target struct {
	dev  int
	step *Step // the action sent; nil when waiting on a request that was already open
}

// Run brings every device to its desired settings, deciding each step from a fresh
// observation, and returns one Result per device. It returns when every device is done or
// failed, or ctx ends; it sends no action whose outcome it cannot then wait for or record.
func Run(ctx context.Context, w World, opt Options, account string, devices []Desired) []Result {
	opt = opt.withDefaults()
	log := thingspace.Logger(ctx)
	res := make([]Result, len(devices))
	st := make([]devRun, len(devices))
	for i := range st {
		st[i] = devRun{settled: map[string]bool{}, sent: map[string]sentAction{}}
	}
	finish := func(i int, err error) {
		if !st[i].done {
			st[i].done = true
			res[i].Err = err
		}
	}
	poll := opt.Poll
	for round := 0; ; round++ {
		var open []int
		for i := range devices {
			if !st[i].done {
				open = append(open, i)
			}
		}
		if len(open) == 0 {
			break
		}
		if round >= maxRounds {
			for _, i := range open {
				finish(i, fmt.Errorf("EID %s did not reach the configuration after %d steps; last: %s", devices[i].EID, maxRounds, st[i].waiting))
			}
			break
		}
		want := make([]Desired, len(open))
		for j, i := range open {
			want[j] = devices[i]
		}
		obs, err := w.Observe(ctx, account, want)
		if err != nil {
			for _, i := range open {
				finish(i, timeUpOr(ctx, st[i], devices[i], fmt.Errorf("reading the device failed; nothing more was sent for it: %w", err)))
			}
			break
		}
		var (
			targets  []wait.Target
			owners   []target
			groups   = map[string][]int{}
			steps    = map[int]*Step{}
			order    []string
			polling  bool
			progress bool
		)
		for j, i := range open {
			o := obs[j]
			if res[i].First == nil && round == 0 {
				res[i].First = o.Device
			}
			res[i].Last = o.Device
			o.Ledger.OpenRequests = slices.DeleteFunc(slices.Clone(o.Ledger.OpenRequests), func(r OpenRequest) bool { return st[i].settled[r.RequestID] })
			o.Ledger.Events = append(slices.Clone(o.Ledger.Events), st[i].events...)
			res[i].ProfileStatus, res[i].ProfileRole = profileFacts(devices[i], o, res[i].ProfileStatus, res[i].ProfileRole)
			step := Decide(devices[i], o, opt.Horizon)
			st[i].waiting = step.Why
			switch step.Kind {
			case StepDone:
				log.Debug("device settled", "eid", devices[i].EID, "why", step.Why)
				finish(i, nil)
			case StepRefuse:
				finish(i, step.Err)
			case StepResolve:
				log.Info("an open intent is settled by evidence", "eid", devices[i].EID, "intent", step.Intent.ID, "why", step.Why)
				if err := w.ResolveIntent(ctx, *step.Intent, step.ResolvedBy, step.Why); err != nil {
					finish(i, timeUpOr(ctx, st[i], devices[i], fmt.Errorf("recording that intent %s is settled failed; nothing was sent: %w", step.Intent.ID, err)))
				}
				progress = true
			case StepWait:
				if len(step.Requests) == 0 {
					log.Info("waiting before acting", "eid", devices[i].EID, "why", step.Why)
					polling = true
					continue
				}
				for _, r := range step.Requests {
					acct := r.Account
					if acct == "" {
						acct = account
					}
					log.Info("the device has an open request; waiting for it instead of sending another action",
						"eid", devices[i].EID, "request_id", r.RequestID, "action", string(r.Action))
					targets = append(targets, wait.Target{Account: acct, RequestID: r.RequestID, Action: r.Action, Device: knownIDs(devices[i], o)})
					owners = append(owners, target{dev: i})
				}
			case StepAct:
				k := actKey(&step)
				if prev, ok := st[i].sent[k]; ok {
					if !prev.succeeded {
						// Its outcome is unknown and the ledger does not show the intent (yet):
						// never send it again in this run.
						st[i].waiting = fmt.Sprintf("the outcome of %s (request %s) is unknown", step.Action, orUnknown(prev.requestID))
						polling = true
						continue
					}
					st[i].lag++
					if st[i].lag > opt.ConfirmTries {
						finish(i, &UnconfirmedError{EID: devices[i].EID, Action: step.Action, RequestID: prev.requestID, Device: o.Device, Want: step.Why})
						continue
					}
					log.Info("ThingSpace reported success, but the device does not show it yet; reading again",
						"eid", devices[i].EID, "action", string(step.Action), "request_id", prev.requestID)
					polling = true
					continue
				}
				if step.Intent != nil {
					warn := fmt.Sprintf("EID %s: no evidence of the earlier %s (intent %s) arrived within %s; sending %s again (attempt %d)",
						devices[i].EID, step.Intent.Action, step.Intent.ID, opt.Horizon, step.Action, step.Body.Attempt)
					log.Warn(warn)
					res[i].Warnings = append(res[i].Warnings, warn)
					if err := w.ResolveIntent(ctx, *step.Intent, "", fmt.Sprintf("no evidence within the horizon; superseded by attempt %d", step.Body.Attempt)); err != nil {
						finish(i, timeUpOr(ctx, st[i], devices[i], fmt.Errorf("recording that intent %s is superseded failed; nothing was sent: %w", step.Intent.ID, err)))
						continue
					}
				}
				log.Info("deciding to act", "eid", devices[i].EID, "action", string(step.Action), "why", step.Why)
				s := step
				steps[i] = &s
				gk := fmt.Sprintf("%s|%d", tsapi.BodyHash(step.Action, step.Body), step.Body.Attempt)
				if _, ok := groups[gk]; !ok {
					order = append(order, gk)
				}
				groups[gk] = append(groups[gk], i)
			}
		}

		if round == 0 && opt.AllOrNothing {
			var refused []string
			for _, i := range open {
				if st[i].done && res[i].Err != nil {
					refused = append(refused, devices[i].EID)
				}
			}
			if len(refused) > 0 {
				for _, i := range open {
					finish(i, &HeldBackError{EID: devices[i].EID, Refused: refused})
				}
				break
			}
		}

		// Send each group of identical actions as one call (the client chunks it).
		for _, gk := range order {
			members := groups[gk]
			first := steps[members[0]]
			body := first.Body
			body.Devices = nil
			for _, i := range members {
				body.Devices = append(body.Devices, steps[i].Body.Devices...)
			}
			accepted, err := w.Send(ctx, first.Action, body)
			got := map[int]bool{}
			for _, r := range accepted {
				for _, d := range r.Devices {
					i := ownerOf(members, devices, d)
					if i < 0 || got[i] {
						continue
					}
					got[i] = true
					res[i].RequestIDs = append(res[i].RequestIDs, r.RequestID)
					res[i].Actions = append(res[i].Actions, first.Action)
					st[i].sent[actKey(steps[i])] = sentAction{requestID: r.RequestID}
					st[i].lag = 0
					targets = append(targets, wait.Target{Account: account, RequestID: r.RequestID, Action: first.Action,
						Device: thingspace.JournalIDs(d)})
					owners = append(owners, target{dev: i, step: steps[i]})
				}
			}
			for _, i := range members {
				if got[i] {
					continue
				}
				switch {
				case err == nil:
					finish(i, fmt.Errorf("ThingSpace %s for EID %s: no accepted request carried the device", first.Action, devices[i].EID))
				case thingspace.IsOutcomeUnknown(err):
					// Maybe applied: never sent again in this run. The next observation shows
					// the open intent, and evidence (or the horizon) settles it.
					log.Warn("the outcome of an action is unknown; waiting for evidence instead of sending it again",
						"eid", devices[i].EID, "action", string(first.Action), "error", err.Error())
					st[i].sent[actKey(steps[i])] = sentAction{}
					st[i].unknown = err
					res[i].UnknownAction = first.Action
					progress = true
				default:
					finish(i, timeUpOr(ctx, st[i], devices[i], fmt.Errorf("ThingSpace %s for EID %s: %w", first.Action, devices[i].EID, err)))
				}
			}
		}

		if len(targets) > 0 {
			progress = true
			outs, werr := w.Wait(ctx, targets)
			for k, out := range outs {
				if k >= len(owners) {
					break
				}
				ow := owners[k]
				i := ow.dev
				if out.Status.Terminal() {
					st[i].settled[targets[k].RequestID] = true
				}
				if ow.step == nil && out.Status.Terminal() && out.Callback != nil {
					// A request waited on: its callback is a fact about the device (which
					// profile it enabled) that the ledger may not carry.
					st[i].events = append(st[i].events, Event{Action: targets[k].Action, RequestID: targets[k].RequestID,
						At: time.Now(), Status: out.Status, Callback: out.Callback, Sent: targets[k].Device})
				}
				if ow.step == nil || st[i].done || !out.Status.Terminal() {
					continue
				}
				rid := targets[k].RequestID
				ev := Event{Action: ow.step.Action, RequestID: rid, At: time.Now(), Status: out.Status, Callback: out.Callback,
					Sent: targets[k].Device}
				if out.Err != nil {
					ev.Code = out.Err.Code
				}
				if out.Status == tsapi.StatusFailed && !(ow.step.Action == tsapi.ActionEnable && tsapi.CodeMatches(ev.Code, tsapi.CodeProfileAlreadyEnabled)) {
					st[i].events = append(st[i].events, ev)
					finish(i, &FailedError{Action: ow.step.Action, EID: devices[i].EID, RequestID: rid, Err: out.Err})
					continue
				}
				if ow.step.ByStatus && out.Status == tsapi.StatusSucceeded {
					ok, cerr := w.ConfirmStatus(ctx, account, rid, targets[k].Device)
					if !ok {
						msg := "it does not show Success for the device"
						if cerr != nil {
							msg = cerr.Error()
						}
						finish(i, &UnconfirmedError{EID: devices[i].EID, Action: ow.step.Action, RequestID: rid, Device: res[i].Last,
							Want: ow.step.Why, Detail: "ThingSpace's request status was checked: " + msg})
						continue
					}
				}
				st[i].events = append(st[i].events, ev)
				s := st[i].sent[actKey(ow.step)]
				s.succeeded = true
				st[i].sent[actKey(ow.step)] = s
				res[i].Changed = true
			}
			if werr != nil {
				for _, i := range open {
					finish(i, pendingFor(werr, targets, owners, i, st[i], devices[i], ctx))
				}
				break
			}
		}
		if ctx.Err() != nil {
			for _, i := range open {
				finish(i, timeUpOr(ctx, st[i], devices[i], ctx.Err()))
			}
			break
		}
		if polling && !progress {
			if err := retry.Sleep(ctx, poll); err != nil {
				for _, i := range open {
					finish(i, timeUpOr(ctx, st[i], devices[i], err))
				}
				break
			}
			poll = min(2*poll, opt.MaxPoll)
		} else if progress {
			poll = opt.Poll
		}
	}
	return res
}

// profileFacts keeps the newest profile status and role the ledger shows for the managed
// profile (its own ICCID for Global and local profiles, the lead's otherwise).
func profileFacts(d Desired, o Observed, status, role string) (string, string) {
	if o.Device == nil {
		return status, role
	}
	iccid := LeadICCID(*o.Device)
	if d.Type == Global || d.Type == Local {
		if pi, err := ProfileICCID(*o.Device, d.Type); err == nil && pi != "" {
			iccid = pi
		}
	}
	if s, r := latestProfileFacts(o.Ledger.Events, iccid); s != "" || r != "" {
		return s, r
	}
	return status, role
}

// knownIDs is every identifier known for a device: the configured ones and the read's.
func knownIDs(d Desired, o Observed) tsapi.DeviceIDs {
	ids := tsapi.DeviceIDs{{Kind: tsapi.KindEID, ID: d.EID}, {Kind: tsapi.KindICCID, ID: d.ICCID},
		{Kind: tsapi.KindIMEI, ID: d.IMEI}}
	if o.Device != nil {
		ids = append(ids, o.Device.DeviceIDs...)
	}
	return thingspace.JournalIDs(tsapi.DeviceEntry{DeviceIDs: ids})
}

// actKey identifies one change of one device: the action and its parameters.
func actKey(s *Step) string {
	return fmt.Sprintf("%s|%d", tsapi.BodyHash(s.Action, s.Body), s.Body.Attempt)
}

// ownerOf finds which member's device an accepted entry is.
func ownerOf(members []int, devices []Desired, e tsapi.DeviceEntry) int {
	ids := thingspace.JournalIDs(e)
	eid := ids.Get(tsapi.KindEID)
	for _, i := range members {
		if eid != "" && devices[i].EID == eid {
			return i
		}
	}
	return -1
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// timeUpOr is the error of a device whose run ends: when the context ended, what the device
// was waiting on (never a bare "context deadline exceeded"); otherwise err.
func timeUpOr(ctx context.Context, s devRun, d Desired, err error) error {
	if ctx.Err() == nil {
		return err
	}
	if s.unknown != nil {
		return &UnknownOutcomeError{EID: d.EID, Why: s.unknown.Error(), Cause: ctx.Err()}
	}
	if thingspace.IsNotSent(err) {
		return err
	}
	return &UnknownOutcomeError{EID: d.EID, Why: s.waiting, Cause: ctx.Err(), NothingSent: true}
}

// pendingFor picks a device's part of a wait that ended early.
func pendingFor(werr error, targets []wait.Target, owners []target, i int, s devRun, d Desired, ctx context.Context) error {
	var pe *wait.PendingError
	if !errors.As(werr, &pe) {
		return timeUpOr(ctx, s, d, werr)
	}
	mine := &wait.PendingError{Cause: pe.Cause}
	for _, p := range pe.Pending {
		for k, t := range targets {
			if owners[k].dev == i && t.RequestID == p.RequestID && t.Device.Matches(p.Device) {
				mine.Pending = append(mine.Pending, p)
				break
			}
		}
	}
	if len(mine.Pending) == 0 {
		return timeUpOr(ctx, s, d, werr)
	}
	return mine
}

// HeldBackError: nothing was sent for the device because others of the same change were
// refused (Options.AllOrNothing).
type HeldBackError struct {
	EID     string
	Refused []string
}

func (e *HeldBackError) Error() string {
	return fmt.Sprintf("nothing was sent for EID %s, because %d other device(s) of the same change cannot take it", e.EID, len(e.Refused))
}

// FailedError is a device's failure callback.
type FailedError struct {
	Action    tsapi.Action
	EID       string
	RequestID string
	Err       *tsapi.CallbackError
}

func (e *FailedError) Error() string {
	msg := "ThingSpace reported a failure"
	if e.Err != nil {
		msg = e.Err.Error()
	}
	return fmt.Sprintf("ThingSpace could not %s EID %s (request %s): %s", verb(e.Action), e.EID, e.RequestID, msg)
}

// Code is the failure's code ("" when none).
func (e *FailedError) Code() string {
	if e.Err == nil {
		return ""
	}
	return e.Err.Code
}

// UnconfirmedError: ThingSpace reported success, but the device does not show it.
type UnconfirmedError struct {
	EID       string
	Action    tsapi.Action
	RequestID string
	Device    *tsapi.Device
	Want      string
	Detail    string
}

// ErrUnconfirmed is matched by every *UnconfirmedError (errors.Is).
var ErrUnconfirmed = errors.New("the result could not be confirmed")

func (e *UnconfirmedError) Is(target error) bool { return target == ErrUnconfirmed }

func (e *UnconfirmedError) Error() string {
	shown := "not found"
	if e.Device != nil {
		shown = fmt.Sprintf("state %q, plan %q", e.Device.State(), e.Device.ServicePlan())
	}
	detail := e.Detail
	if detail == "" {
		detail = "the device reads as " + shown
	}
	return fmt.Sprintf("%v: ThingSpace reported success of %s for EID %s (request %s), but %s (wanted: %s)",
		ErrUnconfirmed, e.Action, e.EID, e.RequestID, detail, e.Want)
}

// UnknownOutcomeError ends a device's run while it waits for something whose outcome is not
// known: an action that may or may not have been applied, an open intent without evidence, or
// a request in flight. Nothing more was sent; the next apply observes again and goes on.
type UnknownOutcomeError struct {
	EID         string
	Why         string
	Cause       error
	NothingSent bool // no action of this run is in question: the device was only waited on
}

func (e *UnknownOutcomeError) Error() string {
	when := "the run ended"
	switch {
	case errors.Is(e.Cause, context.DeadlineExceeded):
		when = "the time-out ran out"
	case errors.Is(e.Cause, context.Canceled):
		when = "Terraform was interrupted"
	}
	why := strings.TrimSuffix(e.Why, ".")
	return fmt.Sprintf("EID %s: %s while waiting: %s. No action was sent again; the next apply looks at the device and "+
		"the relay again and goes on from there", e.EID, when, why)
}

func (e *UnknownOutcomeError) Unwrap() error { return e.Cause }

func verb(a tsapi.Action) string {
	switch a {
	case tsapi.ActionActivate:
		return "activate"
	case tsapi.ActionDeactivate:
		return "deactivate"
	case tsapi.ActionServicePlan:
		return "change the service plan of"
	case tsapi.ActionDownloadEnable:
		return "download and enable the profile of"
	case tsapi.ActionDownload:
		return "download the profile of"
	case tsapi.ActionDownloadDisable:
		return "download (disabled) the profile of"
	case tsapi.ActionEnable:
		return "enable the profile of"
	case tsapi.ActionDisable:
		return "disable the profile of"
	case tsapi.ActionProfileSuspend, tsapi.ActionDeviceSuspend:
		return "suspend"
	case tsapi.ActionProfileResume, tsapi.ActionDeviceResume:
		return "resume"
	case tsapi.ActionDelete:
		return "delete the profile of"
	}
	return string(a) + " on"
}
