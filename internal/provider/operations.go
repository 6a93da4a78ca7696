package provider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/fleetform/terraform-provider-thingspace/internal/thingspace"
	"github.com/fleetform/terraform-provider-thingspace/internal/wait"
)

// This file holds what the resources share to act on devices safely: the registration check,
// waiting for open requests, sending an action through the coalescer, waiting for its
// per-device outcome, and confirming the result by a device read before state is written.

// ensureRegistration checks once per provider process and account (and again after a
// listener changed it) that the account's DeviceProfileService callback points at the
// configured relay. Without a relay there is nothing to check: the provider polls.
func (c *Config) ensureRegistration(ctx context.Context, account string) error {
	if c.Relay == nil {
		return nil
	}
	g := c.Registration
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.checked[account] {
		return nil
	}
	regs, err := c.Client.ListCallbacks(withLogger(ctx), account)
	if err != nil {
		return fmt.Errorf("checking the account's callback registration: %w", err)
	}
	var registered string
	for _, r := range regs {
		if strings.EqualFold(r.ServiceName, thingspace.ServiceDeviceProfile) {
			registered = r.URL
		}
	}
	info, err := c.Relay.Info(ctx)
	if err != nil {
		return &relayUnavailableError{relayURL: c.RelayURL, asked: "GET /v1/info",
			why: fmt.Sprintf("that account %s sends its %s callbacks to the relay", account, thingspace.ServiceDeviceProfile), err: err}
	}
	fix := "Register the relay's public ingest URL for DeviceProfileService, for example with a " +
		"thingspace_callback_listener resource (url = the relay's -public-url), and apply it before the profiles."
	if registered == "" {
		return fmt.Errorf("account %s has no %s callback registered, so ThingSpace would send this action's results nowhere "+
			"and the provider could not confirm them. %s", account, thingspace.ServiceDeviceProfile, fix)
	}
	sum := sha256.Sum256([]byte(registered))
	if !slices.Contains(info.IngestURLSHA256, hex.EncodeToString(sum[:])) {
		return fmt.Errorf("account %s sends its %s callbacks to %s, which is not an ingest URL of the relay at %s, so the "+
			"provider would wait for callbacks that never reach it. %s", account, thingspace.ServiceDeviceProfile,
			redactURL(registered), c.RelayURL, fix)
	}
	g.checked[account] = true
	return nil
}

// redactURL shows scheme and host only: a callback URL's path holds the relay's path token.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "a URL that does not parse"
	}
	return u.Scheme + "://" + u.Host + "/…"
}

// awaitOpenRequests waits until no request the relay knows for the device is open: an action
// never goes out while another one is in flight for the same device. Without a relay, the
// device's PENDING_* state (see awaitSettled) is the only signal.
func (c *Config) awaitOpenRequests(ctx context.Context, account string, device thingspace.DeviceIDs) error {
	if c.Relay == nil {
		return nil
	}
	seen := map[string]wait.RequestRef{}
	for _, id := range device {
		if id.ID == "" {
			continue
		}
		refs, err := c.Relay.OpenRequests(ctx, id)
		if err != nil {
			return &relayUnavailableError{relayURL: c.RelayURL,
				asked: fmt.Sprintf("GET /v1/devices/%s:%s/requests?open=true", id.Kind, id.ID),
				why:   "that no request is already open for " + describeIDs(device), err: err}
		}
		for _, r := range refs {
			seen[r.RequestID] = r
		}
	}
	if len(seen) == 0 {
		return nil
	}
	targets := make([]wait.Target, 0, len(seen))
	for _, r := range seen {
		acct := r.Account
		if acct == "" {
			acct = account
		}
		targets = append(targets, wait.Target{Account: acct, RequestID: r.RequestID, Action: thingspace.Action(r.Action), Device: device})
		tflog.Info(ctx, "the device has an open request; waiting for it instead of sending another action",
			map[string]any{"device": describeIDs(device), "request_id": r.RequestID, "action": r.Action})
	}
	_, err := c.waitDevices(ctx, targets, "open request")
	return err
}

