package provider

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/fleetform/terraform-provider-thingspace/internal/reconcile"
	"github.com/fleetform/terraform-provider-thingspace/internal/relayapi"
	"github.com/fleetform/terraform-provider-thingspace/internal/thingspace"
	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// journal is the provider's write-ahead record of carrier actions (thingspace.Journal): before
// each chunk is POSTed it writes an intent with every identifier of every device; after the
// POST it records the request id ThingSpace answered (which registers the request), or that
// the chunk was refused. An answer that never came leaves the intent open, and the decision
// engine waits for evidence instead of sending the action again.
//
// With a relay the record is the relay's: durable, shared by every provider process, and
// outliving a SIGKILL of Terraform. Without one, the journal keeps it in memory, and each
// resource instance copies its devices' entries into its private state, which Terraform saves
// with the state (but not when Terraform itself is killed: a relay is what survives that).
type journal struct {
	relay *relayapi.Client

	mu    sync.Mutex
	local map[string][]journalEntry // by EID, without a relay
}

// journalEntry is one intent as the provider remembers it without a relay (private state).
type journalEntry struct {
	IntentID  string          `json:"intent"`
	Account   string          `json:"account"`
	Action    tsapi.Action    `json:"action"`
	BodyHash  string          `json:"body_sha256"`
	Attempt   int             `json:"attempt"`
	At        time.Time       `json:"at"`
	RequestID string          `json:"request_id,omitempty"`
	State     string          `json:"state"`
	Sent      tsapi.DeviceIDs `json:"sent"`
}

// maxLocalEntries bounds what an instance keeps in its private state: the last few actions
// are all a later decision needs.
const maxLocalEntries = 8

func newIntentID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "tf-" + hex.EncodeToString(b[:])
}

