package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/fleetform/terraform-provider-thingspace/internal/reconcile"
	"github.com/fleetform/terraform-provider-thingspace/internal/relayapi"
	"github.com/fleetform/terraform-provider-thingspace/internal/retry"
	"github.com/fleetform/terraform-provider-thingspace/internal/thingspace"
	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
	"github.com/fleetform/terraform-provider-thingspace/internal/wait"
)

// world is the decision engine's view of ThingSpace and the relay (reconcile.World) for one
// resource operation: device reads, the relay's record of the devices (or, without a relay,
// the journal kept in the provider and in the instance's private state), actions through the
// coalescer, and the waiter.
type world struct {
	cfg *Config
	// part is the coalescer announcement of the operation's first action (nil: none).
	part *thingspace.Participant
	// carried is, without a relay, the journal entries the instance brought from its private
	// state, by EID.
	carried map[string][]journalEntry
}

var _ reconcile.World = (*world)(nil)

// newWorld returns the engine's world for one operation; part may be nil.
func (c *Config) newWorld(part *thingspace.Participant) *world {
	return &world{cfg: c, part: part, carried: map[string][]journalEntry{}}
}

// carry hands the engine an instance's private journal (no relay).
func (w *world) carry(eid string, entries []journalEntry) {
	if len(entries) > 0 {
		w.carried[eid] = entries
		w.cfg.journal.adopt(eid, entries)
	}
}

// journalFor returns what the instance should keep in its private state for eid.
func (w *world) journalFor(eid string) []journalEntry {
	if w.cfg.Relay != nil {
		return nil
	}
	return w.cfg.journal.entries(eid, w.carried[eid])
}