// openRequestWorkers bounds the relay questions a bulk resource asks at once before it acts:
// with a relay a round trip away, asking about 10,000 devices one by one takes minutes.
const openRequestWorkers = 8

// awaitOpenRequestsAll is awaitOpenRequests for many devices, with up to workers of them
// asked and waited on at once. The first error stops the rest; nothing has been sent then.
// The workers' own errors are returned, not the context's: when the caller's context ends
// (timeout, interrupt), each worker still waiting returns a *wait.PendingError naming its
// device and request, which "context deadline exceeded" would hide.
func (c *Config) awaitOpenRequestsAll(parent context.Context, account string, devices []thingspace.DeviceIDs, workers int) error {
	if c.Relay == nil || len(devices) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	var (
		mu   sync.Mutex
		errs []error // in the order they happened; errs[0] stopped the others
	)
	next := make(chan thingspace.DeviceIDs)
	var wg sync.WaitGroup
	for range max(1, min(workers, len(devices))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for device := range next {
				if err := c.awaitOpenRequests(ctx, account, device); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					cancel(err)
				}
			}
		}()
	}
feed:
	for _, device := range devices {
		select {
		case next <- device:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if len(errs) == 0 {
		return context.Cause(ctx)
	}
	if parent.Err() != nil && (errors.Is(errs[0], context.Canceled) || errors.Is(errs[0], context.DeadlineExceeded)) {
		// The caller's timeout or interrupt: every device still waiting names its request.
		var pending []error
		for _, err := range errs {
			var pe *wait.PendingError
			if errors.As(err, &pe) {
				pending = append(pending, err)
			}
		}
		if len(pending) > 0 {
			return errors.Join(pending...)
		}
	}
	return errs[0]
}

// relayUnavailableError is a question the provider must ask the relay before it acts (is a
// request open for the device? does the callback registration point at the relay?) that the
// relay did not answer. It is not an open request: nothing is known to be in flight, but
// without the answer the provider cannot rule it out, so it sends nothing.
type relayUnavailableError struct {
	relayURL string
	asked    string // the relay call, e.g. "GET /v1/info"
	why      string // what the answer would have confirmed
	err      error
}

func (e *relayUnavailableError) Error() string {
	return fmt.Sprintf("the relay at %s did not answer %s: %v", e.relayURL, e.asked, e.err)
}

func (e *relayUnavailableError) Unwrap() error { return e.err }

// title names what failed: the relay refused the call (token, permissions) or was not reached.
func (e *relayUnavailableError) title() string {
	var re *wait.RelayError
	if errors.As(e.err, &re) && !re.Temporary() {
		return "The relay refused the provider's request"
	}
	return "Cannot reach the relay"
}

func (e *relayUnavailableError) detail() string {
	return fmt.Sprintf("Before it sends a carrier action, the provider asks the relay at %s to confirm %s. "+
		"That call (%s) failed: %v\n\nNo action was sent to ThingSpace. Check that thingspace-relay is running and "+
		"reachable from here, that relay_url points at its API listener and that relay_token is one of its API "+
		"tokens, then apply again.", e.relayURL, e.why, e.asked, e.err)
}

// addPreflightError reports a failure of the checks made before an action (the registration,
// open requests), titled by what actually failed: an unreachable relay is not an open request.
func addPreflightError(diags *diag.Diagnostics, title string, err error) {
	var ru *relayUnavailableError
	if errors.As(err, &ru) {
		diags.AddError(ru.title(), ru.detail())
		return
	}
	diags.AddError(title, err.Error()+"\nNo action was sent.")
}

// settlePoll is the interval of awaitSettled's device reads.
const settlePoll = 2 * time.Second

// awaitSettled reads the device and, while its state is PENDING_* (a request in flight that
// the relay may not know about), waits and reads again.
func (c *Config) awaitSettled(ctx context.Context, account string, id thingspace.DeviceID) (*thingspace.Device, error) {
	for {
		d, err := c.Client.GetDevice(withLogger(ctx), account, id)
		if err != nil {
			return nil, err
		}
		if !d.State().Pending() {
			return d, nil
		}
		tflog.Info(ctx, "the device has a request in flight (PENDING state); waiting for it to settle",
			map[string]any{"device": id.ID, "state": string(d.State())})
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s %s stayed in state %s (a request in flight) until the timeout; no action was sent",
				strings.ToUpper(id.Kind), id.ID, d.State())
		case <-time.After(settlePoll):
		}
	}
}

