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
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/fleetform/terraform-provider-thingspace/internal/reconcile"
	"github.com/fleetform/terraform-provider-thingspace/internal/relayapi"
	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
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
		if strings.EqualFold(r.ServiceName, tsapi.ServiceDeviceProfile) {
			registered = r.URL
		}
	}
	info, err := c.Relay.Info(ctx)
	if err != nil {
		return &relayUnavailableError{relayURL: c.RelayURL, asked: "GET /v1/info",
			why: fmt.Sprintf("that account %s sends its %s callbacks to the relay", account, tsapi.ServiceDeviceProfile), err: err}
	}
	fix := "Register the relay's public ingest URL for DeviceProfileService, for example with a " +
		"thingspace_callback_listener resource (url = the relay's -public-url), and apply it before the profiles."
	if registered == "" {
		return fmt.Errorf("account %s has no %s callback registered, so ThingSpace would send this action's results nowhere "+
			"and the provider could not confirm them. %s", account, tsapi.ServiceDeviceProfile, fix)
	}
	sum := sha256.Sum256([]byte(registered))
	if !slices.Contains(info.IngestURLSHA256, hex.EncodeToString(sum[:])) {
		return fmt.Errorf("account %s sends its %s callbacks to %s, which is not an ingest URL of the relay at %s, so the "+
			"provider would wait for callbacks that never reach it. %s", account, tsapi.ServiceDeviceProfile,
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
	var re *relayapi.Error
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

// waitDevices waits for targets with progress in the logs.
func (c *Config) waitDevices(ctx context.Context, targets []wait.Target, what string) ([]tsapi.DeviceOutcome, error) {
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
func describeIDs(ids tsapi.DeviceIDs) string {
	if s := ids.Describe(); s != "" {
		return s
	}
	return "the device"
}

// planCache remembers each account's service plans for the provider process, so that plan-time
// validation of many instances costs one call per account.
type planCache struct {
	mu    sync.Mutex
	plans map[string][]tsapi.ServicePlan
}

// servicePlanCodes returns the account's plan codes (cached).
func (c *Config) servicePlanCodes(ctx context.Context, account string) ([]string, error) {
	c.plans.mu.Lock()
	defer c.plans.mu.Unlock()
	if c.plans.plans == nil {
		c.plans.plans = map[string][]tsapi.ServicePlan{}
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
// provider the resource addresses, but it plans each instance once per provider process (a
// plan, or the apply's own plan, each start the provider afresh), so a second non-null planned
// state naming the same EID in one process is a second resource. The one exception is the
// replacement of an instance, planned once with its prior state (which Terraform then replaces)
// and once as a create: callers skip the first (see skipClaim). Two resources with identical
// configurations are two claims too: a fingerprint of the configuration would let them pass.
type claims struct {
	mu sync.Mutex
	by map[string]string // eid → resource type of the first claim
}

// claim records that a resource of typ manages eid and returns an error when another planned
// instance of this process already does.
func (c *claims) claim(eid, typ string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.by == nil {
		c.by = map[string]string{}
	}
	if other, ok := c.by[eid]; ok {
		return fmt.Errorf("device EID %s is managed by two resources in this configuration: a %s and a %s. "+
			"A device's service plan must have one owner: remove it from one of them", eid, other, typ)
	}
	c.by[eid] = typ
	return nil
}

// replacedBy reports whether a plan with prior state is the first half of a replacement: an
// attribute that requires replacement changed. Terraform then plans the create again with no
// prior state, and only that second plan claims the devices. (The attribute plan modifiers'
// RequiresReplace is not visible to a resource's ModifyPlan, hence the comparison here.)
func replacedBy(changed ...bool) bool {
	return slices.Contains(changed, true)
}

// changedIfKnown reports whether a planned value that requires replacement when configured
// differs from its prior value.
func changedIfKnown(plan, prior types.String) bool {
	return !plan.IsUnknown() && !plan.IsNull() && !plan.Equal(prior)
}

// confirmTimeout bounds a confirming read after the wait (the wait's own context may be over).
const confirmTimeout = 30 * time.Second

// run runs the decision engine for one device and logs what it ended with.
func (c *Config) run(ctx context.Context, w *world, d reconcile.Desired) reconcile.Result {
	return c.runAll(ctx, w, d.Account, []reconcile.Desired{d})[0]
}

// runAll runs the decision engine for many devices of one account.
func (c *Config) runAll(ctx context.Context, w *world, account string, devices []reconcile.Desired) []reconcile.Result {
	res := reconcile.Run(withLogger(ctx), w, c.runOptions(), account, devices)
	for i := range res {
		var stuck *reconcile.StuckIntentError
		if errors.As(res[i].Err, &stuck) {
			res[i].Err = fmt.Errorf("%w. %s", res[i].Err, c.clearIntentHelp(stuck.IntentID))
		}
	}
	return res
}

// clearIntentHelp says how to clear an intent that two attempts left without an outcome,
// once a person has checked the device: where the intent is kept decides how.
func (c *Config) clearIntentHelp(intentID string) string {
	if c.Relay != nil {
		return fmt.Sprintf("Check the device in ThingSpace, then mark the intent resolved at the relay (PATCH /v1/intents/%s "+
			"with {\"state\":\"resolved\",\"reason\":\"checked by hand\"}) and apply again.", intentID)
	}
	return "Check the device in ThingSpace; then, to let the provider decide afresh, remove the instance from the state and " +
		"import it again (terraform state rm <address>, then an import block with the EID), which forgets the attempts, and apply again."
}

// addRunError reports a device's run that did not reach the configuration, titled by what
// failed: a relay that did not answer is not an open request.
func addRunError(diags *diag.Diagnostics, title string, err error) {
	var ru *relayUnavailableError
	if errors.As(err, &ru) {
		diags.AddError(ru.title(), ru.detail())
		return
	}
	diags.AddError(title, err.Error())
}

// addWarnings passes the engine's warnings on (an action sent again after the horizon).
func addWarnings(diags *diag.Diagnostics, res ...reconcile.Result) {
	for _, r := range res {
		for _, w := range r.Warnings {
			diags.AddWarning("An action was sent again", w)
		}
	}
}
