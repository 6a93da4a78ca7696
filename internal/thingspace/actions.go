package thingspace

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// PathActions is the prefix of every profile action: POST PathActions + action.
const PathActions = "/api/m2m/v1/devices/profile/actions/"

// AcceptedRequest is one bulk call ThingSpace accepted: its request id and the devices it
// carried. Results arrive later, one callback per device, all with this id.
type AcceptedRequest struct {
	RequestID string
	Devices   []tsapi.DeviceEntry
}

// ActionResult lists the requests of one action call: one per bulk chunk.
type ActionResult struct {
	Action   tsapi.Action
	Requests []AcceptedRequest
}

// Activate activates (or reactivates) profiles (ThingSpace's activate page).
func (c *Client) Activate(ctx context.Context, r tsapi.ActivateRequest) (*ActionResult, error) {
	return c.PostAction(ctx, tsapi.ActionActivate, r.Body())
}

// DownloadEnable downloads and enables a Global (ServicePlan) or local (SmsrOid) profile (ThingSpace's download_enable page).
func (c *Client) DownloadEnable(ctx context.Context, r tsapi.DownloadEnableRequest) (*ActionResult, error) {
	return c.PostAction(ctx, tsapi.ActionDownloadEnable, r.Body())
}

// Enable enables a profile that is already downloaded (ThingSpace's enable page).
func (c *Client) Enable(ctx context.Context, r tsapi.EnableRequest) (*ActionResult, error) {
	return c.PostAction(ctx, tsapi.ActionEnable, r.Body())
}

// ChangeServicePlan changes the service plan of profiles (ThingSpace's serviceplan page).
func (c *Client) ChangeServicePlan(ctx context.Context, r tsapi.ServicePlanRequest) (*ActionResult, error) {
	return c.PostAction(ctx, tsapi.ActionServicePlan, r.Body())
}

// ProfileResume resumes suspended US or Global profiles (ThingSpace's profile_resume page).
func (c *Client) ProfileResume(ctx context.Context, r tsapi.ProfileResumeRequest) (*ActionResult, error) {
	return c.PostAction(ctx, tsapi.ActionProfileResume, r.Body())
}

// ProfileSuspend suspends Global profiles (Global only; US profiles use DeviceSuspend).
func (c *Client) ProfileSuspend(ctx context.Context, r tsapi.ProfileSuspendRequest) (*ActionResult, error) {
	return c.PostAction(ctx, tsapi.ActionProfileSuspend, r.Body())
}

// DeviceSuspend suspends whole devices by EID; a final device-level callback ends each.
func (c *Client) DeviceSuspend(ctx context.Context, r tsapi.DeviceSuspendRequest) (*ActionResult, error) {
	return c.PostAction(ctx, tsapi.ActionDeviceSuspend, r.Body())
}

// DeviceResume resumes whole devices by EID.
func (c *Client) DeviceResume(ctx context.Context, r tsapi.DeviceResumeRequest) (*ActionResult, error) {
	return c.PostAction(ctx, tsapi.ActionDeviceResume, r.Body())
}

// Deactivate deactivates profiles, with an explicit ETF waiver and reason code.
func (c *Client) Deactivate(ctx context.Context, r tsapi.DeactivateRequest) (*ActionResult, error) {
	if r.ReasonCode == "" {
		return nil, errors.New("thingspace: deactivate needs an explicit reason code")
	}
	return c.PostAction(ctx, tsapi.ActionDeactivate, r.Body())
}

// Disable disables a profile; the device falls back to its bootstrap profile.
func (c *Client) Disable(ctx context.Context, r tsapi.ProfileChangeRequest) (*ActionResult, error) {
	return c.PostAction(ctx, tsapi.ActionDisable, r.Body())
}

// Delete deletes a Global (after deactivation) or local profile.
func (c *Client) Delete(ctx context.Context, r tsapi.ProfileChangeRequest) (*ActionResult, error) {
	return c.PostAction(ctx, tsapi.ActionDelete, r.Body())
}

// Download downloads a Global profile without enabling it.
func (c *Client) Download(ctx context.Context, r tsapi.ProfileChangeRequest) (*ActionResult, error) {
	return c.PostAction(ctx, tsapi.ActionDownload, r.Body())
}

// DownloadDisable downloads a local profile and leaves it disabled.
func (c *Client) DownloadDisable(ctx context.Context, r tsapi.ProfileChangeRequest) (*ActionResult, error) {
	return c.PostAction(ctx, tsapi.ActionDownloadDisable, r.Body())
}

// RequiredKinds lists the identifiers each action needs for every device, as ThingSpace's
// pages for each action list them.
func RequiredKinds(a tsapi.Action) []string {
	switch a {
	case tsapi.ActionActivate:
		return []string{tsapi.KindEID, tsapi.KindICCID, tsapi.KindIMEI}
	case tsapi.ActionProfileSuspend, tsapi.ActionProfileResume:
		return []string{tsapi.KindICCID}
	case tsapi.ActionDeviceSuspend, tsapi.ActionDeviceResume:
		return []string{tsapi.KindEID}
	case tsapi.ActionDeactivate:
		return nil // any one identifier
	default:
		return []string{tsapi.KindEID, tsapi.KindICCID}
	}
}

