package sim

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// activateBody is the ThingSpace activate page's example request for device i.
func activateBody(d DeviceView, plan string) tsapi.ProfileRequest {
	return tsapi.ProfileRequest{
		Devices:     []tsapi.DeviceEntry{ids("eid", d.EID, "iccid", d.ICCID, "imei", d.IMEI)},
		MdnZipCode:  "20001",
		ServicePlan: plan,
	}
}

// Activate, as on ThingSpace's "Activate or Reactivate an eSIM Profile" page. The callback has the
// shape of that page's example (testdata/seeds/callback_activate.json in internal/tsapi):
// deviceIds with Iccid/Imei/Eid/mdn/msisdn,
// deviceProfileResponse with state, servicePlan, deviceCredential, profileStatus ENABLE and role
// LEAD, status SUCCESS, callbackCount 1, maxCallbackThreshold 4, and the registered credentials.
func TestContractActivate(t *testing.T) {
	h := newHarness(t, nil)
	d := h.dev(0)
	id, cbs := h.run("activate", activateBody(d, "M2M4GB"))
	if len(cbs) != 1 {
		t.Fatalf("want 1 callback, got %d", len(cbs))
	}
	cb := cbs[0]
	if st, err := cb.Outcome(tsapi.ActionActivate); st != tsapi.StatusSucceeded {
		t.Fatalf("outcome %s %v", st, err)
	}
	if cb.Username != "cbuser" || cb.Password != "cbpass" || cb.CallbackCount != 1 || cb.MaxCallbackThreshold != 4 || cb.Status != "SUCCESS" {
		t.Fatalf("envelope: %+v", cb)
	}
	after := h.dev(0)
	for _, k := range []string{"Iccid", "Imei", "Eid", "mdn", "msisdn"} {
		found := false
		for _, x := range cb.DeviceIDs {
			if x.Kind == k {
				found = true
			}
		}
		if !found {
			t.Errorf("deviceIds lack kind %s: %+v", k, cb.DeviceIDs)
		}
	}
	if cb.DeviceIDs.Get("mdn") != after.MDN || after.MDN == "" || cb.DeviceIDs.Get("msisdn") != "1"+after.MDN {
		t.Errorf("mdn/msisdn: %+v vs %+v", cb.DeviceIDs, after)
	}
	p := cb.Profile()
	if p == nil || p.State != "ACTIVE" || p.ProfileStatus != "ENABLE" || p.ProfileRole != "LEAD" ||
		p.ServicePlan != "M2M4GB" || p.DeviceCredential == nil || p.DeviceCredential.Username == "" ||
		p.EuiccSubAddressUpdateStatus != "EXECUTED_SUCCESS" {
		t.Fatalf("deviceProfileResponse: %+v", p)
	}
	if after.State != "active" || after.ServicePlan != "M2M4GB" || after.ProfileStatus != "ENABLE" || after.ProfileRole != "LEAD" {
		t.Fatalf("device after: %+v", after)
	}
	// The raw body uses the key names of the page's example.
	raw := string(h.lis.raw()[0])
	for _, k := range []string{`"requestId":"` + id, `"deviceResponse":{"deviceProfileResponse":{`, `"deviceIdentifierCollection"`,
		`"callbackCount":1`, `"maxCallbackThreshold":4`, `"username":"cbuser"`} {
		if !strings.Contains(raw, k) {
			t.Errorf("raw callback lacks %s: %s", k, raw)
		}
	}
	// The request status shows the device as a sub-request, in the doc form.
	code, b := h.call("GET", "/api/m2m/v2/accounts/"+h.s.opts.Account+"/requests/"+id+"/status", nil, true)
	if code != 200 || !strings.Contains(string(b), `"subRequests":[{"ids":[`) {
		t.Fatalf("status: %d %s", code, b)
	}
	var rs tsapi.RequestStatusResponse
	mustJSON(t, b, &rs)
	if rs.Status != "Success" || len(rs.SubRequests) != 1 || rs.SubRequests[0].Status != "Success" || rs.SubRequests[0].IDs.Get("eid") != d.EID {
		t.Fatalf("status body: %+v", rs)
	}
	code, b = h.call("GET", "/api/m2m/v1/accounts/"+h.s.opts.Account+"/requests/"+id+"/status", nil, true)
	if code != 200 || !strings.Contains(string(b), `"status":"Success"`) {
		t.Fatalf("v1 status: %d %s", code, b)
	}
	// The callbacks carry a credential unique per device.
	_, cbs2 := h.run("activate", activateBody(h.dev(1), "M2M4GB"))
	if cbs2[0].Profile().DeviceCredential.Username == p.DeviceCredential.Username {
		t.Fatal("deviceCredential not unique per device")
	}
}

