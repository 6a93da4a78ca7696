package sim

import (
	"strings"
	"testing"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

const testOid = "1.3.6.1.4.1.31746.1.500.200.101.5"

type step struct {
	action string
	body   func(d DeviceView) tsapi.ProfileRequest
}

func entry(e tsapi.DeviceEntry) []tsapi.DeviceEntry { return []tsapi.DeviceEntry{e} }

func stActivate(plan string) step {
	return step{"activate", func(d DeviceView) tsapi.ProfileRequest {
		return tsapi.ProfileRequest{Devices: entry(ids("eid", d.EID, "iccid", d.Profiles[profLead].ICCID, "imei", d.IMEI)), ServicePlan: plan}
	}}
}

// stProfile sends action for profile k of the device (eid + that profile's iccid).
func stProfile(action string, k int, plan, oid string) step {
	return step{action, func(d DeviceView) tsapi.ProfileRequest {
		return tsapi.ProfileRequest{Devices: entry(ids("eid", d.EID, "iccid", d.Profiles[k].ICCID)), ServicePlan: plan, SmsrOid: oid}
	}}
}

// stICCID sends action by ICCID only (profile_suspend / profile_resume, ThingSpace's profile_resume page).
func stICCID(action string, k int, plan string) step {
	return step{action, func(d DeviceView) tsapi.ProfileRequest {
		return tsapi.ProfileRequest{Devices: entry(ids("iccid", d.Profiles[k].ICCID)), ServicePlan: plan}
	}}
}

func stEID(action string) step {
	return step{action, func(d DeviceView) tsapi.ProfileRequest {
		return tsapi.ProfileRequest{Devices: entry(ids("eid", d.EID))}
	}}
}

// TestStateMachine drives one device through setup steps (each must succeed), then one action,
// and checks the callback's outcome and the device afterwards.
func TestStateMachine(t *testing.T) {
	deactivate := step{"deactivate", func(d DeviceView) tsapi.ProfileRequest {
		f := false
		return tsapi.ProfileRequest{Devices: entry(ids("eid", d.EID, "iccid", d.Profiles[profLead].ICCID)), EtfWaiver: &f, ReasonCode: "FF"}
	}}
	gDeactivate := stProfile("deactivate", profGlobal, "", "")
	dlGlobal := stProfile("download_enable", profLead, "GLOBAL1GB", "") // the LEAD iccid + a Global plan means the Global profile
	cases := []struct {
		name       string
		setup      []step
		do         step
		wantFail   string // fault code substring; "" = success
		state      string // device state after ("" = unchecked)
		statuses   [3]string
		enabledIdx int // -1 = unchecked
	}{
		{"activate pre-active", nil, stActivate("M2M4GB"), "", "active", [3]string{"ENABLE", "NOT_DOWNLOADED", "NOT_DOWNLOADED"}, profLead},
		{"activate active", []step{stActivate("M2M4GB")}, stActivate("M2M4GB"), "DeviceAlreadyActive", "active", [3]string{}, profLead},
		{"reactivate deactive", []step{stActivate("M2M4GB"), deactivate}, stActivate("M2M10GB"), "", "active", [3]string{"ENABLE"}, profLead},
		{"activate suspended", []step{stActivate("M2M4GB"), stEID("device_suspend")}, stActivate("M2M4GB"), "DeviceState.Invalid", "suspended", [3]string{}, -1},
		{"activate global plan before US", nil, stActivate("GLOBAL1GB"), "DeviceState.Invalid", "pre-active", [3]string{}, -1},
		{"download_enable pre-active", nil, dlGlobal, "DeviceState.Invalid", "pre-active", [3]string{"NOT_DOWNLOADED", "NOT_DOWNLOADED"}, -1},
		{"download_enable global", []step{stActivate("M2M4GB")}, dlGlobal, "", "active", [3]string{"DISABLE", "ENABLE", "NOT_DOWNLOADED"}, profGlobal},
		{"download_enable by global iccid", []step{stActivate("M2M4GB")}, stProfile("download_enable", profGlobal, "GLOBAL5GB", ""), "", "active", [3]string{"DISABLE", "ENABLE"}, profGlobal},
		{"download_enable twice", []step{stActivate("M2M4GB"), dlGlobal}, dlGlobal, "AlreadyDownloaded", "active", [3]string{}, profGlobal},
		{"download_enable US plan", []step{stActivate("M2M4GB")}, stProfile("download_enable", profLead, "M2M10GB", ""), "ServicePlan.Invalid", "active", [3]string{}, profLead},
		{"download_enable local", []step{stActivate("M2M4GB")}, stProfile("download_enable", profLocal, "", testOid), "", "active", [3]string{"DISABLE", "NOT_DOWNLOADED", "ENABLE"}, profLocal},
		{"download_enable local without smsrOid", []step{stActivate("M2M4GB")}, stProfile("download_enable", profLocal, "GLOBAL1GB", ""), "", "active", [3]string{"DISABLE", "ENABLE"}, profGlobal},
		{"download global", []step{stActivate("M2M4GB")}, stProfile("download", profGlobal, "GLOBAL1GB", ""), "", "active", [3]string{"ENABLE", "DOWNLOAD_DISABLE"}, profLead},
		{"download_disable local", []step{stActivate("M2M4GB")}, stProfile("download_disable", profLocal, "", testOid), "", "active", [3]string{"ENABLE", "NOT_DOWNLOADED", "DOWNLOAD_DISABLE"}, profLead},
		{"enable downloaded global", []step{stActivate("M2M4GB"), stProfile("download", profGlobal, "GLOBAL1GB", "")}, stProfile("enable", profGlobal, "GLOBAL1GB", ""), "", "active", [3]string{"DISABLE", "ENABLE"}, profGlobal},
		{"enable local (smsrOid kept)", []step{stActivate("M2M4GB"), stProfile("download_disable", profLocal, "", testOid)}, stProfile("enable", profLocal, "", testOid), "", "active", [3]string{"DISABLE", "NOT_DOWNLOADED", "ENABLE"}, profLocal},
		{"enable not downloaded", []step{stActivate("M2M4GB")}, stProfile("enable", profGlobal, "", ""), "NotDownloaded", "active", [3]string{"ENABLE", "NOT_DOWNLOADED"}, profLead},
		{"enable already enabled", []step{stActivate("M2M4GB")}, stProfile("enable", profLead, "", ""), "AlreadyEnabled", "active", [3]string{"ENABLE"}, profLead},
		{"enable lead again", []step{stActivate("M2M4GB"), dlGlobal}, stProfile("enable", profLead, "", ""), "", "active", [3]string{"ENABLE", "DISABLE"}, profLead},
		{"disable global falls back to lead", []step{stActivate("M2M4GB"), dlGlobal}, stProfile("disable", profGlobal, "", ""), "", "active", [3]string{"ENABLE", "DISABLE"}, profLead},
		{"disable lead", []step{stActivate("M2M4GB")}, stProfile("disable", profLead, "", ""), "DeviceState.Invalid", "active", [3]string{"ENABLE"}, profLead},
		{"serviceplan pre-active", nil, stProfile("serviceplan", profLead, "M2M10GB", ""), "DeviceState.Invalid", "pre-active", [3]string{}, -1},
		{"serviceplan global plan", []step{stActivate("M2M4GB"), dlGlobal}, stProfile("serviceplan", profLead, "GLOBAL5GB", ""), "", "active", [3]string{}, profGlobal},
		{"serviceplan global plan not downloaded", []step{stActivate("M2M4GB")}, stProfile("serviceplan", profLead, "GLOBAL5GB", ""), "DeviceState.Invalid", "active", [3]string{}, profLead},
		{"profile_suspend lead", []step{stActivate("M2M4GB")}, stICCID("profile_suspend", profLead, "M2M4GB"), "ProfileType.Invalid", "active", [3]string{}, profLead},
		{"profile_suspend global", []step{stActivate("M2M4GB"), dlGlobal}, stICCID("profile_suspend", profGlobal, "GLOBAL1GB"), "", "suspended", [3]string{}, profGlobal},
		{"profile_suspend global twice", []step{stActivate("M2M4GB"), dlGlobal, stICCID("profile_suspend", profGlobal, "GLOBAL1GB")}, stICCID("profile_suspend", profGlobal, "GLOBAL1GB"), "AlreadySuspended", "suspended", [3]string{}, profGlobal},
		{"profile_resume global", []step{stActivate("M2M4GB"), dlGlobal, stICCID("profile_suspend", profGlobal, "GLOBAL1GB")}, stICCID("profile_resume", profGlobal, "GLOBAL1GB"), "", "active", [3]string{}, profGlobal},
		{"profile_suspend downloaded global not enabled", []step{stActivate("M2M4GB"), stProfile("download", profGlobal, "GLOBAL1GB", "")}, stICCID("profile_suspend", profGlobal, "GLOBAL1GB"), "", "active", [3]string{"ENABLE", "DOWNLOAD_DISABLE"}, profLead},
		{"profile_resume active", []step{stActivate("M2M4GB")}, stICCID("profile_resume", profLead, "M2M4GB"), "AlreadyResumed", "active", [3]string{}, profLead},
		{"profile_resume lead after device_suspend", []step{stActivate("M2M4GB"), stEID("device_suspend")}, stICCID("profile_resume", profLead, "M2M4GB"), "", "active", [3]string{}, profLead},
		{"device_suspend pre-active", nil, stEID("device_suspend"), "DeviceState.Invalid", "pre-active", [3]string{}, -1},
		{"device_suspend", []step{stActivate("M2M4GB")}, stEID("device_suspend"), "", "suspended", [3]string{"ENABLE"}, profLead},
		{"device_resume not suspended", []step{stActivate("M2M4GB")}, stEID("device_resume"), "AlreadyResumed", "active", [3]string{}, profLead},
		{"device_resume", []step{stActivate("M2M4GB"), stEID("device_suspend")}, stEID("device_resume"), "", "active", [3]string{}, profLead},
		{"deactivate", []step{stActivate("M2M4GB")}, deactivate, "", "deactive", [3]string{"DISABLE"}, -1},
		{"deactivate suspended", []step{stActivate("M2M4GB"), stEID("device_suspend")}, deactivate, "", "deactive", [3]string{}, -1},
		{"deactivate deactive", []step{stActivate("M2M4GB"), deactivate}, deactivate, "DeviceState.Invalid", "deactive", [3]string{}, -1},
		{"deactivate pre-active", nil, deactivate, "DeviceState.Invalid", "pre-active", [3]string{}, -1},
		{"deactivate global falls back to lead", []step{stActivate("M2M4GB"), dlGlobal}, gDeactivate, "", "active", [3]string{"ENABLE", "DISABLE"}, profLead},
		{"enable deactivated global", []step{stActivate("M2M4GB"), dlGlobal, gDeactivate}, stProfile("enable", profGlobal, "", ""), "DeviceState.Invalid", "active", [3]string{"ENABLE", "DISABLE"}, profLead},
		{"activate deactivated global, then it can be enabled", []step{stActivate("M2M4GB"), dlGlobal, gDeactivate, stActivate("GLOBAL5GB")}, stProfile("enable", profGlobal, "", ""), "", "active", [3]string{"DISABLE", "ENABLE"}, profGlobal},
		{"enable while the line is suspended", []step{stActivate("M2M4GB"), stProfile("download", profGlobal, "GLOBAL1GB", ""), stEID("device_suspend")}, stProfile("enable", profGlobal, "", ""), "", "suspended", [3]string{"DISABLE", "ENABLE"}, profGlobal},
		{"device_resume keeps a profile suspended on its own", []step{stActivate("M2M4GB"), dlGlobal, stICCID("profile_suspend", profGlobal, "GLOBAL1GB"), stEID("device_suspend")}, stEID("device_resume"), "", "suspended", [3]string{"DISABLE", "ENABLE"}, profGlobal},
		{"delete lead", []step{stActivate("M2M4GB")}, stProfile("delete", profLead, "", ""), "DeleteNotAllowed", "active", [3]string{"ENABLE"}, profLead},
		{"delete active global", []step{stActivate("M2M4GB"), dlGlobal}, stProfile("delete", profGlobal, "GLOBAL1GB", ""), "must be deactivated", "active", [3]string{"DISABLE", "ENABLE"}, profGlobal},
		{"delete deactivated global", []step{stActivate("M2M4GB"), dlGlobal, gDeactivate}, stProfile("delete", profGlobal, "GLOBAL1GB", ""), "", "active", [3]string{"ENABLE", "DELETE"}, profLead},
		{"delete local", []step{stActivate("M2M4GB"), stProfile("download_enable", profLocal, "", testOid)}, stProfile("delete", profLocal, "", testOid), "", "active", [3]string{"ENABLE", "NOT_DOWNLOADED", "DELETE"}, profLead},
		{"unknown device", nil, step{"activate", func(DeviceView) tsapi.ProfileRequest {
			eid := "89049032000000000000000000000000"
			return tsapi.ProfileRequest{Devices: entry(ids("eid", eid, "iccid", "89148000000000000001", "imei", "353492000000001")), ServicePlan: "M2M4GB"}
		}}, "DeviceNotFound", "", [3]string{}, -1},
		{"identifiers of two devices", nil, step{"activate", func(d DeviceView) tsapi.ProfileRequest {
			return tsapi.ProfileRequest{Devices: entry(ids("eid", d.EID, "iccid", "89148000000000000001", "imei", d.IMEI)), ServicePlan: "M2M4GB"}
		}}, "DeviceNotFound", "pre-active", [3]string{}, -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, nil)
			for _, st := range c.setup {
				_, cbs := h.run(st.action, st.body(h.dev(0)))
				if _, got, err := final(t, tsapi.Action(st.action), cbs); got != tsapi.StatusSucceeded {
					t.Fatalf("setup %s: %s %v", st.action, got, err)
				}
			}
			_, cbs := h.run(c.do.action, c.do.body(h.dev(0)))
			cb, got, err := final(t, tsapi.Action(c.do.action), cbs)
			if c.wantFail == "" && got != tsapi.StatusSucceeded {
				t.Fatalf("want success, got %s %v", got, err)
			}
			if c.wantFail != "" {
				if got != tsapi.StatusFailed || err == nil || !strings.Contains(err.Code+" "+err.Message, c.wantFail) {
					t.Fatalf("want failure %s, got %s %v (%+v)", c.wantFail, got, err, cb)
				}
				if !strings.HasPrefix(err.Code, "DeviceProfileService.") {
					t.Errorf("fault code %q not namespaced", err.Code)
				}
			}
			d := h.dev(0)
			if c.state != "" && d.State != c.state {
				t.Errorf("state %s, want %s", d.State, c.state)
			}
			for k, want := range c.statuses {
				if want != "" && d.Profiles[k].Status != want {
					t.Errorf("profile %d status %s, want %s", k, d.Profiles[k].Status, want)
				}
			}
			if c.enabledIdx >= 0 && d.ICCID != d.Profiles[c.enabledIdx].ICCID {
				t.Errorf("shown iccid %s, want profile %d", d.ICCID, c.enabledIdx)
			}
			enabled := 0
			for _, p := range d.Profiles {
				if p.Status == "ENABLE" {
					enabled++
				}
			}
			if enabled > 1 {
				t.Errorf("%d enabled profiles: %+v", enabled, d.Profiles)
			}
		})
	}
}