// ValidateActionBody checks, before anything is sent, that body names an account and gives
// every device the identifiers the action needs.
func ValidateActionBody(action tsapi.Action, body tsapi.ProfileRequest) error {
	if !action.Valid() {
		return fmt.Errorf("thingspace: unknown action %q", action)
	}
	if err := requireAccount(body.AccountName); err != nil {
		return err
	}
	if len(body.Devices) == 0 {
		return fmt.Errorf("thingspace: %s needs at least one device", action)
	}
	need := RequiredKinds(action)
	for i, d := range body.Devices {
		if len(d.DeviceIDs) == 0 {
			return fmt.Errorf("thingspace: %s: device %d has no identifiers", action, i+1)
		}
		var missing []string
		for _, k := range need {
			if d.DeviceIDs.Get(k) == "" {
				missing = append(missing, k)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("thingspace: %s needs %s for every device; device %s has no %s",
				action, strings.Join(need, " + "), describeDevice(d.DeviceIDs), strings.Join(missing, ", "))
		}
	}
	if (action == tsapi.ActionProfileSuspend || action == tsapi.ActionProfileResume) && body.ServicePlan == "" {
		return fmt.Errorf("thingspace: %s needs the profile's servicePlan", action)
	}
	return nil
}

func describeDevice(ids tsapi.DeviceIDs) string {
	parts := make([]string, 0, len(ids))
	for _, id := range ids {
		parts = append(parts, id.Kind+" "+id.ID)
	}
	return strings.Join(parts, ", ")
}

// PostAction sends an action for every device of body, split into bulk calls of at most
// BulkSize devices. When ThingSpace refuses a call for its size (MaxRequestsExceeded,
// NumberofDevices: a synchronous refusal, so nothing was applied) the bulk size halves, for
// this and every later call, and the chunk is sent again in halves.
//
// With a Journal, every chunk is recorded before it is sent and its fate after (accepted with
// its request id, refused, or left open when the outcome is unknown); a chunk the journal
// cannot record is not sent (*NotSentError).
//
// On error, the returned result still lists the chunks already accepted: the caller must
// track (and wait on) them. A 5xx, a connection lost after sending, or a 2xx answer that
// cannot be read is an *OutcomeUnknownError and is never sent again.
func (c *Client) PostAction(ctx context.Context, action tsapi.Action, body tsapi.ProfileRequest) (*ActionResult, error) {
	if err := ValidateActionBody(action, body); err != nil {
		return nil, err
	}
	res := &ActionResult{Action: action}
	pending := body.Devices
	for len(pending) > 0 {
		n := min(c.BulkSize(), len(pending))
		chunk := pending[:n]
		b := body
		b.Devices = chunk
		var intent string
		if c.journal != nil {
			var err error
			if intent, err = c.journal.Intend(ctx, action, b); err != nil {
				return res, &NotSentError{Action: action, Devices: pending,
					Cause: fmt.Errorf("the intent could not be recorded before sending: %w", err)}
			}
		}
		var out tsapi.RequestResponse
		// Device reads of the account taken before the answer are older than the action: the
		// read coalescer forgets them before and after the POST.
		c.reads.Invalidate(body.AccountName)
		_, err := c.do(ctx, call{
			method: http.MethodPost, path: PathActions + string(action), body: b, kind: kindAction,
			session: true, out: &out, action: action, devices: chunk,
		})
		c.reads.Invalidate(body.AccountName)
		if err == nil && out.RequestID == "" {
			err = &OutcomeUnknownError{Action: action, Devices: chunk,
				Cause: errors.New("ThingSpace accepted the call but answered no requestId")}
		}
		if err != nil {
			if c.journal != nil && !IsOutcomeUnknown(err) {
				// Refused synchronously, or never sent: nothing was applied.
				c.journal.Refused(ctx, intent, err)
			}
			if bulkTooLarge(err) && n > 1 {
				c.shrinkBulk(n)
				logger(ctx).Info("ThingSpace refused the bulk size; halving it", "action", string(action), "devices", n, "new_bulk_size", c.BulkSize())
				continue
			}
			return res, err
		}
		if c.journal != nil {
			c.journal.Accepted(ctx, intent, action, b, out.RequestID)
		}
		logger(ctx).Info("ThingSpace accepted the action", "action", string(action), "request_id", out.RequestID, "devices", n)
		res.Requests = append(res.Requests, AcceptedRequest{RequestID: out.RequestID, Devices: chunk})
		pending = pending[n:]
	}
	return res, nil
}

// shrinkBulk halves the bulk size below a refused chunk of n devices (never below 1), keeping
// a smaller value another caller already set.
func (c *Client) shrinkBulk(n int) {
	target := int64(max(1, n/2))
	for {
		cur := c.bulkSize.Load()
		if cur <= target || c.bulkSize.CompareAndSwap(cur, target) {
			return
		}
	}
}

// Devices builds the devices array of a request from identifier sets.
func Devices(ids ...tsapi.DeviceIDs) []tsapi.DeviceEntry {
	out := make([]tsapi.DeviceEntry, len(ids))
	for i, d := range ids {
		out[i] = tsapi.DeviceEntry{DeviceIDs: d}
	}
	return out
}