// download_enable of a Global profile after activation, as on ThingSpace's "Download_Enable an
// eSIM Profile" page (example callback: callback_download_enable.json).
func TestContractDownloadEnable(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Preactivated = 2 })
	d := h.dev(0)
	_, cbs := h.run("download_enable", tsapi.ProfileRequest{
		Devices:     []tsapi.DeviceEntry{ids("eid", d.EID, "iccid", d.ICCID, "imei", d.IMEI)},
		ServicePlan: "GLOBAL1GB",
	})
	cb, st, err := final(t, tsapi.ActionDownloadEnable, cbs)
	if st != tsapi.StatusSucceeded {
		t.Fatalf("outcome %s %v", st, err)
	}
	p := cb.Profile()
	global := d.Profiles[profGlobal].ICCID
	if p.State != "ACTIVE" || p.ProfileStatus != "ENABLE" || p.ProfileRole != "LOCAL" || cb.DeviceIDs.Get("iccid") != global {
		t.Fatalf("callback: %+v %+v", cb.DeviceIDs, p)
	}
	after := h.dev(0)
	if after.ICCID != global || after.ProfileStatus != "ENABLE" || after.ServicePlan != "GLOBAL1GB" ||
		after.Profiles[profLead].Status != "DISABLE" || after.Profiles[profGlobal].Type != "Global" {
		t.Fatalf("device after: %+v", after)
	}
}

// Enable a local profile already downloaded (download_disable with smsrOid first), as on
// ThingSpace's "Enable a Local Profile on a Device" page (example callback:
// callback_enable_local.json).
func TestContractEnableLocal(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Preactivated = 1 })
	d := h.dev(0)
	local := d.Profiles[profLocal].ICCID
	oid := "1.3.6.1.4.1.31746.1.500.200.101.5"
	_, cbs := h.run("download_disable", tsapi.ProfileRequest{
		Devices: []tsapi.DeviceEntry{ids("eid", d.EID, "iccid", local)}, SmsrOid: oid})
	if _, st, err := final(t, tsapi.ActionDownloadDisable, cbs); st != tsapi.StatusSucceeded {
		t.Fatalf("download_disable: %s %v", st, err)
	}
	if got := h.dev(0).Profiles[profLocal].Status; got != "DOWNLOAD_DISABLE" {
		t.Fatalf("local profile %s", got)
	}
	// The 2026 SDK's "smrsOid" spelling is accepted.
	body := `{"devices":[{"deviceIds":[{"kind":"eid","id":"` + d.EID + `"},{"kind":"iccid","id":"` + local + `"}]}],` +
		`"accountName":"` + h.s.opts.Account + `","smrsOid":"` + oid + `"}`
	code, b := h.call("POST", "/api/m2m/v1/devices/profile/actions/enable", []byte(body), true)
	if code != 200 {
		t.Fatalf("enable: %d %s", code, b)
	}
	var rr tsapi.RequestResponse
	mustJSON(t, b, &rr)
	h.idle()
	cb, st, err := final(t, tsapi.ActionEnable, h.lis.forRequest(t, rr.RequestID))
	if st != tsapi.StatusSucceeded {
		t.Fatalf("enable: %s %v", st, err)
	}
	p := cb.Profile()
	if p.ProfileStatus != "ENABLE" || p.SmsrOid != oid || p.EuiccStatus != "EXECUTED_SUCCESS" || p.IPAddress == "" {
		t.Fatalf("callback: %+v", p)
	}
	if after := h.dev(0); after.ICCID != local || after.Profiles[profLead].Status != "DISABLE" {
		t.Fatalf("after: %+v", after)
	}
}

