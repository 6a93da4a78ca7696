package reconcile

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/thingspace"
	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

const (
	testEID    = "89049032000001000000000000000017"
	leadICCID  = "89148000000000000017"
	globICCID  = "89148000000000000917"
	testIMEI   = "490154200000017"
	testAcct   = "0000123456-00001"
	planA      = "M2M4GB"
	planB      = "M2M10GB"
	globalPlan = "GLOBAL1GB"
)

// dev builds a v1 device: the line's state and plan, and optionally a Global line.
func dev(state, plan string, global ...string) *tsapi.Device {
	d := &tsapi.Device{
		DeviceIDs:           tsapi.DeviceIDs{{Kind: "eid", ID: testEID}, {Kind: "iccid", ID: leadICCID}},
		CarrierInformations: []tsapi.CarrierInformation{{CarrierName: "Verizon Wireless", ServicePlan: plan, State: state}},
	}
	if len(global) == 2 {
		d.DeviceIDs = append(d.DeviceIDs, tsapi.DeviceID{Kind: "iccid", ID: globICCID})
		d.CarrierInformations = append(d.CarrierInformations, tsapi.CarrierInformation{CarrierName: "Verizon Global",
			State: global[0], ServicePlan: global[1]})
	}
	d.DeviceIDs = append(d.DeviceIDs, tsapi.DeviceID{Kind: "imei", ID: testIMEI})
	return d
}

func want(goal Goal, mod ...func(*Desired)) Desired {
	d := Desired{Goal: goal, Account: testAcct, EID: testEID, Type: VerizonUS, ServicePlan: planA, Download: true,
		Enabled: true, ReasonCode: "FF"}
	for _, m := range mod {
		m(&d)
	}
	return d
}

func global(d *Desired)    { d.Type, d.GlobalServicePlan = Global, globalPlan }
func suspended(d *Desired) { d.Suspended = true }

// profileEvent is a final callback about a profile with its status.
func profileEvent(at time.Time, action tsapi.Action, iccid, status string) Event {
	cb := &tsapi.Callback{Status: "SUCCESS", DeviceResponse: &tsapi.DeviceResponse{
		DeviceProfileResponse: &tsapi.DeviceProfileResponse{ProfileStatus: status,
			DeviceIdentifierCollection: tsapi.DeviceIDs{{Kind: "iccid", ID: iccid}, {Kind: "eid", ID: testEID}}}}}
	st, _ := cb.Outcome(action)
	return Event{Action: action, RequestID: "r-" + string(action), At: at, Status: st, Callback: cb}
}