// While a request is in flight, the v1 list shows PENDING_ACTIVATION; the stats record that the
// second action found an open request.
func TestPendingStateAndOpenRequest(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.CallbackDelayMin, o.CallbackDelayMax = time.Minute, time.Minute })
	d := h.dev(0)
	h.action("activate", activateBody(d, "M2M4GB"))
	code, b := h.call("POST", "/api/m2m/v1/devices/actions/list", tsapi.DeviceListRequest{AccountName: h.s.opts.Account,
		DeviceID: &tsapi.DeviceID{Kind: "eid", ID: d.EID}}, true)
	var lr tsapi.DeviceListResponse
	mustJSON(t, b, &lr)
	if code != 200 || len(lr.Devices) != 1 || lr.Devices[0].State() != tsapi.StatePendingActivation {
		t.Fatalf("%d %s", code, b)
	}
	if v := h.dev(0); v.State != "pending_activation" || v.OpenRequests != 1 {
		t.Fatalf("admin view %+v", v)
	}
	h.action("activate", activateBody(d, "M2M4GB"))
	acts := h.s.Stats().Actions
	if len(acts) != 2 || acts[0].Devices[0].OpenRequestBefore || !acts[1].Devices[0].OpenRequestBefore ||
		acts[0].Devices[0].StateBefore != "pre-active" || acts[1].Devices[0].StateBefore != "pending_activation" ||
		acts[0].Devices[0].EID != d.EID || acts[0].Devices[0].ProfileStatusBefore != "NOT_DOWNLOADED" {
		t.Fatalf("actions %+v", acts)
	}
	code, b = h.call("GET", "/api/m2m/v2/accounts/"+h.s.opts.Account+"/requests/"+acts[0].RequestID+"/status", nil, true)
	if !strings.Contains(string(b), `"status":"Pending"`) {
		t.Fatalf("status %d %s", code, b)
	}
}