// serviceplan by eid + iccid, as on ThingSpace's "Change the eSIM Profile Service Plan" page
// (example callback: callback_serviceplan.json).
func TestContractServicePlan(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Preactivated = 1 })
	d := h.dev(0)
	_, cbs := h.run("serviceplan", tsapi.ProfileRequest{
		Devices: []tsapi.DeviceEntry{ids("eid", d.EID, "iccid", d.ICCID)}, ServicePlan: "M2M10GB"})
	cb, st, err := final(t, tsapi.ActionServicePlan, cbs)
	if st != tsapi.StatusSucceeded || cb.Profile().ServicePlan != "M2M10GB" || cb.Profile().ProfileStatus != "ENABLE" {
		t.Fatalf("%s %v %+v", st, err, cb.Profile())
	}
	if h.dev(0).ServicePlan != "M2M10GB" {
		t.Fatal("plan not changed")
	}
	// That page's own URL has a doubled slash (".../v1//devices/..."); it is served, not
	// redirected (curl, as the docs use it, does not follow redirects).
	body, _ := json.Marshal(tsapi.ProfileRequest{AccountName: h.s.opts.Account,
		Devices: []tsapi.DeviceEntry{ids("eid", d.EID, "iccid", d.ICCID)}, ServicePlan: "M2M50GB"})
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, herr := noRedirect.Do(h.newReq("POST", "/api/m2m/v1//devices/profile/actions/serviceplan", body))
	if herr != nil {
		t.Fatal(herr)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	code := resp.StatusCode
	var rr tsapi.RequestResponse
	mustJSON(t, b, &rr)
	if code != 200 || rr.RequestID == "" {
		t.Fatalf("doubled slash: %d %s", code, b)
	}
	h.idle()
	if h.dev(0).ServicePlan != "M2M50GB" {
		t.Fatal("plan not changed through the page's URL (doubled slash)")
	}
}

// profile_resume by iccid + servicePlan, after a device_suspend, as on ThingSpace's "Resume an
// eSIM Profile" page (example callback: callback_profile_resume.json).
func TestContractProfileResume(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Preactivated = 1 })
	d := h.dev(0)
	_, cbs := h.run("device_suspend", tsapi.ProfileRequest{Devices: []tsapi.DeviceEntry{ids("eid", d.EID)}})
	if _, st, err := final(t, tsapi.ActionDeviceSuspend, cbs); st != tsapi.StatusSucceeded {
		t.Fatalf("device_suspend: %s %v", st, err)
	}
	if h.dev(0).State != "suspended" {
		t.Fatalf("state %s", h.dev(0).State)
	}
	_, cbs = h.run("profile_resume", tsapi.ProfileRequest{
		Devices: []tsapi.DeviceEntry{ids("iccid", d.ICCID)}, ServicePlan: "M2M4GB"})
	cb, st, err := final(t, tsapi.ActionProfileResume, cbs)
	if st != tsapi.StatusSucceeded || cb.Profile().State != "ACTIVE" {
		t.Fatalf("%s %v %+v", st, err, cb.Profile())
	}
	if h.dev(0).State != "active" {
		t.Fatalf("state %s", h.dev(0).State)
	}
}

// device_suspend: one callback per profile, then the device-level one (eid, no iccid).
func TestContractDeviceSuspendLevels(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Preactivated = 1 })
	d := h.dev(0)
	h.run("download_enable", tsapi.ProfileRequest{Devices: []tsapi.DeviceEntry{ids("eid", d.EID, "iccid", d.ICCID)}, ServicePlan: "GLOBAL5GB"})
	_, cbs := h.run("device_suspend", tsapi.ProfileRequest{Devices: []tsapi.DeviceEntry{ids("eid", d.EID)}})
	if len(cbs) != 3 {
		t.Fatalf("want 2 profile callbacks + 1 device-level, got %d", len(cbs))
	}
	last, st, _ := final(t, tsapi.ActionDeviceSuspend, cbs)
	if !last.DeviceLevel() || st != tsapi.StatusSucceeded || last.Profile().State != "SUSPEND" {
		t.Fatalf("final: %+v", last)
	}
	for _, cb := range cbs[:2] {
		if cb.DeviceLevel() || cb.DeviceIDs.Get("iccid") == "" {
			t.Fatalf("profile callback without iccid: %+v", cb)
		}
	}
	// Again: every profile answers "Profile is already suspended", the device level fails.
	_, cbs = h.run("device_suspend", tsapi.ProfileRequest{Devices: []tsapi.DeviceEntry{ids("eid", d.EID)}})
	_, st, err := final(t, tsapi.ActionDeviceSuspend, cbs)
	if st != tsapi.StatusFailed || cbs[0].FaultResponse == nil || cbs[0].FaultResponse.FaultString != "Profile is already suspended" {
		t.Fatalf("second suspend: %s %v %+v", st, err, cbs[0])
	}
	_, cbs = h.run("device_resume", tsapi.ProfileRequest{Devices: []tsapi.DeviceEntry{ids("eid", d.EID)}})
	if _, st, err := final(t, tsapi.ActionDeviceResume, cbs); st != tsapi.StatusSucceeded {
		t.Fatalf("resume: %s %v", st, err)
	}
	if v := h.dev(0); v.State != "active" || v.Profiles[profGlobal].State != "active" {
		t.Fatalf("after resume: %+v", v)
	}
}