// The table of design/decision-engine.md: what a device's state at create leads to, and the later changes.
func TestDecide(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		d      Desired
		o      Observed
		kind   StepKind
		action tsapi.Action
		errHas string
	}{
		{"pre-active: activate", want(GoalCreate), Observed{Device: dev("pre-active", "")}, StepAct, tsapi.ActionActivate, ""},
		{"deactive: reactivate", want(GoalCreate), Observed{Device: dev("deactive", planA)}, StepAct, tsapi.ActionActivate, ""},
		{"active on the plan: adopt", want(GoalCreate), Observed{Device: dev("active", planA)}, StepDone, "", ""},
		{"active on another plan: refuse", want(GoalCreate), Observed{Device: dev("active", planB)}, StepRefuse, "", "import {"},
		{"active on another plan, adopt_existing: serviceplan", want(GoalCreate, func(d *Desired) { d.AdoptExisting = true }),
			Observed{Device: dev("active", planB)}, StepAct, tsapi.ActionServicePlan, ""},
		// Failure 1: a suspended device on another plan is refused like an active one.
		{"suspended on another plan: refuse", want(GoalCreate), Observed{Device: dev("suspend", planB)}, StepRefuse, "", "import {"},
		{"suspended on the plan, suspended = false: resume", want(GoalCreate), Observed{Device: dev("suspend", planA)}, StepAct,
			tsapi.ActionDeviceResume, ""},
		{"suspended on the plan, suspended = true: adopt", want(GoalCreate, suspended), Observed{Device: dev("suspend", planA)}, StepDone, "", ""},
		{"pending: wait", want(GoalCreate), Observed{Device: dev("PENDING_ACTIVATION", "")}, StepWait, "", ""},
		{"open request: wait", want(GoalCreate), Observed{Device: dev("pre-active", ""),
			Ledger: Ledger{OpenRequests: []OpenRequest{{RequestID: "r-1", Action: tsapi.ActionActivate}}}}, StepWait, "", ""},
		{"not in the account: refuse", want(GoalCreate), Observed{}, StepRefuse, "", "is not a device of account"},
		{"update: plan change", want(GoalUpdate, func(d *Desired) { d.ServicePlan = planB }), Observed{Device: dev("active", planA)},
			StepAct, tsapi.ActionServicePlan, ""},
		{"update: deactivated outside", want(GoalUpdate), Observed{Device: dev("deactive", planA)}, StepRefuse, "", "deactivated outside"},
		{"update: suspend", want(GoalUpdate, suspended), Observed{Device: dev("active", planA)}, StepAct, tsapi.ActionDeviceSuspend, ""},
		{"update: suspended line cannot change plan", want(GoalUpdate, suspended, func(d *Desired) { d.ServicePlan = planB }),
			Observed{Device: dev("suspend", planA)}, StepRefuse, "", "active line only"},
		{"global: download after activation", want(GoalCreate, global), Observed{Device: dev("active", planA)}, StepAct,
			tsapi.ActionDownloadEnable, ""},
		{"global staged: nothing to download", want(GoalCreate, global, func(d *Desired) { d.Download = false }),
			Observed{Device: dev("active", planA)}, StepDone, "", ""},
		{"global not enabled (enable failed): enable", want(GoalCreate, global), Observed{Device: dev("active", planA, "active", globalPlan),
			Ledger: Ledger{Events: []Event{profileEvent(t0, tsapi.ActionDownloadEnable, globICCID, "DOWNLOAD_SUCCESS_ENABLE_FAILED")}}},
			StepAct, tsapi.ActionEnable, ""},
		{"global enabled: done", want(GoalCreate, global), Observed{Device: dev("active", planA, "active", globalPlan),
			Ledger: Ledger{Events: []Event{profileEvent(t0, tsapi.ActionDownloadEnable, globICCID, "ENABLE")}}}, StepDone, "", ""},
		{"global downloaded, no evidence: nothing sent", want(GoalCreate, global), Observed{Device: dev("active", planA, "active", globalPlan)},
			StepDone, "", ""},
		{"global on a reactivated line: activate the Global profile", want(GoalCreate, global),
			Observed{Device: dev("active", planA, "deactive", globalPlan)}, StepAct, tsapi.ActionActivate, ""},
		{"global suspended: profile_resume", want(GoalUpdate, global), Observed{Device: dev("suspend", planA, "suspend", globalPlan)},
			StepAct, tsapi.ActionProfileResume, ""},
		{"global suspend: profile_suspend", want(GoalUpdate, global, suspended), Observed{Device: dev("active", planA, "active", globalPlan)},
			StepAct, tsapi.ActionProfileSuspend, ""},
		{"destroy: deactivate", want(GoalDestroy), Observed{Device: dev("active", planA)}, StepAct, tsapi.ActionDeactivate, ""},
		{"destroy: already deactive", want(GoalDestroy), Observed{Device: dev("deactive", planA)}, StepDone, "", ""},
		{"destroy: not found", want(GoalDestroy), Observed{}, StepDone, "", ""},
		{"destroy global with delete_profile: delete after deactivate", want(GoalDestroy, global, func(d *Desired) { d.DeleteProfile = true }),
			Observed{Device: dev("deactive", planA, "deactive", globalPlan)}, StepAct, tsapi.ActionDelete, ""},
		// Failure 9: a staged Global profile (never downloaded) has nothing to delete.
		{"destroy staged global with delete_profile: nothing to delete", want(GoalDestroy, global, func(d *Desired) { d.DeleteProfile = true; d.Download = false }),
			Observed{Device: dev("deactive", planA)}, StepDone, "", ""},
		{"settle: nothing in flight", want(GoalSettle), Observed{Device: dev("active", planA)}, StepDone, "", ""},
		{"plan assignment: not active", want(GoalPlan), Observed{Device: dev("pre-active", "")}, StepRefuse, "", "only active devices"},
		{"plan assignment: on the plan", want(GoalPlan), Observed{Device: dev("active", planA)}, StepDone, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Now = t0
			s := Decide(tc.d, tc.o, time.Hour)
			if s.Kind != tc.kind || s.Action != tc.action {
				t.Fatalf("Decide = %v %q (%s; err %v), want %v %q", s.Kind, s.Action, s.Why, s.Err, tc.kind, tc.action)
			}
			if tc.errHas != "" && (s.Err == nil || !strings.Contains(s.Err.Error(), tc.errHas)) {
				t.Fatalf("err = %v, want it to mention %q", s.Err, tc.errHas)
			}
			if s.Kind == StepAct {
				if err := thingspace.ValidateActionBody(s.Action, s.Body); err != nil {
					t.Fatalf("the body would be refused before sending: %v", err)
				}
			}
		})
	}
}

