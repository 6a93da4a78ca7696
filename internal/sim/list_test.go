package sim

import (
	"strconv"
	"strings"
	"testing"

	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

func (h *harness) listV1(req tsapi.DeviceListRequest) (int, tsapi.DeviceListResponse, string) {
	h.t.Helper()
	if req.AccountName == "" {
		req.AccountName = h.s.opts.Account
	}
	code, b := h.call("POST", "/api/m2m/v1/devices/actions/list", req, true)
	var lr tsapi.DeviceListResponse
	if code < 300 {
		mustJSON(h.t, b, &lr)
	}
	return code, lr, string(b)
}

func TestListV1Paging(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Preactivated = 5 })
	var seen []string
	var last int64
	codes := []int{}
	for page := 0; page < 10; page++ {
		code, lr, raw := h.listV1(tsapi.DeviceListRequest{MaxNumberOfDevices: 7, LargestDeviceIDSeen: last})
		codes = append(codes, code)
		if code == 202 != lr.HasMoreData {
			t.Fatalf("page %d: status %d with hasMoreData %v", page, code, lr.HasMoreData)
		}
		if strings.Contains(raw, "profileStatus") || strings.Contains(raw, "profileRole") {
			t.Fatalf("the v1 list must not show profile fields: %s", raw)
		}
		for _, d := range lr.Devices {
			seen = append(seen, d.DeviceIDs.Get("eid"))
			n, err := strconv.ParseInt(d.Attribute("DeviceId"), 10, 64)
			if err != nil || n <= last {
				t.Fatalf("DeviceId cursor %q after %d", d.Attribute("DeviceId"), last)
			}
			last = n
		}
		if !lr.HasMoreData {
			break
		}
	}
	if len(seen) != 20 || len(codes) != 3 || codes[0] != 202 || codes[1] != 202 || codes[2] != 200 {
		t.Fatalf("saw %d devices, codes %v", len(seen), codes)
	}
	all := h.s.Devices()
	for i, eid := range seen {
		if all[i].EID != eid {
			t.Fatalf("order: %d %s", i, eid)
		}
	}
}

