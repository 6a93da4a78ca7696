package sim

import (
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"

	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

func adminDo(t *testing.T, method, url, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestAdminDevices(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Preactivated = 2 })
	code, b := adminDo(t, "GET", h.base+"/sim/v1/devices", "")
	var rows []map[string]any
	mustJSON(t, b, &rows)
	if code != 200 || len(rows) != 20 {
		t.Fatalf("%d %d", code, len(rows))
	}
	for _, k := range []string{"eid", "iccid", "imei", "mdn", "msisdn", "state", "profileStatus", "profileRole", "servicePlan", "accountName", "online", "profiles"} {
		if _, ok := rows[0][k]; !ok {
			t.Errorf("row lacks %s", k)
		}
	}
	if rows[0]["state"] != "active" || rows[0]["servicePlan"] != "M2M4GB" || rows[2]["state"] != "pre-active" || rows[0]["online"] != true {
		t.Fatalf("rows %v %v", rows[0], rows[2])
	}
	eid := rows[3]["eid"].(string)
	code, b = adminDo(t, "GET", h.base+"/sim/v1/devices/"+eid, "")
	if code != 200 || !strings.Contains(string(b), eid) {
		t.Fatalf("%d %s", code, b)
	}
	if code, _ := adminDo(t, "GET", h.base+"/sim/v1/devices/123", ""); code != 404 {
		t.Fatalf("unknown device %d", code)
	}
	// Drift made outside Terraform.
	code, b = adminDo(t, "PATCH", h.base+"/sim/v1/devices/"+eid, `{"state":"active","servicePlan":"M2M10GB"}`)
	if code != 200 || !strings.Contains(string(b), `"state":"active"`) || !strings.Contains(string(b), `"servicePlan":"M2M10GB"`) {
		t.Fatalf("%d %s", code, b)
	}
	for _, c := range []struct{ body, state string }{
		{`{"state":"suspended"}`, "suspended"}, {`{"state":"active"}`, "active"},
		{`{"state":"deactive"}`, "deactive"}, {`{"state":"pre-active"}`, "pre-active"}} {
		code, b = adminDo(t, "PATCH", h.base+"/sim/v1/devices/"+eid, c.body)
		var v DeviceView
		mustJSON(t, b, &v)
		if code != 200 || v.State != c.state {
			t.Fatalf("%s: %d %s", c.body, code, b)
		}
	}
	code, b = adminDo(t, "PATCH", h.base+"/sim/v1/devices/"+eid, `{"online":false}`)
	if code != 200 || !strings.Contains(string(b), `"online":false`) {
		t.Fatalf("%d %s", code, b)
	}
	for _, bad := range []string{`{"state":"frozen"}`, `{"servicePlan":"NOPE"}`, `{"color":"red"}`} {
		if code, _ := adminDo(t, "PATCH", h.base+"/sim/v1/devices/"+eid, bad); code != 400 {
			t.Errorf("%s: %d", bad, code)
		}
	}
	// The v1 list sees the drift.
	if err := h.s.UpdateDevice(rows[0]["eid"].(string), DevicePatch{ServicePlan: ptr("M2M50GB")}); err != nil {
		t.Fatal(err)
	}
	_, lr, _ := h.listV1(tsapi.DeviceListRequest{DeviceID: &tsapi.DeviceID{Kind: "eid", ID: rows[0]["eid"].(string)}})
	if lr.Devices[0].ServicePlan() != "M2M50GB" {
		t.Fatalf("%+v", lr.Devices[0])
	}
}

func ptr[T any](v T) *T { return &v }