// An open intent blocks the device until evidence settles it, whatever the configuration
// asks; after the horizon the action may go once more; never a third time.
func TestDecideOpenIntent(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	planHash := tsapi.BodyHash(tsapi.ActionServicePlan, tsapi.ProfileRequest{AccountName: testAcct, ServicePlan: planB})
	in := Intent{ID: "i-1", Action: tsapi.ActionServicePlan, BodyHash: planHash, Attempt: 1, CreatedAt: t0}
	d := want(GoalUpdate, func(d *Desired) { d.ServicePlan = planB })
	lost := Event{Action: "", RequestID: "r-lost", At: t0.Add(time.Minute), Status: tsapi.StatusSucceeded,
		Callback: &tsapi.Callback{Status: "SUCCESS", DeviceIDs: tsapi.DeviceIDs{{Kind: "eid", ID: testEID}}}}
	registered := lost
	registered.Action = tsapi.ActionServicePlan

	for _, tc := range []struct {
		name    string
		o       Observed
		kind    StepKind
		attempt int
		by      string
	}{
		{"no evidence: wait", Observed{Device: dev("active", planA), Now: t0.Add(5 * time.Minute)}, StepWait, 0, ""},
		{"the device shows the plan: resolved", Observed{Device: dev("active", planB), Now: t0.Add(time.Minute)}, StepResolve, 0, ""},
		{"a callback of an unregistered request after the intent: resolved by it",
			Observed{Device: dev("active", planA), Now: t0.Add(2 * time.Minute), Ledger: Ledger{Events: []Event{lost}}}, StepResolve, 0, "r-lost"},
		{"a callback of someone's registered request is not evidence",
			Observed{Device: dev("active", planA), Now: t0.Add(2 * time.Minute), Ledger: Ledger{Events: []Event{registered}}}, StepWait, 0, ""},
		{"past the horizon: sent again as attempt 2", Observed{Device: dev("active", planA), Now: t0.Add(2 * time.Hour)}, StepAct, 2, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Ledger.OpenIntents = []Intent{in}
			s := Decide(d, tc.o, time.Hour)
			if s.Kind != tc.kind || s.Body.Attempt != tc.attempt || s.ResolvedBy != tc.by {
				t.Fatalf("Decide = %v attempt %d by %q (%s), want %v attempt %d by %q", s.Kind, s.Body.Attempt, s.ResolvedBy, s.Why,
					tc.kind, tc.attempt, tc.by)
			}
		})
	}
	t.Run("second attempt past the horizon: refused", func(t *testing.T) {
		again := in
		again.Attempt = 2
		s := Decide(d, Observed{Device: dev("active", planA), Now: t0.Add(2 * time.Hour), Ledger: Ledger{OpenIntents: []Intent{again}}}, time.Hour)
		var stuck *StuckIntentError
		if s.Kind != StepRefuse || !errors.As(s.Err, &stuck) || stuck.IntentID != "i-1" || stuck.Attempts != 2 {
			t.Fatalf("Decide = %v (%v), want a refusal naming intent i-1 and its two attempts", s.Kind, s.Err)
		}
	})
	t.Run("an intent for another action also blocks", func(t *testing.T) {
		deact := Intent{ID: "i-2", Action: tsapi.ActionDeactivate, Attempt: 1, CreatedAt: t0}
		s := Decide(want(GoalCreate), Observed{Device: dev("active", planB), Now: t0.Add(time.Minute),
			Ledger: Ledger{OpenIntents: []Intent{deact}}}, time.Hour)
		if s.Kind != StepWait {
			t.Fatalf("Decide = %v (%s), want a wait: a deactivate may still land", s.Kind, s.Why)
		}
	})
}

