package reconcile

import (
	"fmt"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// Goal is what the caller wants done with a device.
type Goal int

// The goals.
const (
	// GoalCreate brings a device under management: adopt it when it already is as configured,
	// activate it when it is pre-active or deactive, refuse when it is active on another plan
	// (unless AdoptExisting).
	GoalCreate Goal = iota
	// GoalUpdate converges a managed device to the configuration.
	GoalUpdate
	// GoalDestroy deactivates the device (and deletes its Global or local profile when asked).
	GoalDestroy
	// GoalSettle resolves whatever is in flight for the device and sends nothing: the destroy of
	// an instance whose create was never confirmed (its replacement adopts the device).
	GoalSettle
	// GoalPlan sets the service plan of an active device and nothing else (the plan assignment).
	GoalPlan
)

// Desired is one device as the configuration wants it.
type Desired struct {
	Goal    Goal
	Account string
	// EID identifies the device. ICCID and IMEI are the configured (or last known) values: the
	// lead ICCID and the module's IMEI sent with an activation; "" to use what the device shows.
	EID, ICCID, IMEI  string
	Type              ProfileType
	ServicePlan       string // the US plan of the line
	GlobalServicePlan string
	Download          bool // Global: download the profile (false stages the device)
	Enabled           bool
	Suspended         bool
	SmsrOid           string
	// Activation-time inputs, which the carrier does not show back.
	MdnZipCode string
	PlaceOfUse *tsapi.PlaceOfUse
	// AdoptExisting: on create, a device active on another plan is adopted and moved to the
	// configured plan instead of refused.
	AdoptExisting bool
	// Destroy settings.
	EtfWaiver     bool
	ReasonCode    string
	DeleteProfile bool
}

// StepKind is the kind of a decision.
type StepKind int

// The kinds of Step.
const (
	// StepDone: the device is as desired; nothing to send.
	StepDone StepKind = iota
	// StepAct: send Action with Body.
	StepAct
	// StepWait: something is in flight for the device (Requests, an Intent without evidence,
	// or a PENDING_* state): wait and observe again.
	StepWait
	// StepResolve: evidence settled an open Intent; record that, then decide again.
	StepResolve
	// StepRefuse: the device cannot be brought to the configuration by this provider now; Err
	// says why and what to do. Nothing is sent.
	StepRefuse
)

// Step is one decision for one device.
type Step struct {
	Kind StepKind
	// Action and Body (the account, the parameters and this device's entry) for StepAct.
	Action tsapi.Action
	Body   tsapi.ProfileRequest
	// ByStatus: only the request status can confirm the action (the device list does not show
	// a profile's download or enable).
	ByStatus bool
	// Requests to wait for (StepWait).
	Requests []OpenRequest
	// Intent waited on (StepWait), resolved (StepResolve), or superseded (StepAct after the
	// horizon: the action is sent once more, Body.Attempt > 1).
	Intent *Intent
	// ResolvedBy is the request id the evidence came from, when a callback resolved an intent.
	ResolvedBy string
	// Why explains the step in a sentence, for logs, warnings and errors.
	Why string
	// Err is StepRefuse's reason.
	Err error
}

// DefaultHorizon is how long an intent without evidence blocks its devices before the action
// may be sent once more: ThingSpace gives up on a callback after about four attempts five
// minutes apart, so no callback arrives after that.
const DefaultHorizon = 30 * time.Minute

// Decide returns the next step for a device, from the desired settings and what is observed.
// horizon is how long an open intent without evidence blocks the device.
func Decide(d Desired, o Observed, horizon time.Duration) Step {
	if o.Device == nil {
		switch d.Goal {
		case GoalDestroy, GoalSettle:
			return Step{Kind: StepDone, Why: "the device is not in the account"}
		case GoalUpdate:
			return refuse("EID %s is no longer a device of account %s. Nothing was sent; refresh the state (terraform apply -refresh-only) "+
				"to drop it, or check account_name.", d.EID, d.Account)
		}
		return refuse("EID %s is not a device of account %s. Check the EID and account_name. Nothing was sent.", d.EID, d.Account)
	}
	dev := *o.Device
	if len(o.Ledger.OpenRequests) > 0 {
		return Step{Kind: StepWait, Requests: o.Ledger.OpenRequests,
			Why: fmt.Sprintf("request %s for the device is still open", o.Ledger.OpenRequests[0].RequestID)}
	}
	var superseded *Intent
	for i := range o.Ledger.OpenIntents {
		in := &o.Ledger.OpenIntents[i]
		if ev, ok := evidenceAfter(o.Ledger.Events, in); ok {
			return Step{Kind: StepResolve, Intent: in, ResolvedBy: ev.RequestID,
				Why: fmt.Sprintf("a final callback of request %s arrived for the device after the %s intent %s", ev.RequestID, in.Action, in.ID)}
		}
		if why, ok := reached(d, dev, in); ok {
			return Step{Kind: StepResolve, Intent: in, Why: why}
		}
		age := o.Now.Sub(in.CreatedAt)
		if age < horizon {
			return Step{Kind: StepWait, Intent: in,
				Why: fmt.Sprintf("the outcome of %s (intent %s, %s ago) is unknown: no callback and no change of the device yet",
					in.Action, in.ID, age.Round(time.Second))}
		}
		if in.Attempt >= 2 {
			err := &StuckIntentError{EID: d.EID, Action: in.Action, Attempts: in.Attempt, IntentID: in.ID, Age: age}
			return Step{Kind: StepRefuse, Err: err, Why: err.Error()}
		}
		if superseded == nil {
			superseded = in
		}
	}
	if dev.State().Pending() {
		return Step{Kind: StepWait, Why: fmt.Sprintf("the device is %s: a request is in flight", dev.State())}
	}
	var s Step
	switch d.Goal {
	case GoalSettle:
		s = Step{Kind: StepDone, Why: "nothing is in flight for the device"}
	case GoalDestroy:
		s = decideDestroy(d, dev)
	case GoalPlan:
		s = decidePlan(d, dev)
	default:
		s = decideProfile(d, dev, o.Ledger.Events)
	}
	if superseded != nil {
		if s.Kind != StepAct {
			// Nothing to send any more, but the old attempt may still land: keep waiting for it
			// only while sending something could collide with it; here nothing will be sent.
			return Step{Kind: StepResolve, Intent: superseded,
				Why: fmt.Sprintf("no evidence of %s (intent %s) after the horizon, and the device needs nothing more", superseded.Action, superseded.ID)}
		}
		s.Intent = superseded
		s.Body.Attempt = 1
		if superseded.Action == s.Action && superseded.BodyHash == tsapi.BodyHash(s.Action, s.Body) {
			s.Body.Attempt = superseded.Attempt + 1
		}
	}
	return s
}

// evidenceAfter finds a final callback for the device, received after the intent, of a
// request nobody registered: the POST whose answer was lost (a registered request is someone's
// known request, not this intent's).
func evidenceAfter(events []Event, in *Intent) (Event, bool) {
	for _, ev := range events {
		if ev.Callback != nil && ev.Action == "" && ev.At.After(in.CreatedAt) {
			return ev, true
		}
	}
	return Event{}, false
}

// sentICCID reports whether the intent sent the ICCID (the Global profile's own, for an
// activate of the Global profile on a reactivated line).
func sentICCID(in *Intent, v string) bool {
	for _, id := range in.Sent {
		if tsapi.NormalizeKind(id.Kind) == tsapi.KindICCID && id.ID == v {
			return true
		}
	}
	return false
}

// reached reports whether the device shows the effect of an open intent's action, so that the
// intent is resolved whatever became of its POST. For serviceplan it must be the change being
// asked for now (the body hash tells): an intent for another plan is not settled by the plan.
func reached(d Desired, dev tsapi.Device, in *Intent) (string, bool) {
	line := LineState(dev)
	g, hasGlobal := GlobalLine(dev)
	gState := tsapi.NormalizeState(g.State)
	shows := func(what string) (string, bool) {
		return fmt.Sprintf("the device shows %s, the effect of %s (intent %s)", what, in.Action, in.ID), true
	}
	switch in.Action {
	case tsapi.ActionActivate:
		if pi, _ := ProfileICCID(dev, Global); pi != "" && sentICCID(in, pi) {
			if gState == tsapi.StateActive || gState == tsapi.StateSuspended {
				return shows("the Global profile " + string(gState))
			}
		} else if line == tsapi.StateActive || line == tsapi.StateSuspended {
			return shows("the line " + string(line))
		}
	case tsapi.ActionDeactivate:
		if line == tsapi.StateDeactive {
			return shows("the line deactive")
		}
	case tsapi.ActionDeviceSuspend:
		if line == tsapi.StateSuspended {
			return shows("the line suspended")
		}
	case tsapi.ActionDeviceResume:
		if line == tsapi.StateActive {
			return shows("the line active")
		}
	case tsapi.ActionProfileSuspend:
		if hasGlobal && gState == tsapi.StateSuspended {
			return shows("the Global profile suspended")
		}
	case tsapi.ActionProfileResume:
		if hasGlobal && gState == tsapi.StateActive {
			return shows("the Global profile active")
		}
	case tsapi.ActionDownloadEnable, tsapi.ActionDownload, tsapi.ActionDownloadDisable:
		if _, ok := ProfileLine(dev, d.Type); ok {
			return shows("the profile downloaded")
		}
	case tsapi.ActionDelete:
		if _, ok := ProfileLine(dev, d.Type); !ok && (d.Type == Global || d.Type == Local) {
			return shows("no " + string(d.Type) + " profile")
		}
	case tsapi.ActionServicePlan:
		// An intent known without its body (recorded from a tainted instance's state, which
		// keeps the action only) is the change this configuration asks for.
		anyBody := in.BodyHash == ""
		us := tsapi.BodyHash(tsapi.ActionServicePlan, tsapi.ProfileRequest{AccountName: d.Account, ServicePlan: d.ServicePlan})
		if (anyBody || in.BodyHash == us) && dev.ServicePlan() == d.ServicePlan {
			return shows("plan " + d.ServicePlan)
		}
		gl := tsapi.BodyHash(tsapi.ActionServicePlan, tsapi.ProfileRequest{AccountName: d.Account, ServicePlan: d.GlobalServicePlan})
		if d.GlobalServicePlan != "" && (anyBody || in.BodyHash == gl) && hasGlobal && g.ServicePlan == d.GlobalServicePlan {
			return shows("Global plan " + d.GlobalServicePlan)
		}
	}
	return "", false
}

// StuckIntentError: an action was sent twice, and neither attempt showed an outcome within the
// horizon. It is not sent a third time; a person checks the device and clears the intent
// (where depends on where the intents are kept, which the caller adds).
type StuckIntentError struct {
	EID      string
	Action   tsapi.Action
	Attempts int
	IntentID string
	Age      time.Duration
}

func (e *StuckIntentError) Error() string {
	return fmt.Sprintf("EID %s: %s was sent %d times (last intent %s, %s ago) and ThingSpace showed no outcome of any attempt: "+
		"it is not sent again", e.EID, e.Action, e.Attempts, e.IntentID, e.Age.Round(time.Second))
}

func refuse(format string, args ...any) Step {
	err := fmt.Errorf(format, args...)
	return Step{Kind: StepRefuse, Err: err, Why: err.Error()}
}

func done(why string) Step { return Step{Kind: StepDone, Why: why} }

// act builds a StepAct for one device.
func act(d Desired, action tsapi.Action, body tsapi.ProfileRequest, byStatus bool, why string) Step {
	body.AccountName = d.Account
	return Step{Kind: StepAct, Action: action, Body: body, ByStatus: byStatus, Why: why}
}

// entry builds the device's entry for an action: the identifiers sent, plus every other known
// identifier in Also, for the journal.
func entry(dev tsapi.Device, sent ...tsapi.DeviceID) []tsapi.DeviceEntry {
	var ids tsapi.DeviceIDs
	for _, id := range sent {
		if id.ID != "" {
			ids = append(ids, id)
		}
	}
	return []tsapi.DeviceEntry{{DeviceIDs: ids, Also: deviceIdentifiers(dev)}}
}

func eidOf(dev tsapi.Device) tsapi.DeviceID {
	return tsapi.DeviceID{Kind: tsapi.KindEID, ID: dev.DeviceIDs.Get(tsapi.KindEID)}
}

func iccid(v string) tsapi.DeviceID {
	return tsapi.DeviceID{Kind: tsapi.KindICCID, ID: v}
}

// decideDestroy: deactivate an active or suspended line, confirmed by a read; then, with
// DeleteProfile, delete the Global or local profile that the device still shows. A device
// never activated, already deactive, or whose profile is not on it needs nothing.
func decideDestroy(d Desired, dev tsapi.Device) Step {
	switch LineState(dev) {
	case tsapi.StateActive, tsapi.StateSuspended:
		return act(d, tsapi.ActionDeactivate, tsapi.DeactivateRequest{
			Devices: entry(dev, eidOf(dev), iccid(LeadICCID(dev))), EtfWaiver: d.EtfWaiver, ReasonCode: d.ReasonCode}.Body(),
			false, "deactivating the line")
	case tsapi.StateDeactive:
	default:
		return done("the line was never activated: nothing to deactivate")
	}
	if !d.DeleteProfile || (d.Type != Global && d.Type != Local) {
		return done("the line is deactive")
	}
	if _, ok := ProfileLine(dev, d.Type); !ok {
		return done("the line is deactive and no " + string(d.Type) + " profile is on the device: nothing to delete")
	}
	pi, err := ProfileICCID(dev, d.Type)
	if err != nil {
		return refuse("EID %s was deactivated, but its profile was not deleted: %v", d.EID, err)
	}
	body := tsapi.ProfileChangeRequest{Devices: entry(dev, eidOf(dev), iccid(pi))}
	if d.Type == Local {
		body.SmsrOid = d.SmsrOid
	} else {
		body.ServicePlan = d.GlobalServicePlan
	}
	return act(d, tsapi.ActionDelete, body.Body(), true, "deleting the "+string(d.Type)+" profile")
}

// decidePlan: the plan assignment sets the plan of an active line and nothing else.
func decidePlan(d Desired, dev tsapi.Device) Step {
	switch s := LineState(dev); s {
	case tsapi.StateActive:
	case tsapi.StateSuspended:
		if dev.ServicePlan() == d.ServicePlan {
			return done("already on the plan")
		}
		return refuse("EID %s is suspended: ThingSpace changes the plan of an active line only. Resume it first. Nothing was sent.", d.EID)
	default:
		return refuse("EID %s is %s: only active devices have a plan to change (activate it with a thingspace_esim_profile). "+
			"Nothing was sent.", d.EID, s)
	}
	if dev.ServicePlan() == d.ServicePlan {
		return done("already on the plan")
	}
	return act(d, tsapi.ActionServicePlan, tsapi.ServicePlanRequest{
		Devices: entry(dev, eidOf(dev), iccid(LeadICCID(dev))), ServicePlan: d.ServicePlan}.Body(), false,
		"changing the plan to "+d.ServicePlan)
}

// decideProfile is the lifecycle of one profile, create and update alike: activate a line that
// is not active; refuse to take over a line on another plan at create; resume before anything
// else when the configuration wants service; then the plan, the Global or local profile, and
// the suspension last.
func decideProfile(d Desired, dev tsapi.Device, events []Event) Step {
	line := LineState(dev)
	switch line {
	case tsapi.StatePreActive, tsapi.StateDeactive:
		if d.Goal == GoalUpdate {
			return refuse("EID %s is %s: it was deactivated outside Terraform. Nothing was sent; refresh the state "+
				"(terraform apply -refresh-only) and apply again to reactivate it.", d.EID, line)
		}
		lead := d.ICCID
		if lead == "" {
			lead = LeadICCID(dev)
		}
		imei := d.IMEI
		if imei == "" {
			imei = dev.DeviceIDs.Get(tsapi.KindIMEI)
		}
		why := "activating the line"
		if line == tsapi.StateDeactive {
			why = "reactivating the deactive line"
		}
		return act(d, tsapi.ActionActivate, tsapi.ActivateRequest{
			Devices:     entry(dev, eidOf(dev), iccid(lead), tsapi.DeviceID{Kind: tsapi.KindIMEI, ID: imei}),
			ServicePlan: d.ServicePlan, MdnZipCode: d.MdnZipCode, PrimaryPlaceOfUse: d.PlaceOfUse,
		}.Body(), false, why)
	case tsapi.StateActive, tsapi.StateSuspended:
	default:
		return refuse("EID %s is in state %q; the provider acts only on pre-active, active, suspended or deactive devices. Nothing was sent.",
			d.EID, line)
	}

	// At create, a line someone else runs on another plan is not taken over silently: active
	// and suspended alike.
	adopting := d.Goal == GoalCreate
	if adopting && !d.AdoptExisting && dev.ServicePlan() != d.ServicePlan {
		return Step{Kind: StepRefuse, Err: &AdoptionError{EID: d.EID, Account: d.Account, State: line, Plan: dev.ServicePlan(), Want: d.ServicePlan}}
	}
	g, hasGlobal := GlobalLine(dev)
	if adopting && !d.AdoptExisting && d.Type == Global && d.Download && hasGlobal &&
		tsapi.NormalizeState(g.State) != tsapi.StateDeactive && g.ServicePlan != d.GlobalServicePlan {
		return Step{Kind: StepRefuse, Err: &AdoptionError{EID: d.EID, Account: d.Account, State: line, Plan: g.ServicePlan,
			Want: d.GlobalServicePlan, Global: true}}
	}

	suspended := StateFor(dev, d.Type) == tsapi.StateSuspended
	if !d.Suspended && suspended {
		return resume(d, dev)
	}
	if dev.ServicePlan() != d.ServicePlan {
		if line == tsapi.StateSuspended {
			return refuse("EID %s is suspended on plan %q: ThingSpace changes the plan of an active line only. Set suspended = false "+
				"(or resume it), apply, then suspend it again. Nothing was sent.", d.EID, dev.ServicePlan())
		}
		return act(d, tsapi.ActionServicePlan, tsapi.ServicePlanRequest{
			Devices: entry(dev, eidOf(dev), iccid(LeadICCID(dev))), ServicePlan: d.ServicePlan}.Body(), false,
			"changing the plan to "+d.ServicePlan)
	}
	var s Step
	switch d.Type {
	case Global:
		s = decideGlobal(d, dev, events)
	case Local:
		s = decideLocal(d, dev, events)
	}
	if s.Kind != StepDone {
		return s
	}
	if d.Suspended && !suspended {
		return suspend(d, dev)
	}
	return done("the device is as configured")
}

// decideGlobal: the Global profile downloaded (and enabled) with the Global plan. A profile
// still on a reactivated line is activated again instead of downloaded (ThingSpace refuses a
// second download); whether it is enabled comes from the ledger only.
func decideGlobal(d Desired, dev tsapi.Device, events []Event) Step {
	g, ok := GlobalLine(dev)
	if !d.Download {
		return done("staged: the Global profile is not downloaded by this configuration")
	}
	if LineState(dev) != tsapi.StateActive {
		if !ok {
			return refuse("EID %s is suspended: the Global profile can be downloaded to an active line only. Nothing was sent.", d.EID)
		}
		return done("the line is suspended")
	}
	if !ok {
		action, why := tsapi.ActionDownloadEnable, "downloading and enabling the Global profile"
		if !d.Enabled {
			action, why = tsapi.ActionDownload, "downloading the Global profile (not enabled)"
		}
		return act(d, action, tsapi.DownloadEnableRequest{
			Devices: entry(dev, eidOf(dev), iccid(LeadICCID(dev))), ServicePlan: d.GlobalServicePlan}.Body(), true, why)
	}
	pi, err := ProfileICCID(dev, Global)
	if err != nil {
		return refuse("EID %s: %v", d.EID, err)
	}
	switch gs := tsapi.NormalizeState(g.State); {
	case gs == tsapi.StateSuspended:
		return done("the Global profile is suspended")
	case gs == tsapi.StateDeactive:
		return act(d, tsapi.ActionActivate, tsapi.ActivateRequest{
			Devices:     entry(dev, eidOf(dev), iccid(pi), tsapi.DeviceID{Kind: tsapi.KindIMEI, ID: dev.DeviceIDs.Get(tsapi.KindIMEI)}),
			ServicePlan: d.GlobalServicePlan, MdnZipCode: d.MdnZipCode, PrimaryPlaceOfUse: d.PlaceOfUse,
		}.Body(), false, "activating the Global profile still on the reactivated line")
	case gs == tsapi.StateActive && g.ServicePlan != d.GlobalServicePlan:
		return act(d, tsapi.ActionServicePlan, tsapi.ServicePlanRequest{
			Devices: entry(dev, eidOf(dev), iccid(pi)), ServicePlan: d.GlobalServicePlan}.Body(), false,
			"changing the Global plan to "+d.GlobalServicePlan)
	}
	if d.Enabled && ProfileEnablement(events, pi) == NotEnabled {
		return act(d, tsapi.ActionEnable, tsapi.EnableRequest{
			Devices: entry(dev, eidOf(dev), iccid(pi)), ServicePlan: d.GlobalServicePlan}.Body(), true,
			"enabling the Global profile (the last callback shows it not enabled)")
	}
	return done("the Global profile is as configured")
}

// decideLocal: the local profile downloaded through the SM-SR, enabled or not.
func decideLocal(d Desired, dev tsapi.Device, events []Event) Step {
	if _, ok := LocalLine(dev); !ok {
		if LineState(dev) != tsapi.StateActive {
			return refuse("EID %s is suspended: the local profile can be downloaded to an active line only. Nothing was sent.", d.EID)
		}
		action, why := tsapi.ActionDownloadEnable, "downloading and enabling the local profile"
		if !d.Enabled {
			action, why = tsapi.ActionDownloadDisable, "downloading the local profile (disabled)"
		}
		return act(d, action, tsapi.DownloadEnableRequest{
			Devices: entry(dev, eidOf(dev), iccid(LeadICCID(dev))), SmsrOid: d.SmsrOid}.Body(), true, why)
	}
	pi, err := ProfileICCID(dev, Local)
	if err != nil {
		return refuse("EID %s: %v", d.EID, err)
	}
	switch e := ProfileEnablement(events, pi); {
	case d.Enabled && e == NotEnabled:
		return act(d, tsapi.ActionEnable, tsapi.EnableRequest{
			Devices: entry(dev, eidOf(dev), iccid(pi)), SmsrOid: d.SmsrOid}.Body(), true, "enabling the local profile")
	case !d.Enabled && e == Enabled:
		return act(d, tsapi.ActionDisable, tsapi.ProfileChangeRequest{
			Devices: entry(dev, eidOf(dev), iccid(pi)), SmsrOid: d.SmsrOid}.Body(), true, "disabling the local profile")
	}
	return done("the local profile is as configured")
}

// suspend: profile_suspend for a Global profile on the device (it names the profile's own
// ICCID and plan), device_suspend by EID otherwise.
func suspend(d Desired, dev tsapi.Device) Step {
	if g, ok := GlobalLine(dev); ok && d.Type == Global && tsapi.NormalizeState(g.State) == tsapi.StateActive {
		pi, err := ProfileICCID(dev, Global)
		if err != nil {
			return refuse("EID %s: no profile_suspend was sent: %v", d.EID, err)
		}
		return act(d, tsapi.ActionProfileSuspend, tsapi.ProfileSuspendRequest{
			Devices: entry(dev, iccid(pi)), ServicePlan: g.ServicePlan}.Body(), false, "suspending the Global profile")
	}
	return act(d, tsapi.ActionDeviceSuspend, tsapi.DeviceSuspendRequest{Devices: entry(dev, eidOf(dev))}.Body(), false,
		"suspending the device")
}

// resume: profile_resume for a Global profile suspended by itself, device_resume where the
// line is suspended (device_suspend suspends every profile; after profile_resume the next
// decision resumes the line if it still is).
func resume(d Desired, dev tsapi.Device) Step {
	if g, ok := GlobalLine(dev); ok && tsapi.NormalizeState(g.State) == tsapi.StateSuspended {
		pi, err := ProfileICCID(dev, Global)
		if err != nil {
			return refuse("EID %s: no profile_resume was sent: %v", d.EID, err)
		}
		return act(d, tsapi.ActionProfileResume, tsapi.ProfileResumeRequest{
			Devices: entry(dev, iccid(pi)), ServicePlan: g.ServicePlan}.Body(), false, "resuming the Global profile")
	}
	return act(d, tsapi.ActionDeviceResume, tsapi.DeviceResumeRequest{Devices: entry(dev, eidOf(dev))}.Body(), false,
		"resuming the device")
}

// AdoptionError refuses to take over, at create, a device already active (or suspended) on
// another plan: nothing is sent, and the message gives the import block to paste.
type AdoptionError struct {
	EID, Account string
	State        tsapi.DeviceState
	Plan, Want   string
	Global       bool // the Global profile's plan differs, not the line's
}

func (e *AdoptionError) Error() string {
	what, attr := "", "service_plan"
	if e.Global {
		what, attr = "Global profile ", "global_service_plan"
	}
	return fmt.Sprintf("EID %s is already %s in account %s with its %splan %q, not %q. Nothing was sent. To manage it as it is, "+
		"import it:\n\nimport {\n  to = thingspace_esim_profile.<name>\n  id = %q\n}\n\nor set adopt_existing = true to adopt it and "+
		"change its %s to %q.", e.EID, e.State, e.Account, what, e.Plan, e.Want, e.EID, attr, e.Want)
}