// actResult is the outcome of one action for one device.
type actResult struct {
	RequestID string
	Outcome   thingspace.DeviceOutcome
}

// act sends one action for one device (coalesced with other instances' identical actions),
// reports the request id through accepted as soon as ThingSpace accepts it (so the caller can
// record it before waiting), and waits for the device's final outcome. A timeout or an
// interrupt returns the request id with a *wait.PendingError.
func (c *Config) act(ctx context.Context, p *thingspace.Participant, action thingspace.Action, body thingspace.ProfileRequest,
	device thingspace.DeviceIDs, accepted func(requestID string)) (actResult, error) {
	if p == nil {
		p = c.Coalescer.Begin()
	}
	tflog.Info(ctx, "sending ThingSpace action", map[string]any{"action": string(action), "device": describeIDs(device)})
	reqs, err := p.Submit(withLogger(ctx), action, body)
	var res actResult
	if len(reqs) > 0 {
		res.RequestID = reqs[0].RequestID
		if accepted != nil {
			accepted(res.RequestID)
		}
	}
	if err != nil {
		return res, fmt.Errorf("ThingSpace %s for %s: %w", action, describeIDs(device), err)
	}
	if res.RequestID == "" {
		return res, fmt.Errorf("ThingSpace %s for %s: no request carried the device", action, describeIDs(device))
	}
	out, err := c.waitDevices(ctx, []wait.Target{{Account: body.AccountName, RequestID: res.RequestID, Action: action, Device: device}}, string(action))
	if len(out) == 1 {
		res.Outcome = out[0]
	}
	return res, err
}

// waitDevices waits for targets with progress in the logs.
func (c *Config) waitDevices(ctx context.Context, targets []wait.Target, what string) ([]thingspace.DeviceOutcome, error) {
	return c.Waiter.Wait(ctx, targets, func(p wait.Progress) {
		fields := map[string]any{"what": what, "done": p.Done, "total": p.Total, "warnings": p.Warnings,
			"elapsed": p.Elapsed.Round(time.Second).String()}
		if len(p.Pending) > 0 && len(p.Pending) <= 5 {
			var pend []string
			for _, t := range p.Pending {
				pend = append(pend, describeIDs(t.Device)+" ("+t.RequestID+")")
			}
			fields["pending"] = strings.Join(pend, ", ")
		}
		if p.RelayError != nil {
			fields["relay_error"] = p.RelayError.Error()
			tflog.Warn(ctx, "the relay is not answering; still waiting", fields)
			return
		}
		tflog.Info(ctx, "waiting for ThingSpace callbacks", fields)
	})
}

// describeIDs names a device in messages: its EID, else its first identifier.
func describeIDs(ids thingspace.DeviceIDs) string {
	if eid := ids.Get(thingspace.KindEID); eid != "" {
		return "EID " + eid
	}
	if len(ids) > 0 {
		return strings.ToUpper(ids[0].Kind) + " " + ids[0].ID
	}
	return "the device"
}

// planCache remembers each account's service plans for the provider process, so that plan-time
// validation of many instances costs one call per account.
type planCache struct {
	mu    sync.Mutex
	plans map[string][]thingspace.ServicePlan
}