// Whether a profile is enabled comes from the newest callback that tells.
func TestProfileEnablement(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	ev := func(min int, action tsapi.Action, iccid, status string) Event {
		return profileEvent(t0.Add(time.Duration(min)*time.Minute), action, iccid, status)
	}
	alreadyEnabled := Event{Action: tsapi.ActionEnable, At: t0.Add(9 * time.Minute), Status: tsapi.StatusFailed,
		Code: "DeviceProfileService.REQUEST_FAILED.Profile.AlreadyEnabled", Sent: tsapi.DeviceIDs{{Kind: "iccid", ID: globICCID}}}
	for _, tc := range []struct {
		name   string
		events []Event
		want   Enablement
	}{
		{"no events", nil, EnablementUnknown},
		{"download_enable ok", []Event{ev(1, tsapi.ActionDownloadEnable, globICCID, "ENABLE")}, Enabled},
		{"enable failed after the download", []Event{ev(1, tsapi.ActionDownloadEnable, globICCID, "DOWNLOAD_SUCCESS_ENABLE_FAILED")}, NotEnabled},
		{"enabled, then the lead reactivated", []Event{ev(1, tsapi.ActionDownloadEnable, globICCID, "ENABLE"),
			ev(5, tsapi.ActionActivate, leadICCID, "ENABLE")}, NotEnabled},
		{"enable failed, then enabled", []Event{ev(5, tsapi.ActionEnable, globICCID, "ENABLE"),
			ev(1, tsapi.ActionDownloadEnable, globICCID, "DOWNLOAD_SUCCESS_ENABLE_FAILED")}, Enabled},
		{"AlreadyEnabled answer", []Event{ev(1, tsapi.ActionDownload, globICCID, "DOWNLOAD_DISABLE"), alreadyEnabled}, Enabled},
		{"request status: download_enable ok", []Event{{Action: tsapi.ActionDownloadEnable, At: t0, Status: tsapi.StatusSucceeded,
			Sent: tsapi.DeviceIDs{{Kind: "iccid", ID: leadICCID}}}}, Enabled},
		// Without a relay the failed download_enable is known from the request status only.
		{"request status: download_enable failed", []Event{{Action: tsapi.ActionDownloadEnable, At: t0, Status: tsapi.StatusFailed,
			Sent: tsapi.DeviceIDs{{Kind: "iccid", ID: leadICCID}}}}, NotEnabled},
		{"download_enable of unknown outcome after the activate", []Event{{Action: tsapi.ActionActivate, At: t0, Status: tsapi.StatusSucceeded,
			Sent: tsapi.DeviceIDs{{Kind: "iccid", ID: leadICCID}}}, {Action: tsapi.ActionDownloadEnable, At: t0.Add(time.Minute),
			Sent: tsapi.DeviceIDs{{Kind: "iccid", ID: leadICCID}}}}, EnablementUnknown},
		// The download_enable callback is missing (the relay keeps one per action); the lead
		// shown disabled after its activation no longer says ours is not enabled.
		{"lead enabled, then shown disabled", []Event{ev(1, tsapi.ActionActivate, leadICCID, "ENABLE"),
			ev(5, tsapi.ActionServicePlan, leadICCID, "DISABLE")}, EnablementUnknown},
		{"request status: an enable of a profile not named hides older facts", []Event{
			ev(1, tsapi.ActionActivate, leadICCID, "ENABLE"),
			{Action: tsapi.ActionEnable, At: t0.Add(5 * time.Minute), Status: tsapi.StatusSucceeded,
				Sent: tsapi.DeviceIDs{{Kind: "eid", ID: "89049032995470350104029245072940"}}}}, EnablementUnknown},
		{"request status: enable failed tells nothing", []Event{{Action: tsapi.ActionEnable, At: t0, Status: tsapi.StatusFailed,
			Sent: tsapi.DeviceIDs{{Kind: "iccid", ID: globICCID}}}}, EnablementUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ProfileEnablement(tc.events, globICCID); got != tc.want {
				t.Fatalf("ProfileEnablement = %v, want %v", got, tc.want)
			}
		})
	}
}

// Decide never needs prior Terraform state: errors.As works on its refusals.
func TestAdoptionErrorNamesTheImport(t *testing.T) {
	s := Decide(want(GoalCreate), Observed{Device: dev("suspend", planB)}, time.Hour)
	var ae *AdoptionError
	if !errors.As(s.Err, &ae) || ae.State != tsapi.StateSuspended || !strings.Contains(s.Err.Error(), `id = "`+testEID+`"`) {
		t.Fatalf("err = %v", s.Err)
	}
}