func (w *world) Observe(ctx context.Context, account string, devices []reconcile.Desired) ([]reconcile.Observed, error) {
	reads, err := w.cfg.readDevices(ctx, account, devices)
	if err != nil {
		return nil, err
	}
	out := make([]reconcile.Observed, len(devices))
	for i := range devices {
		out[i].Device = reads[i]
		out[i].Now = time.Now()
	}
	if w.cfg.Relay == nil {
		for i, d := range devices {
			out[i].Ledger, err = w.localLedger(ctx, account, d.EID)
			if err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	ids := make([]tsapi.DeviceIDs, len(devices))
	for i, d := range devices {
		known := tsapi.DeviceIDs{{Kind: tsapi.KindEID, ID: d.EID}, {Kind: tsapi.KindICCID, ID: d.ICCID},
			{Kind: tsapi.KindIMEI, ID: d.IMEI}}
		if reads[i] != nil {
			known = append(known, reads[i].DeviceIDs...)
		}
		ids[i] = thingspace.JournalIDs(tsapi.DeviceEntry{DeviceIDs: known})
	}
	records, now, err := w.cfg.Relay.LookupDevices(ctx, ids)
	if err != nil {
		return nil, &relayUnavailableError{relayURL: w.cfg.RelayURL, asked: "POST /v1/devices/lookup",
			why: "what is in flight for " + describeIDs(ids[0]), err: err}
	}
	for i := range out {
		out[i].Now = now
		if i < len(records) {
			out[i].Ledger = ledgerFromRecord(records[i], ids[i])
		}
	}
	return out, nil
}

// ledgerFromRecord converts the relay's record of a device for the engine.
func ledgerFromRecord(r relayapi.DeviceRecord, device tsapi.DeviceIDs) reconcile.Ledger {
	var l reconcile.Ledger
	// A request stays open at the relay until every one of its devices is done, and one that
	// nobody registered (its sender was killed before it could) never is: a request that has
	// already sent this device a final callback is done for this device, and is not waited on.
	doneFor := map[string]bool{}
	for _, lc := range r.Latest {
		if lc.Terminal {
			doneFor[lc.RequestID] = true
		}
	}
	for _, rq := range r.OpenRequests {
		if doneFor[rq.RequestID] {
			continue
		}
		l.OpenRequests = append(l.OpenRequests, reconcile.OpenRequest{RequestID: rq.RequestID, Account: rq.Account,
			Action: tsapi.Action(rq.Action)})
	}
	for _, in := range r.OpenIntents {
		ri := reconcile.Intent{ID: in.IntentID, Action: tsapi.Action(in.Action), BodyHash: in.BodySHA256,
			Attempt: max(1, in.Attempt), CreatedAt: in.CreatedAt}
		for _, d := range in.Devices {
			if d.Matches(device) {
				ri.Sent = d
				break
			}
		}
		l.OpenIntents = append(l.OpenIntents, ri)
	}
	for _, lc := range r.Latest {
		var cb tsapi.Callback
		if err := json.Unmarshal(lc.Body, &cb); err != nil {
			continue // the relay stores what it could parse; an unreadable body tells nothing
		}
		action := tsapi.Action(lc.Action)
		status, cerr := cb.Outcome(action)
		if !status.Terminal() {
			continue
		}
		ev := reconcile.Event{Action: action, RequestID: lc.RequestID, At: lc.ReceivedAt, Seq: lc.Seq, Status: status, Callback: &cb}
		if cerr != nil {
			ev.Code = cerr.Code
		}
		l.Events = append(l.Events, ev)
	}
	return l
}

// localLedger builds a device's ledger without a relay: the journal's open intents, and the
// request status of each request it recorded (pending: open; final: an event).
func (w *world) localLedger(ctx context.Context, account, eid string) (reconcile.Ledger, error) {
	var l reconcile.Ledger
	for _, e := range w.cfg.journal.entries(eid, w.carried[eid]) {
		switch {
		case e.State == relayapi.IntentOpen:
			l.OpenIntents = append(l.OpenIntents, reconcile.Intent{ID: e.IntentID, Action: e.Action, BodyHash: e.BodyHash,
				Attempt: e.Attempt, CreatedAt: e.At, Sent: e.Sent})
		case e.State == relayapi.IntentResolved && e.RequestID == "":
			// Settled by the device's state, its answer lost: the action took, with effects
			// the device list does not show (whether an enable took). Newer than what came
			// before, it keeps older events from deciding those.
			l.Events = append(l.Events, reconcile.Event{Action: e.Action, At: e.At, Sent: e.Sent})
		case e.RequestID != "":
			acct := e.Account
			if acct == "" {
				acct = account
			}
			st, err := w.cfg.Client.RequestStatus(withLogger(ctx), acct, e.RequestID)
			if err != nil {
				return l, fmt.Errorf("reading the status of request %s (%s for EID %s): %w", e.RequestID, e.Action, eid, err)
			}
			for _, sub := range st.SubRequests {
				if !sub.IDs.Matches(e.Sent) {
					continue
				}
				switch s := tsapi.NormalizeStatus(sub.Status); {
				case s.Terminal():
					l.Events = append(l.Events, reconcile.Event{Action: e.Action, RequestID: e.RequestID, At: e.At, Status: s, Sent: e.Sent})
				default:
					l.OpenRequests = append(l.OpenRequests, reconcile.OpenRequest{RequestID: e.RequestID, Account: acct, Action: e.Action})
				}
				break
			}
		}
	}
	return l, nil
}

func (w *world) Send(ctx context.Context, action tsapi.Action, body tsapi.ProfileRequest) ([]thingspace.AcceptedRequest, error) {
	p := w.part
	w.part = nil
	if p == nil {
		p = w.cfg.Coalescer.Begin()
	}
	if err := w.cfg.ensureRegistration(ctx, body.AccountName); err != nil {
		p.Done()
		return nil, &thingspace.NotSentError{Action: action, Devices: body.Devices, Cause: err}
	}
	tflog.Info(ctx, "sending ThingSpace action", map[string]any{"action": string(action), "devices": len(body.Devices),
		"first": describeIDs(thingspace.JournalIDs(body.Devices[0]))})
	return p.Submit(withLogger(ctx), action, body)
}

func (w *world) Wait(ctx context.Context, targets []wait.Target) ([]tsapi.DeviceOutcome, error) {
	return w.cfg.waitDevices(ctx, targets, string(targets[0].Action))
}

// ConfirmStatus reads the request status a few times (it may lag behind the callback), on a
// context of its own so that a confirmation already due is not lost to a time-out.
func (w *world) ConfirmStatus(ctx context.Context, account, requestID string, device tsapi.DeviceIDs) (bool, error) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), confirmTimeout)
	defer cancel()
	var lastErr error
	last := "no entry for the device"
	for attempt := range 5 {
		st, err := w.cfg.Client.RequestStatus(withLogger(rctx), account, requestID)
		lastErr = err
		if err == nil {
			for _, sub := range st.SubRequests {
				if sub.IDs.Matches(device) {
					last = sub.Status
					if tsapi.NormalizeStatus(sub.Status) == tsapi.StatusSucceeded {
						return true, nil
					}
				}
			}
		}
		if retry.Sleep(rctx, time.Duration(attempt+1)*500*time.Millisecond) != nil {
			break
		}
	}
	if lastErr != nil {
		return false, fmt.Errorf("reading request %s's status failed: %w", requestID, lastErr)
	}
	return false, fmt.Errorf("request %s's status shows %q for the device, not Success", requestID, last)
}