func TestContractCallbackRegistration(t *testing.T) {
	h := newHarness(t, nil)
	acct := h.s.opts.Account
	code, b := h.call("GET", "/api/m2m/v1/callbacks/"+acct, nil, true)
	var regs []tsapi.CallbackRegistration
	mustJSON(t, b, &regs)
	if code != 200 || len(regs) != 1 || regs[0].ServiceName != "DeviceProfileService" || regs[0].URL != h.lis.srv.URL+"/cb" ||
		regs[0].Username != "cbuser" || regs[0].Password != "cbpass" || regs[0].AccountName != acct {
		t.Fatalf("list: %d %s", code, b)
	}
	// Any http(s) URL on any port.
	code, b = h.call("POST", "/api/m2m/v1/callbacks/"+acct, tsapi.RegisterCallbackRequest{Name: "CarrierService", URL: "https://relay.example:28443/x"}, true)
	if code != 200 || !strings.Contains(string(b), `"serviceName":"CarrierService"`) {
		t.Fatalf("register: %d %s", code, b)
	}
	for _, bad := range []tsapi.RegisterCallbackRequest{{Name: "DeviceProfileService", URL: "ftp://x"}, {Name: "NoSuchService", URL: "http://x"}} {
		if code, b := h.call("POST", "/api/m2m/v1/callbacks/"+acct, bad, true); code != 400 || !strings.Contains(string(b), "INPUT_INVALID") {
			t.Errorf("bad registration %+v: %d %s", bad, code, b)
		}
	}
	code, b = h.call("DELETE", "/api/m2m/v1/callbacks/"+acct+"/name/CarrierService", nil, true)
	if code != 200 || !strings.Contains(string(b), `"accountName":"`+acct+`"`) {
		t.Fatalf("delete: %d %s", code, b)
	}
	if code, _ := h.call("DELETE", "/api/m2m/v1/callbacks/"+acct+"/name/CarrierService", nil, true); code != 400 {
		t.Fatalf("second delete: %d", code)
	}
	if code, b := h.call("GET", "/api/m2m/v1/callbacks/9999999999-00001", nil, true); code != 400 || !strings.Contains(string(b), "AccountNotFound") {
		t.Fatalf("unknown account: %d %s", code, b)
	}
	// Without a listener the callbacks are dropped and counted.
	h.call("DELETE", "/api/m2m/v1/callbacks/"+acct+"/name/DeviceProfileService", nil, true)
	h.run("activate", activateBody(h.dev(0), "M2M4GB"))
	if st := h.s.Stats().Callbacks; st.NoListener != 1 || st.Dropped != 1 || st.Sent != 0 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestContractPlans(t *testing.T) {
	h := newHarness(t, nil)
	code, b := h.call("GET", "/api/m2m/v1/plans/"+h.s.opts.Account, nil, true)
	var plans []tsapi.ServicePlan
	mustJSON(t, b, &plans)
	if code != 200 || len(plans) < 4 || plans[0].Code == "" || plans[0].Name != plans[0].Code {
		t.Fatalf("%d %s", code, b)
	}
	resp, err := http.Get(h.base + "/sim/v1/plans")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sp []map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&sp); err != nil {
		t.Fatal(err)
	}
	seenGlobal, us, gl := false, 0, 0
	for _, p := range sp {
		if p["name"] != p["code"] || len(p["code"]) < 3 || len(p["code"]) > 32 {
			t.Errorf("plan %v", p)
		}
		lc := strings.ToLower(p["code"])
		switch p["type"] {
		case "US":
			us++
			if seenGlobal {
				t.Error("US plans must come first")
			}
			for _, w := range []string{"global", "gio", "intl", "internat", "roam", "world"} {
				if strings.Contains(lc, w) {
					t.Errorf("US plan %s contains %s", p["code"], w)
				}
			}
		case "Global":
			gl++
			seenGlobal = true
			if !strings.Contains(p["code"], "GLOBAL") {
				t.Errorf("Global plan %s", p["code"])
			}
		default:
			t.Errorf("type %v", p)
		}
	}
	if us < 2 || gl < 2 {
		t.Fatalf("plans %v", sp)
	}
}

// Unknown plan: synchronous, REQUEST_FAILED.<plan>.NotFound.
func TestContractUnknownPlan(t *testing.T) {
	h := newHarness(t, nil)
	body := activateBody(h.dev(0), "NOPLAN")
	body.AccountName = h.s.opts.Account
	code, b := h.call("POST", "/api/m2m/v1/devices/profile/actions/activate", body, true)
	var e tsapi.ErrorResponse
	mustJSON(t, b, &e)
	if code != 400 || e.ErrorCode != "UnifiedWebService.REQUEST_FAILED.NOPLAN.NotFound" {
		t.Fatalf("%d %s", code, b)
	}
	if n := h.s.Stats().ActionCounts["activate"]; n != 0 {
		t.Fatalf("action accepted: %d", n)
	}
}