func TestAdminStatsFaultsReset(t *testing.T) {
	h := newHarness(t, nil)
	h.run("activate", activateBody(h.dev(0), "M2M4GB"))
	code, b := adminDo(t, "GET", h.base+"/sim/v1/stats", "")
	var st map[string]json.RawMessage
	mustJSON(t, b, &st)
	for _, k := range []string{"requests", "actionCounts", "actions", "callbacks"} {
		if _, ok := st[k]; !ok {
			t.Errorf("stats lack %s: %s", k, b)
		}
	}
	for _, k := range []string{`"POST /api/m2m/v1/devices/profile/actions/{action}":1`, `"activate":1`, `"stateBefore":"pre-active"`,
		`"openRequestBefore":false`, `"acknowledged":1`, `"sent":1`, `"retried":0`, `"dropped":0`, `"failedAttempts":0`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("stats lack %s: %s", k, b)
		}
	}
	if code != 200 {
		t.Fatal(code)
	}
	// PUT /sim/v1/faults: JSON or the plain spec.
	code, b = adminDo(t, "PUT", h.base+"/sim/v1/faults", `{"faults":"warning=0.5,dup=0.1"}`)
	if code != 200 || h.s.Faults() != "dup=0.1,warning=0.5" {
		t.Fatalf("%d %s %q", code, b, h.s.Faults())
	}
	code, _ = adminDo(t, "PUT", h.base+"/sim/v1/faults", `429=0.2`)
	if code != 200 || h.s.Faults() != "429=0.2" {
		t.Fatalf("%d %q", code, h.s.Faults())
	}
	if code, _ := adminDo(t, "PUT", h.base+"/sim/v1/faults", `bogus=1`); code != 400 {
		t.Fatalf("bad faults %d", code)
	}
	code, b = adminDo(t, "GET", h.base+"/sim/v1/faults", "")
	if code != 200 || !strings.Contains(string(b), "429=0.2") {
		t.Fatalf("%d %s", code, b)
	}
	adminDo(t, "PUT", h.base+"/sim/v1/faults", `{"faults":""}`)
	// Reset: the inventory is back, stats are empty, the session and listener are kept.
	code, _ = adminDo(t, "POST", h.base+"/sim/v1/reset", "")
	if code != 200 || h.dev(0).State != "pre-active" || len(h.s.Stats().Actions) != 0 {
		t.Fatalf("reset: %d %+v", code, h.dev(0))
	}
	h.run("activate", activateBody(h.dev(0), "M2M4GB"))
	if h.dev(0).State != "active" {
		t.Fatal("session or listener lost by reset")
	}
	adminDo(t, "POST", h.base+"/sim/v1/reset?all=true", "")
	if code, _ := h.call("GET", "/api/m2m/v1/plans/"+h.s.opts.Account, nil, true); code != 401 {
		t.Fatalf("reset?all=true kept the token: %d", code)
	}
}

// The inventory is deterministic from the seed and its identifiers are valid.
func TestInventoryIdentifiers(t *testing.T) {
	o := testOptions()
	o.Devices = 500
	a, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, _ := New(o)
	defer b.Close()
	o.Seed = 2
	c, _ := New(o)
	defer c.Close()
	da, db, dc := a.Devices(), b.Devices(), c.Devices()
	if da[7].EID != db[7].EID || da[7].EID == dc[7].EID {
		t.Fatal("inventory not deterministic from the seed")
	}
	seen := map[string]bool{}
	ninetySeven := big.NewInt(97)
	for _, d := range da {
		n, _ := new(big.Int).SetString(d.EID, 10)
		if len(d.EID) != 32 || new(big.Int).Mod(n, ninetySeven).Int64() != 1 {
			t.Fatalf("EID %s", d.EID)
		}
		if len(d.IMEI) != 15 || !luhnValid(d.IMEI) {
			t.Fatalf("IMEI %s", d.IMEI)
		}
		for _, p := range d.Profiles {
			if len(p.ICCID) != 20 || !strings.HasPrefix(p.ICCID, "891480") || !luhnValid(p.ICCID) {
				t.Fatalf("ICCID %s", p.ICCID)
			}
			if seen[p.ICCID] {
				t.Fatalf("duplicate %s", p.ICCID)
			}
			seen[p.ICCID] = true
		}
		for _, id := range []string{d.EID, d.IMEI} {
			if seen[id] {
				t.Fatalf("duplicate %s", id)
			}
			seen[id] = true
		}
		if d.State != "pre-active" || d.MDN != "" || !d.Online || d.AccountName != "0000123456-00001" {
			t.Fatalf("fresh device %+v", d)
		}
	}
	if !eidValid(da[0].EID) || eidValid("89049032000000000000000000000000") || !luhnValid("79927398713") {
		t.Fatal("check-digit helpers")
	}
}

func TestParseDelayRange(t *testing.T) {
	for _, c := range []struct {
		in     string
		lo, hi string
		ok     bool
	}{{"500ms", "500ms", "500ms", true}, {"200ms-2s", "200ms", "2s", true}, {"2s-1s", "", "", false}, {"x", "", "", false}, {"0s", "0s", "0s", true}} {
		lo, hi, err := ParseDelayRange(c.in)
		if (err == nil) != c.ok || (c.ok && (lo.String() != c.lo || hi.String() != c.hi)) {
			t.Errorf("%q: %v %v %v", c.in, lo, hi, err)
		}
	}
}

// Close returns while callbacks are still scheduled and being retried, and is idempotent.
func TestCloseWithPendingCallbacks(t *testing.T) {
	h := newHarness(t, nil)
	h.lis.failFirst = 1 << 30
	var entries []tsapi.DeviceEntry
	for _, d := range h.s.Devices() {
		entries = append(entries, ids("eid", d.EID, "iccid", d.ICCID, "imei", d.IMEI))
	}
	h.action("activate", tsapi.ProfileRequest{Devices: entries, ServicePlan: "M2M4GB"})
	if err := h.s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := h.s.Start(); err == nil {
		t.Fatal("Start after Close")
	}
}