func (w *world) ResolveIntent(ctx context.Context, in reconcile.Intent, requestID, reason string) error {
	return w.cfg.journal.resolve(ctx, in, requestID, reason)
}

// done withdraws the operation's coalescer announcement if no action used it.
func (w *world) done() {
	if w.part != nil {
		w.part.Done()
		w.part = nil
	}
}

// readDevices reads the devices as they are now: from data fetched after the call began, so
// that an observation before an action, or one confirming it, is never stale. Concurrent
// instances share listings of the account (see thingspace.ReadCoalescer: a single read each
// for the first few devices of an account, shared paged listings after that). A device not in
// the account is nil.
func (c *Config) readDevices(ctx context.Context, account string, devices []reconcile.Desired) ([]*tsapi.Device, error) {
	return c.readDevicesSince(ctx, account, devices, time.Now())
}

// findDeviceByEID reads one device from data fetched at or after notBefore (see refreshBound);
// a device not in the account is a thingspace.IsDeviceNotFound error.
func (c *Config) findDeviceByEID(ctx context.Context, account, eid string, notBefore time.Time) (*tsapi.Device, error) {
	return c.Client.Reads().Device(withLogger(ctx), account, tsapi.DeviceID{Kind: tsapi.KindEID, ID: eid}, notBefore)
}

// readDevicesSince reads the devices from data fetched at or after notBefore (see
// refreshBound); a device not in the account is nil.
func (c *Config) readDevicesSince(ctx context.Context, account string, devices []reconcile.Desired, notBefore time.Time) ([]*tsapi.Device, error) {
	ids := make([]tsapi.DeviceID, len(devices))
	for i, d := range devices {
		ids[i] = tsapi.DeviceID{Kind: tsapi.KindEID, ID: d.EID}
	}
	return c.Client.Reads().Devices(withLogger(ctx), account, ids, notBefore)
}

// refreshBound is the freshness a refresh (a resource's Read) accepts: data from a listing of
// the account that started within the read coalescer's TTL. A refresh is advisory: the apply
// decides again from observations read after it began.
func (c *Config) refreshBound() time.Time {
	return time.Now().Add(-c.Client.Reads().TTL())
}

// runOptions are the engine's options from the provider configuration.
func (c *Config) runOptions() reconcile.Options {
	return reconcile.Options{Horizon: c.OutcomeHorizon, Poll: c.EnginePoll}
}