// servicePlanCodes returns the account's plan codes (cached).
func (c *Config) servicePlanCodes(ctx context.Context, account string) ([]string, error) {
	c.plans.mu.Lock()
	defer c.plans.mu.Unlock()
	if c.plans.plans == nil {
		c.plans.plans = map[string][]thingspace.ServicePlan{}
	}
	plans, ok := c.plans.plans[account]
	if !ok {
		var err error
		plans, err = c.Client.ServicePlans(withLogger(ctx), account)
		if err != nil {
			return nil, err
		}
		c.plans.plans[account] = plans
	}
	codes := make([]string, 0, len(plans))
	for _, p := range plans {
		code := p.Code
		if code == "" {
			code = p.Name
		}
		codes = append(codes, code)
	}
	return codes, nil
}

// checkServicePlan returns an error listing the valid plans when plan is not in the account.
func (c *Config) checkServicePlan(ctx context.Context, account, plan string) error {
	codes, err := c.servicePlanCodes(ctx, account)
	if err != nil {
		// A plan must not fail because the plan list is unreachable; apply will tell.
		tflog.Warn(ctx, "could not list service plans to validate the plan", map[string]any{"error": err.Error()})
		return nil
	}
	if slices.Contains(codes, plan) {
		return nil
	}
	sorted := append([]string(nil), codes...)
	sort.Strings(sorted)
	return fmt.Errorf("service plan %q is not a plan of account %s. Valid plans: %s", plan, account, strings.Join(sorted, ", "))
}

// claims detects a device claimed by two resources in one plan. Terraform does not tell a
// provider the resource addresses, so a claim is identified by the resource type and a
// fingerprint of its configuration; the same instance planned twice has the same fingerprint.
type claims struct {
	mu sync.Mutex
	by map[string]map[string]string // eid → fingerprint → resource type
}

// claim records that a resource of typ (with the given fingerprint) manages eid and returns
// an error when another one already does.
func (c *claims) claim(eid, typ, fingerprint string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.by == nil {
		c.by = map[string]map[string]string{}
	}
	m := c.by[eid]
	if m == nil {
		m = map[string]string{}
		c.by[eid] = m
	}
	for fp, other := range m {
		if fp != fingerprint {
			return fmt.Errorf("device EID %s is managed by two resources in this configuration: a %s and a %s. "+
				"A device's service plan must have one owner: remove it from one of them", eid, other, typ)
		}
	}
	m[fingerprint] = typ
	return nil
}

// confirmTimeout bounds a confirming read after the wait (the wait's own context may be over).
const confirmTimeout = 30 * time.Second

// errFailed wraps a device's failure callback for callers that return it as a diagnostic.
type errFailed struct {
	action thingspace.Action
	device thingspace.DeviceIDs
	req    string
	cbErr  *thingspace.CallbackError
}

func (e *errFailed) Error() string {
	msg := "ThingSpace reported a failure"
	if e.cbErr != nil {
		msg = e.cbErr.Error()
	}
	return fmt.Sprintf("ThingSpace could not %s %s (request %s): %s", actionVerb(e.action), describeIDs(e.device), e.req, msg)
}

func actionVerb(a thingspace.Action) string {
	switch a {
	case thingspace.ActionActivate:
		return "activate"
	case thingspace.ActionDeactivate:
		return "deactivate"
	case thingspace.ActionServicePlan:
		return "change the service plan of"
	case thingspace.ActionDownloadEnable:
		return "download and enable the profile of"
	case thingspace.ActionDownload:
		return "download the profile of"
	case thingspace.ActionDownloadDisable:
		return "download (disabled) the profile of"
	case thingspace.ActionEnable:
		return "enable the profile of"
	case thingspace.ActionDisable:
		return "disable the profile of"
	case thingspace.ActionProfileSuspend, thingspace.ActionDeviceSuspend:
		return "suspend"
	case thingspace.ActionProfileResume, thingspace.ActionDeviceResume:
		return "resume"
	case thingspace.ActionDelete:
		return "delete the profile of"
	}
	return string(a) + " on"
}

// isPending reports whether err is a wait that ended before the outcome was known.
func isPending(err error) bool {
	var p *wait.PendingError
	return errors.As(err, &p)
}