func TestListV1Filters(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Preactivated = 5 })
	devs := h.s.Devices()
	// By deviceId.
	_, lr, _ := h.listV1(tsapi.DeviceListRequest{DeviceID: &tsapi.DeviceID{Kind: "eid", ID: devs[3].EID}})
	if len(lr.Devices) != 1 || lr.Devices[0].DeviceIDs.Get("iccid") != devs[3].ICCID || lr.Devices[0].State() != tsapi.StateActive ||
		lr.Devices[0].ServicePlan() != "M2M4GB" || lr.Devices[0].DeviceIDs.Get("mdn") != devs[3].MDN || !lr.Devices[0].Connected {
		t.Fatalf("by eid: %+v", lr)
	}
	_, lr, _ = h.listV1(tsapi.DeviceListRequest{DeviceID: &tsapi.DeviceID{Kind: "imei", ID: devs[7].IMEI}})
	if len(lr.Devices) != 1 || lr.Devices[0].State() != tsapi.StatePreActive || lr.Devices[0].DeviceIDs.Get("mdn") != "" {
		t.Fatalf("by imei: %+v", lr)
	}
	code, lr, _ := h.listV1(tsapi.DeviceListRequest{DeviceID: &tsapi.DeviceID{Kind: "eid", ID: "89049032000000000000000000000000"}})
	if code != 200 || len(lr.Devices) != 0 {
		t.Fatalf("unknown eid: %d %+v", code, lr)
	}
	// By identifier filter.
	_, lr, _ = h.listV1(tsapi.DeviceListRequest{Filter: &tsapi.ListFilter{DeviceIdentifierFilters: []tsapi.DeviceIdentifierFilter{{Kind: "iccid", Contains: devs[9].ICCID[10:]}}}})
	if len(lr.Devices) != 1 || lr.Devices[0].DeviceIDs.Get("eid") != devs[9].EID {
		t.Fatalf("by iccid filter: %+v", lr)
	}
	// By state and plan.
	_, lr, _ = h.listV1(tsapi.DeviceListRequest{CurrentState: "active"})
	if len(lr.Devices) != 5 {
		t.Fatalf("active: %d", len(lr.Devices))
	}
	_, lr, _ = h.listV1(tsapi.DeviceListRequest{CurrentState: "pre-active"})
	if len(lr.Devices) != 15 {
		t.Fatalf("pre-active: %d", len(lr.Devices))
	}
	_, lr, _ = h.listV1(tsapi.DeviceListRequest{ServicePlan: "M2M4GB"})
	if len(lr.Devices) != 5 {
		t.Fatalf("plan: %d", len(lr.Devices))
	}
	if code, _, raw := h.listV1(tsapi.DeviceListRequest{ServicePlan: "NOPE"}); code != 400 || !strings.Contains(raw, "NOPE.NotFound") {
		t.Fatalf("unknown plan filter: %d %s", code, raw)
	}
	if code, _, raw := h.listV1(tsapi.DeviceListRequest{AccountName: "0000999999-00001"}); code != 400 || !strings.Contains(raw, "AccountNotFound") {
		t.Fatalf("unknown account: %d %s", code, raw)
	}
	// A Global profile adds a carrier entry after the Verizon line.
	d := devs[0]
	h.run("download_enable", tsapi.ProfileRequest{Devices: entry(ids("eid", d.EID, "iccid", d.ICCID)), ServicePlan: "GLOBAL1GB"})
	_, lr, _ = h.listV1(tsapi.DeviceListRequest{DeviceID: &tsapi.DeviceID{Kind: "eid", ID: d.EID}})
	ci := lr.Devices[0].CarrierInformations
	if len(ci) != 2 || ci[0].ServicePlan != "M2M4GB" || ci[1].ServicePlan != "GLOBAL1GB" || ci[1].State != "active" {
		t.Fatalf("carrier informations %+v", ci)
	}
	// The LEAD ICCID stays first; the Global one follows, and a lookup by it matches.
	global := d.Profiles[profGlobal].ICCID
	if got := lr.Devices[0].DeviceIDs; got.Get("iccid") != d.ICCID || !got.Matches(tsapi.DeviceIDs{{Kind: "iccid", ID: global}}) {
		t.Fatalf("deviceIds %+v", got)
	}
	_, lr, _ = h.listV1(tsapi.DeviceListRequest{DeviceID: &tsapi.DeviceID{Kind: "iccid", ID: global}})
	if len(lr.Devices) != 1 || lr.Devices[0].DeviceIDs.Get("eid") != d.EID {
		t.Fatalf("by global iccid: %+v", lr)
	}
	// Suspension shows as "suspend".
	h.run("device_suspend", tsapi.ProfileRequest{Devices: entry(ids("eid", d.EID))})
	_, lr, _ = h.listV1(tsapi.DeviceListRequest{DeviceID: &tsapi.DeviceID{Kind: "eid", ID: d.EID}})
	if lr.Devices[0].State() != tsapi.StateSuspended || lr.Devices[0].CarrierInformations[0].State != "suspend" {
		t.Fatalf("suspended: %+v", lr.Devices[0].CarrierInformations)
	}
}