// Odd bodies get a 400, never a panic.
func TestOddBodies(t *testing.T) {
	h := newHarness(t, nil)
	for _, body := range []string{`{"devices":[null],"accountName":"0000123456-00001"}`, `{"devices":[{"deviceIds":[{"kind":"eid","id":5}]}]}`,
		`[]`, `null`, `{"devices":{},"accountName":"0000123456-00001"}`, `{"devices":[{"deviceIds":null}],"accountName":"0000123456-00001"}`} {
		for _, path := range []string{"/api/m2m/v1/devices/profile/actions/activate", "/api/m2m/v1/devices/actions/list", "/api/m2m/v2/devices/actions/list"} {
			code, b := h.call("POST", path, []byte(body), true)
			if code != 400 && code != 200 && code != 202 {
				t.Errorf("%s %s: %d %s", path, body, code, b)
			}
		}
	}
	// The client's flat deviceFilter form of the v2 list, with an unknown device.
	_, cbs := h.runList(map[string]any{
		"deviceFilter": []map[string]string{{"kind": "eid", "id": h.dev(2).EID}, {"kind": "eid", "id": "89049032000000000000000000000000"}}})
	if len(cbs) != 2 {
		t.Fatalf("want 2 callbacks, got %d", len(cbs))
	}
	failed := 0
	for _, cb := range cbs {
		if st, _ := cb.Outcome(""); st == tsapi.StatusFailed {
			failed++
		}
	}
	if failed != 1 {
		t.Fatalf("%d failed", failed)
	}
}

// Drift on a device whose Global profile is enabled: "suspended" made outside suspends the line
// (a device_resume brings it back), and "active" made outside resumes a Global profile that
// profile_suspend had suspended on its own.
func TestAdminPatchSuspensionWithGlobalEnabled(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Preactivated = 1 })
	d := h.dev(0)
	global := d.Profiles[profGlobal].ICCID
	h.run("download_enable", tsapi.ProfileRequest{Devices: entry(ids("eid", d.EID, "iccid", d.ICCID)), ServicePlan: "GLOBAL1GB"})

	if err := h.s.UpdateDevice(d.EID, DevicePatch{State: ptr("suspended")}); err != nil {
		t.Fatal(err)
	}
	if v := h.dev(0); v.State != "suspended" || v.Profiles[profLead].State != "suspended" {
		t.Fatalf("after PATCH suspended: %+v", v)
	}
	_, cbs := h.run("device_resume", tsapi.ProfileRequest{Devices: entry(ids("eid", d.EID))})
	if _, st, err := final(t, tsapi.ActionDeviceResume, cbs); st != tsapi.StatusSucceeded {
		t.Fatalf("device_resume: %s %v", st, err)
	}
	if v := h.dev(0); v.State != "active" || v.Profiles[profGlobal].State != "active" {
		t.Fatalf("after device_resume: %+v", v)
	}

	h.run("profile_suspend", tsapi.ProfileRequest{Devices: entry(ids("iccid", global)), ServicePlan: "GLOBAL1GB"})
	if v := h.dev(0); v.State != "suspended" {
		t.Fatalf("after profile_suspend: %s", v.State)
	}
	if err := h.s.UpdateDevice(d.EID, DevicePatch{State: ptr("active")}); err != nil {
		t.Fatal(err)
	}
	if v := h.dev(0); v.State != "active" || v.Profiles[profGlobal].State != "active" || v.ICCID != global {
		t.Fatalf("after PATCH active: %+v", v)
	}
	_, lr, _ := h.listV1(tsapi.DeviceListRequest{DeviceID: &tsapi.DeviceID{Kind: "eid", ID: d.EID}})
	if st := lr.Devices[0].State(); st != tsapi.StateActive {
		t.Fatalf("v1 list state %s", st)
	}
}

// -preactivated above -devices is refused with an error that says why, rather than clamped.
func TestPreactivatedMoreThanDevices(t *testing.T) {
	o := testOptions()
	o.Devices, o.Preactivated = 3, 4
	if s, err := New(o); err == nil || !strings.Contains(err.Error(), "only 3 devices") {
		if s != nil {
			s.Close()
		}
		t.Fatalf("New accepted 4 preactivated of 3 devices: %v", err)
	}
	o.Preactivated = 3
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, d := range s.Devices() {
		if d.State != "active" || d.ServicePlan != "M2M4GB" || d.MDN == "" {
			t.Fatalf("preactivated device %+v", d)
		}
	}
}