func (j *journal) Intend(ctx context.Context, action tsapi.Action, body tsapi.ProfileRequest) (string, error) {
	id := newIntentID()
	devices := make([]tsapi.DeviceIDs, len(body.Devices))
	for i, d := range body.Devices {
		devices[i] = thingspace.JournalIDs(d)
	}
	hash := tsapi.BodyHash(action, body)
	if j.relay != nil {
		_, err := j.relay.PutIntent(ctx, relayapi.Intent{IntentID: id, Account: body.AccountName, Action: string(action),
			Devices: devices, BodySHA256: hash, Attempt: max(1, body.Attempt)})
		if err != nil {
			return "", err
		}
		return id, nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	now := time.Now()
	for _, ids := range devices {
		eid := ids.Get(tsapi.KindEID)
		if eid == "" {
			continue
		}
		j.local[eid] = appendEntry(j.local[eid], journalEntry{IntentID: id, Account: body.AccountName, Action: action,
			BodyHash: hash, Attempt: max(1, body.Attempt), At: now, State: relayapi.IntentOpen, Sent: ids})
	}
	return id, nil
}

func (j *journal) Accepted(ctx context.Context, intentID string, action tsapi.Action, body tsapi.ProfileRequest, requestID string) {
	j.update(ctx, intentID, relayapi.IntentAccepted, requestID, "")
	tflog.Debug(ctx, "recorded an accepted request", map[string]any{"request_id": requestID, "action": string(action), "intent": intentID})
}

func (j *journal) Refused(ctx context.Context, intentID string, cause error) {
	j.update(ctx, intentID, relayapi.IntentRefused, "", cause.Error())
}

// update moves an intent to state. A relay that does not answer leaves the intent open: its
// devices then wait for evidence, the safe side.
func (j *journal) update(ctx context.Context, intentID, state, requestID, reason string) {
	if j.relay != nil {
		if _, err := j.relay.UpdateIntent(ctx, intentID, state, requestID, reason); err != nil {
			tflog.Warn(ctx, "could not record the intent's outcome at the relay; it stays open until evidence settles it", map[string]any{
				"intent": intentID, "state": state, "request_id": requestID, "error": err.Error()})
		}
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	for eid, entries := range j.local {
		for i := range entries {
			if entries[i].IntentID == intentID && entries[i].State == relayapi.IntentOpen {
				entries[i].State, entries[i].RequestID = state, requestID
			}
		}
		j.local[eid] = entries
	}
}

// resolve records that evidence settled an open intent.
func (j *journal) resolve(ctx context.Context, in reconcile.Intent, requestID, reason string) error {
	if j.relay != nil {
		_, err := j.relay.UpdateIntent(ctx, in.ID, relayapi.IntentResolved, requestID, reason)
		return err
	}
	j.update(ctx, in.ID, relayapi.IntentResolved, requestID, reason)
	return nil
}

// entries returns what the journal holds for a device (without a relay), merged with the
// entries the instance brought from its private state.
func (j *journal) entries(eid string, carried []journalEntry) []journalEntry {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := slices.Clone(carried)
	for _, e := range j.local[eid] {
		k := slices.IndexFunc(out, func(o journalEntry) bool { return o.IntentID == e.IntentID })
		if k >= 0 {
			out[k] = e
		} else {
			out = append(out, e)
		}
	}
	return trimEntries(out)
}

// adopt puts an instance's carried entries into the process's memory, so that later updates
// of them (an intent accepted or resolved in this process) are seen.
func (j *journal) adopt(eid string, carried []journalEntry) {
	if j.relay != nil || len(carried) == 0 {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, e := range carried {
		if !slices.ContainsFunc(j.local[eid], func(o journalEntry) bool { return o.IntentID == e.IntentID }) {
			j.local[eid] = appendEntry(j.local[eid], e)
		}
	}
}

func appendEntry(list []journalEntry, e journalEntry) []journalEntry {
	return trimEntries(append(list, e))
}

// trimEntries keeps the newest entries, and every open one.
func trimEntries(list []journalEntry) []journalEntry {
	slices.SortStableFunc(list, func(a, b journalEntry) int { return a.At.Compare(b.At) })
	for len(list) > maxLocalEntries {
		k := slices.IndexFunc(list, func(e journalEntry) bool { return e.State != relayapi.IntentOpen })
		if k < 0 {
			break
		}
		list = slices.Delete(list, k, k+1)
	}
	return list
}

// privateJournalKey is the private-state key of an instance's journal entries (no relay).
const privateJournalKey = "journal"

func privateJournal(ctx context.Context, p privateGetter) []journalEntry {
	b, diags := p.GetKey(ctx, privateJournalKey)
	if diags.HasError() || len(b) == 0 {
		return nil
	}
	var out []journalEntry
	if err := json.Unmarshal(b, &out); err != nil {
		tflog.Warn(ctx, "ignoring an unreadable journal in the private state", map[string]any{"error": err.Error()})
		return nil
	}
	return out
}

func setPrivateJournal(ctx context.Context, p privateSetter, entries []journalEntry) diag.Diagnostics {
	b, err := json.Marshal(entries)
	if err != nil {
		var d diag.Diagnostics
		d.AddError("Cannot save the action journal", fmt.Sprintf("encoding it failed: %v", err))
		return d
	}
	return p.SetKey(ctx, privateJournalKey, b)
}

// carriedJournal is what an instance brings to its Delete: its private journal or, for a
// tainted instance (Terraform hands the destroy of a tainted object no private state), an
// entry made from the state's last_request_id and last_action (an open intent when the
// action's answer never came). Without a relay that entry is
// the only record of the failed create's request: reading its status here puts its outcome in
// the process's journal, where the replacement Create finds it (an enable that failed after
// the download is then sent, not adopted as enabled).
func carriedJournal(ctx context.Context, p privateGetter, m *esimProfileModel) []journalEntry {
	if entries := privateJournal(ctx, p); len(entries) > 0 {
		return entries
	}
	action := tsapi.Action(m.LastAction.ValueString())
	if action == "" {
		return nil
	}
	return []journalEntry{lastRequestEntry(m.AccountName.ValueString(), m.EID.ValueString(), m.LastRequestID.ValueString(), action)}
}

// lastRequestEntry is the journal entry that a state's last request id and action stand for:
// an accepted request, or, when the action's answer never came (no request id), an open
// intent, settled by evidence as any other. Its age is counted from now (the state does not
// keep when it was sent): the safe side, a longer wait before the horizon allows a second
// attempt.
func lastRequestEntry(account, eid, requestID string, action tsapi.Action) journalEntry {
	e := journalEntry{IntentID: "state:" + requestID, Account: account, Action: action, Attempt: 1,
		At: time.Now(), RequestID: requestID, State: relayapi.IntentAccepted,
		Sent: tsapi.DeviceIDs{{Kind: tsapi.KindEID, ID: eid}}}
	if requestID == "" {
		e.IntentID, e.State = "state:unknown:"+string(action), relayapi.IntentOpen
	}
	return e
}

// privateFleetJournalKey keeps, without a relay, each device's journal entries (by EID).
const privateFleetJournalKey = "fleet_journal"

// setFleetJournal saves the devices' journal entries in private state (no relay).
func setFleetJournal(ctx context.Context, p privateSetter, w *world, eids []string) diag.Diagnostics {
	if w.cfg.Relay == nil {
		byEID := map[string][]journalEntry{}
		for _, eid := range eids {
			if e := w.journalFor(eid); len(e) > 0 {
				byEID[eid] = e
			}
		}
		b, err := json.Marshal(byEID)
		if err != nil {
			var d diag.Diagnostics
			d.AddError("Cannot save the action journal", fmt.Sprintf("encoding it failed: %v", err))
			return d
		}
		return p.SetKey(ctx, privateFleetJournalKey, b)
	}
	return nil
}

// carryFleetJournal hands the engine the journal of the fleet's devices (no relay): the private
// one, or for a tainted fleet (whose Delete gets no private state) entries made from each
// device's last request in device_status, as a profile's Delete does.
func carryFleetJournal(ctx context.Context, w *world, p privateGetter, status map[string]fleetStatus) {
	if w.cfg.Relay != nil {
		return
	}
	var byEID map[string][]journalEntry
	if b, diags := p.GetKey(ctx, privateFleetJournalKey); !diags.HasError() && len(b) > 0 {
		if err := json.Unmarshal(b, &byEID); err != nil {
			tflog.Warn(ctx, "ignoring an unreadable journal in the private state", map[string]any{"error": err.Error()})
		}
	}
	if len(byEID) == 0 {
		byEID = map[string][]journalEntry{}
		for eid, st := range status {
			action := tsapi.Action(st.LastAction.ValueString())
			if action == "" || st.Error.ValueString() == "" {
				continue
			}
			byEID[eid] = []journalEntry{lastRequestEntry("", eid, st.LastRequestID.ValueString(), action)}
		}
	}
	for eid, entries := range byEID {
		w.carry(eid, entries)
	}
}