// The v2 list answers a requestId; its results come as callbacks, one per profile.
func TestContractListV2(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Preactivated = 3 })
	d := h.dev(0)
	h.run("download_enable", tsapi.ProfileRequest{Devices: []tsapi.DeviceEntry{ids("eid", d.EID, "iccid", d.ICCID)}, ServicePlan: "GLOBAL1GB"})
	_, cbs := h.runList(map[string]any{
		"deviceFilter": []any{map[string]any{"deviceIds": []any{map[string]string{"kind": "eid", "id": d.EID}}}}})
	if len(cbs) != 2 {
		t.Fatalf("want 2 profile callbacks, got %d", len(cbs))
	}
	statuses := map[string]string{}
	for _, cb := range cbs {
		statuses[cb.Profile().ProfileRole] = cb.Profile().ProfileStatus
	}
	if statuses["LEAD"] != "DISABLE" || statuses["LOCAL"] != "ENABLE" {
		t.Fatalf("statuses %v", statuses)
	}
	// Whole account, filtered by provisioning status.
	rid, _ := h.runList(map[string]any{"provisioningStatusFilter": "ACTIVE"})
	code, b := h.call("GET", "/api/m2m/v2/accounts/"+h.s.opts.Account+"/requests/"+rid+"/status", nil, true)
	var rs tsapi.RequestStatusResponse
	mustJSON(t, b, &rs)
	if code != 200 || len(rs.SubRequests) != 3 || rs.Status != "Success" {
		t.Fatalf("%d %s", code, b)
	}
}

// The v2 list's profileStatusFilter and carrierNameFilter choose the profiles reported; a device
// of the deviceFilter that is not in the account gets a DeviceNotFound callback and fails its
// sub-request.
func TestContractListV2Filters(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Preactivated = 3 })
	d := h.dev(0)
	h.run("download_enable", tsapi.ProfileRequest{Devices: entry(ids("eid", d.EID, "iccid", d.ICCID)), ServicePlan: "GLOBAL1GB"})
	list := h.runList
	// ENABLE: one profile per active device (the Global one of device 0, the LEAD of the others).
	_, cbs := list(map[string]any{"profileStatusFilter": "ENABLE"})
	roles := map[string]string{}
	for _, cb := range cbs {
		if cb.Profile().ProfileStatus != "ENABLE" {
			t.Fatalf("filtered on ENABLE, got %+v", cb.Profile())
		}
		roles[cb.DeviceIDs.Get("eid")] = cb.Profile().ProfileRole
	}
	if len(cbs) != 3 || roles[d.EID] != "LOCAL" || roles[h.dev(1).EID] != "LEAD" {
		t.Fatalf("ENABLE: %d callbacks, roles %v", len(cbs), roles)
	}
	// Verizon Global: the one downloaded Global profile.
	_, cbs = list(map[string]any{"carrierNameFilter": "Verizon Global"})
	if len(cbs) != 1 || cbs[0].DeviceIDs.Get("iccid") != d.Profiles[profGlobal].ICCID {
		t.Fatalf("carrier filter: %d callbacks", len(cbs))
	}
	// An unknown device in the filter.
	unknown := "89049032000000000000000000000000"
	id, cbs := list(map[string]any{"deviceFilter": []any{map[string]any{"deviceIds": []any{map[string]string{"kind": "eid", "id": unknown}}}}})
	if len(cbs) != 1 || cbs[0].Status != "Failed" || cbs[0].FaultResponse == nil ||
		cbs[0].FaultResponse.FaultCode != "DeviceProfileService.REQUEST_FAILED.DeviceNotFound" || cbs[0].DeviceIDs.Get("eid") != unknown {
		t.Fatalf("unknown device: %+v", cbs)
	}
	_, b := h.call("GET", "/api/m2m/v2/accounts/"+h.s.opts.Account+"/requests/"+id+"/status", nil, true)
	var rs tsapi.RequestStatusResponse
	mustJSON(t, b, &rs)
	if rs.Status != "Failed" || len(rs.SubRequests) != 1 || rs.SubRequests[0].Status != "Failed" || rs.SubRequests[0].IDs.Get("eid") != unknown {
		t.Fatalf("status %s", b)
	}
}
