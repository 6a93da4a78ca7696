package thingspace

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// Journal records every action call before it is sent and what became of it: a write-ahead
// log of carrier actions. ThingSpace actions are not idempotent (a second POST is a second
// request), and the answer to a POST can be lost (a 5xx after the request was applied, a cut
// connection, a killed process). An intent written before the POST is what lets a later run
// know that an action may be in flight for a device even though nobody ever learned its
// request id, so that it waits for evidence instead of sending the action again.
//
// The client calls Intend before each chunk's POST (after bulk splitting, so one intent
// describes exactly the devices of one POST), then exactly one of Accepted or Refused, or
// nothing when the outcome is unknown: the intent then stays open.
type Journal interface {
	// Intend records that body (one chunk) is about to be POSTed and returns the intent's id.
	// An error stops the call: nothing is sent.
	Intend(ctx context.Context, action tsapi.Action, body tsapi.ProfileRequest) (intentID string, err error)
	// Accepted records that ThingSpace accepted the chunk as requestID. An error is logged by
	// the journal; the intent then stays open, which blocks its devices until evidence comes:
	// the safe side.
	Accepted(ctx context.Context, intentID string, action tsapi.Action, body tsapi.ProfileRequest, requestID string)
	// Refused records that the chunk was not applied: ThingSpace refused it synchronously, or
	// it was never sent (rate limit wait or login cut short). cause says why.
	Refused(ctx context.Context, intentID string, cause error)
}

// SetJournal installs j for every later action call of the client (nil: none).
func (c *Client) SetJournal(j Journal) { c.journal = j }

// JournalIDs is every identifier a journal should index a device entry by: the identifiers
// sent and the ones the caller knows besides (Also), each once, kinds in lower case.
func JournalIDs(e tsapi.DeviceEntry) tsapi.DeviceIDs {
	out := make(tsapi.DeviceIDs, 0, len(e.DeviceIDs)+len(e.Also))
	for _, id := range append(append(tsapi.DeviceIDs(nil), e.DeviceIDs...), e.Also...) {
		if id.ID == "" {
			continue
		}
		k := tsapi.NormalizeKind(id.Kind)
		dup := false
		for _, o := range out {
			if o.Kind == k && o.ID == id.ID {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, tsapi.DeviceID{Kind: k, ID: id.ID})
		}
	}
	return out
}

// NotSentError says that an action was not sent for some devices, so nothing can have been
// applied to them: the caller's time ran out or it was interrupted before its batch went out,
// or the journal could not record the intent.
type NotSentError struct {
	Action  tsapi.Action
	Devices []tsapi.DeviceEntry
	Cause   error
}

func (e *NotSentError) Error() string {
	why := e.Cause.Error()
	switch {
	case errors.Is(e.Cause, context.DeadlineExceeded):
		why = "the time-out ran out before it was sent"
	case errors.Is(e.Cause, context.Canceled):
		why = "Terraform was interrupted before it was sent"
	}
	return fmt.Sprintf("%s was not sent for %s: %s; nothing was applied", e.Action, describeEntries(e.Devices), why)
}

func (e *NotSentError) Unwrap() error { return e.Cause }

// IsNotSent reports whether err is or wraps a *NotSentError.
func IsNotSent(err error) bool {
	var e *NotSentError
	return errors.As(err, &e)
}

// describeEntries names up to five devices by EID (else their first identifier).
func describeEntries(devices []tsapi.DeviceEntry) string {
	names := make([]string, 0, len(devices))
	for _, d := range devices {
		if id := d.DeviceIDs.Get(tsapi.KindEID); id != "" {
			names = append(names, "EID "+id)
		} else if len(d.DeviceIDs) > 0 {
			names = append(names, strings.ToUpper(d.DeviceIDs[0].Kind)+" "+d.DeviceIDs[0].ID)
		}
	}
	if len(names) > 5 {
		names = append(names[:5:5], fmt.Sprintf("and %d more", len(devices)-5))
	}
	if len(names) == 0 {
		return "no device"
	}
	return strings.Join(names, ", ")
}