// Synchronous validation: ThingSpace rejects these up front, nothing is accepted.
func TestActionSyncErrors(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.BulkLimit = 3 })
	d := h.dev(0)
	good := ids("eid", d.EID, "iccid", d.ICCID, "imei", d.IMEI)
	acct := h.s.opts.Account
	cases := []struct {
		name, action string
		body         any
		code         string
	}{
		{"malformed", "activate", []byte(`{"devices":`), "INPUT_INVALID.RequestUndefined"},
		{"no account", "activate", tsapi.ProfileRequest{Devices: entry(good), ServicePlan: "M2M4GB"}, "INPUT_INVALID.Account.NotDefined"},
		{"unknown account", "activate", tsapi.ProfileRequest{AccountName: "0000999999-00001", Devices: entry(good), ServicePlan: "M2M4GB"}, "REQUEST_FAILED.AccountNotFound"},
		{"no devices", "activate", tsapi.ProfileRequest{AccountName: acct, ServicePlan: "M2M4GB"}, "INPUT_INVALID.Devices.Empty"},
		{"bulk limit", "activate", tsapi.ProfileRequest{AccountName: acct, ServicePlan: "M2M4GB", Devices: []tsapi.DeviceEntry{good, good, good, good}}, "INPUT_INVALID.MaxRequestsExceeded"},
		{"bad kind", "activate", tsapi.ProfileRequest{AccountName: acct, ServicePlan: "M2M4GB", Devices: entry(ids("eid", d.EID, "kind8", "123"))}, "INPUT_INVALID.Device.Kind.Invalid"},
		{"bad id", "activate", tsapi.ProfileRequest{AccountName: acct, ServicePlan: "M2M4GB", Devices: entry(ids("eid", "32-digit EID", "iccid", d.ICCID, "imei", d.IMEI))}, "INPUT_INVALID.Device.Identifier.Invalid"},
		{"missing imei", "activate", tsapi.ProfileRequest{AccountName: acct, ServicePlan: "M2M4GB", Devices: entry(ids("eid", d.EID, "iccid", d.ICCID))}, "INPUT_INVALID.Device.Identifier.Invalid"},
		{"no plan", "activate", tsapi.ProfileRequest{AccountName: acct, Devices: entry(good)}, "INPUT_INVALID.ServicePlan.Required"},
		{"unknown plan", "serviceplan", tsapi.ProfileRequest{AccountName: acct, ServicePlan: "BOGUS", Devices: entry(good)}, "REQUEST_FAILED.BOGUS.NotFound"},
		{"download without plan", "download_enable", tsapi.ProfileRequest{AccountName: acct, Devices: entry(good)}, "INPUT_INVALID.ServicePlan.Required"},
		{"bad smsrOid", "enable", tsapi.ProfileRequest{AccountName: acct, SmsrOid: "abc", Devices: entry(good)}, "INPUT_INVALID.SmsrOid.Invalid"},
		{"device_suspend needs eid", "device_suspend", tsapi.ProfileRequest{AccountName: acct, Devices: entry(ids("iccid", d.ICCID))}, "INPUT_INVALID.Device.Identifier.Invalid"},
	}
	for _, c := range cases {
		code, b := h.call("POST", "/api/m2m/v1/devices/profile/actions/"+c.action, c.body, true)
		var e tsapi.ErrorResponse
		mustJSON(t, b, &e)
		if code != 400 || e.ErrorCode != "UnifiedWebService."+c.code || e.ErrorMessage == "" {
			t.Errorf("%s: %d %s", c.name, code, b)
		}
	}
	if n := len(h.s.Stats().Actions); n != 0 {
		t.Fatalf("%d actions accepted", n)
	}
	// The GIO SDK's array of arrays is accepted.
	nested := `{"accountName":"` + acct + `","devices":[[{"kind":"eid","id":"` + h.dev(1).EID + `"}]]}`
	if code, b := h.call("POST", "/api/m2m/v1/devices/profile/actions/device_suspend", []byte(nested), true); code != 200 {
		t.Fatalf("array of arrays: %d %s", code, b)
	}
	// At the limit it is accepted; the SDK's "ids" key and mixed-case kinds are accepted too.
	body := `{"accountName":"` + acct + `","servicePlan":"M2M4GB","devices":[{"ids":[{"kind":"EID","id":"` + d.EID +
		`"},{"kind":"Iccid","id":"` + d.ICCID + `"},{"kind":"imei","id":"` + d.IMEI + `"}]}]}`
	if code, b := h.call("POST", "/api/m2m/v1/devices/profile/actions/activate", []byte(body), true); code != 200 {
		t.Fatalf("ids variant: %d %s", code, b)
	}
	h.idle()
	if h.dev(0).State != "active" {
		t.Fatal("not activated")
	}
}
