package sim

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

func TestParseFaults(t *testing.T) {
	fs, err := parseFaults("429=0.05,5xx=0.02,5xx-after=0.01,warning=0.1,fail=0.02,dup=0.05,drop=0.01,session-expiry=60s")
	if err != nil {
		t.Fatal(err)
	}
	if fs.rates["429"] != 0.05 || fs.rates["drop"] != 0.01 || fs.durations["session-expiry"].Seconds() != 60 {
		t.Fatalf("%+v", fs)
	}
	for _, bad := range []string{"nope=1", "429=2", "429=x", "session-expiry=abc", "warning", "dup=-0.1"} {
		if _, err := parseFaults(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if fs, err := parseFaults(" "); err != nil || fs.String() != "" {
		t.Fatalf("empty: %v %q", err, fs.String())
	}
}

// The draw depends only on (seed, fault, key, attempt): the same inputs give the same answer,
// another attempt draws again, and the rate is honoured over many keys.
func TestDrawDeterministic(t *testing.T) {
	first := draw(1, 0.5, "fail", "k", 1)
	for i := 0; i < 3; i++ {
		if draw(1, 0.5, "fail", "k", 1) != first || unitHash(1, "fail", "k", 1) != unitHash(1, "fail", "k", 1) {
			t.Fatal("not deterministic")
		}
	}
	differs := false
	for a := 1; a < 20; a++ {
		if draw(1, 0.5, "fail", "k", a) != first {
			differs = true
		}
	}
	if !differs {
		t.Fatal("attempts never draw differently")
	}
	hits := 0
	for i := 0; i < 20000; i++ {
		if draw(7, 0.1, "dup", "dev"+itoa(i), 1) {
			hits++
		}
	}
	if math.Abs(float64(hits)/20000-0.1) > 0.01 {
		t.Fatalf("rate 0.1 drew %d/20000", hits)
	}
	if draw(1, 0, "x", "k", 1) || !draw(1, 1, "x", "k", 1) {
		t.Fatal("rates 0 and 1")
	}
}

func TestFault429(t *testing.T) {
	h := newHarness(t, nil)
	if err := h.s.SetFaults("429=1,retry-after=3s"); err != nil {
		t.Fatal(err)
	}
	body := activateBody(h.dev(0), "M2M4GB")
	body.AccountName = h.s.opts.Account
	b, _ := json.Marshal(body)
	req := h.newReq("POST", "/api/m2m/v1/devices/profile/actions/activate", b)
	resp, err := h.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "3" {
		t.Fatalf("%d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if len(h.s.Stats().Actions) != 0 {
		t.Fatal("a 429 request was applied")
	}
	// At rate 0.5 a retry of the same request eventually gets through (bounded).
	if err := h.s.SetFaults("429=0.5"); err != nil {
		t.Fatal(err)
	}
	got := 0
	for i := 0; i < 40 && got != 200; i++ {
		got, _ = h.call("POST", "/api/m2m/v1/devices/profile/actions/activate", b, true)
	}
	if got != 200 {
		t.Fatal("no retry succeeded at rate 0.5")
	}
}

func TestFault5xx(t *testing.T) {
	h := newHarness(t, nil)
	if err := h.s.SetFaults("5xx=1"); err != nil {
		t.Fatal(err)
	}
	body := activateBody(h.dev(0), "M2M4GB")
	body.AccountName = h.s.opts.Account
	code, b := h.call("POST", "/api/m2m/v1/devices/profile/actions/activate", body, true)
	if code != 500 || !strings.Contains(string(b), "UnexpectedError") {
		t.Fatalf("%d %s", code, b)
	}
	h.idle()
	if len(h.s.Stats().Actions) != 0 || h.dev(0).State != "pre-active" {
		t.Fatal("a 5xx request was applied")
	}
}

func TestFault5xxAfter(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Faults = "5xx-after=1" })
	body := activateBody(h.dev(0), "M2M4GB")
	body.AccountName = h.s.opts.Account
	code, _ := h.call("POST", "/api/m2m/v1/devices/profile/actions/activate", body, true)
	if code != 500 {
		t.Fatalf("status %d", code)
	}
	h.idle()
	if len(h.s.Stats().Actions) != 1 || h.dev(0).State != "active" || len(h.lis.all(t)) != 1 {
		t.Fatal("5xx-after must apply the action and send its callback")
	}
}

func TestFaultWarning(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Faults = "warning=1" })
	_, cbs := h.run("activate", activateBody(h.dev(0), "M2M4GB"))
	if len(cbs) != 2 {
		t.Fatalf("want warning + final, got %d", len(cbs))
	}
	if st, _ := cbs[0].Outcome(tsapi.ActionActivate); st != tsapi.StatusWarning || cbs[0].Status != "warning" {
		t.Fatalf("first: %s %+v", st, cbs[0])
	}
	if st, _ := cbs[1].Outcome(tsapi.ActionActivate); st != tsapi.StatusSucceeded {
		t.Fatalf("second: %s", st)
	}
}

func TestFaultFail(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Faults = "fail=1" })
	d := h.dev(0)
	_, cbs := h.run("activate", activateBody(d, "M2M4GB"))
	cb, st, err := final(t, tsapi.ActionActivate, cbs)
	if st != tsapi.StatusFailed || cb.Status != "Failed" || cb.FaultResponse == nil || err.Code != "DeviceProfileService.REQUEST_FAILED.UnexpectedError" ||
		cb.DeviceIDs.Get("eid") != d.EID {
		t.Fatalf("%s %v %+v", st, err, cb)
	}
	if h.dev(0).State != "pre-active" {
		t.Fatal("a failed device changed state")
	}
	// device_suspend: the failure is device-level, so it is final.
	h2 := newHarness(t, func(o *Options) { o.Preactivated = 1; o.Faults = "fail=1" })
	_, cbs = h2.run("device_suspend", tsapi.ProfileRequest{Devices: entry(ids("eid", h2.dev(0).EID))})
	if _, st, _ := final(t, tsapi.ActionDeviceSuspend, cbs); st != tsapi.StatusFailed {
		t.Fatalf("device_suspend fail: %s", st)
	}
}

func TestFaultDup(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Faults = "dup=1" })
	h.run("activate", activateBody(h.dev(0), "M2M4GB"))
	raw := h.lis.raw()
	if len(raw) != 2 || !bytes.Equal(raw[0], raw[1]) {
		t.Fatalf("want two identical deliveries, got %d", len(raw))
	}
	if st := h.s.Stats().Callbacks; st.Duplicates != 1 || st.Sent != 1 || st.Acknowledged != 1 {
		t.Fatalf("%+v", st)
	}
}

func TestFaultDrop(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Faults = "drop=1" })
	h.run("activate", activateBody(h.dev(0), "M2M4GB"))
	if n := len(h.lis.raw()); n != 0 {
		t.Fatalf("%d callbacks arrived", n)
	}
	if st := h.s.Stats().Callbacks; st.FailedAttempts != 4 || st.Retried != 3 || st.Dropped != 1 || st.Sent != 0 {
		t.Fatalf("%+v", st)
	}
	// At 0.5 some attempts are dropped and re-sent with a higher callbackCount.
	h2 := newHarness(t, func(o *Options) { o.Faults = "drop=0.5" })
	devs := h2.s.Devices()
	var entries []tsapi.DeviceEntry
	for _, d := range devs {
		entries = append(entries, ids("eid", d.EID, "iccid", d.ICCID, "imei", d.IMEI))
	}
	h2.run("activate", tsapi.ProfileRequest{Devices: entries, ServicePlan: "M2M4GB"})
	st := h2.s.Stats().Callbacks
	maxCount := 0
	for _, cb := range h2.lis.all(t) {
		maxCount = max(maxCount, int(cb.CallbackCount))
	}
	if st.Acknowledged+st.Dropped != 20 || maxCount < 2 || st.Retried == 0 {
		t.Fatalf("stats %+v max callbackCount %d", st, maxCount)
	}
}

func TestFaultOffline(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Preactivated = 2; o.Faults = "offline=1" })
	d := h.dev(0)
	_, cbs := h.run("download_enable", tsapi.ProfileRequest{Devices: entry(ids("eid", d.EID, "iccid", d.ICCID)), ServicePlan: "GLOBAL1GB"})
	if len(cbs) != 2 || cbs[0].Status != "warning" {
		t.Fatalf("want warning then failure: %d", len(cbs))
	}
	if _, st, err := final(t, tsapi.ActionDownloadEnable, cbs); st != tsapi.StatusFailed || !strings.Contains(err.Code, "NotReachable") {
		t.Fatalf("%s %v", st, err)
	}
	// An admin call takes a device offline the same way.
	if err := h.s.SetFaults(""); err != nil {
		t.Fatal(err)
	}
	off := false
	if err := h.s.UpdateDevice(h.dev(1).EID, DevicePatch{Online: &off}); err != nil {
		t.Fatal(err)
	}
	d = h.dev(1)
	_, cbs = h.run("download_enable", tsapi.ProfileRequest{Devices: entry(ids("eid", d.EID, "iccid", d.ICCID)), ServicePlan: "GLOBAL1GB"})
	if _, st, _ := final(t, tsapi.ActionDownloadEnable, cbs); st != tsapi.StatusFailed || h.dev(1).Profiles[profGlobal].Status != "NOT_DOWNLOADED" {
		t.Fatalf("offline device downloaded: %s", st)
	}
}

func TestVariantKindAndStatusCase(t *testing.T) {
	h := newHarness(t, nil)
	_, cbs := h.run("activate", activateBody(h.dev(0), "M2M4GB"))
	if cbs[0].DeviceIDs[0].Kind != "Iccid" || cbs[0].Status != "SUCCESS" {
		t.Fatalf("default form: %+v %s", cbs[0].DeviceIDs, cbs[0].Status)
	}
	h2 := newHarness(t, func(o *Options) { o.Faults = "kind-case=1,status-case=1" })
	_, cbs = h2.run("activate", activateBody(h2.dev(0), "M2M4GB"))
	for _, id := range cbs[0].DeviceIDs {
		if id.Kind != strings.ToLower(id.Kind) {
			t.Fatalf("kind %q", id.Kind)
		}
	}
	if cbs[0].Status != "Success" {
		t.Fatalf("status %q", cbs[0].Status)
	}
	if st, _ := cbs[0].Outcome(tsapi.ActionActivate); st != tsapi.StatusSucceeded {
		t.Fatal(st)
	}
}

func TestVariantFaultWithoutDevices(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Faults = "fail=1,fault-nodevices=1" })
	d0, d1 := h.dev(0), h.dev(1)
	_, cbs := h.run("activate", tsapi.ProfileRequest{ServicePlan: "M2M4GB", Devices: []tsapi.DeviceEntry{
		ids("eid", d0.EID, "iccid", d0.ICCID, "imei", d0.IMEI), ids("eid", d1.EID, "iccid", d1.ICCID, "imei", d1.IMEI)}})
	raw := string(h.lis.raw()[0])
	if strings.Contains(raw, "deviceIds") || !strings.Contains(raw, `"faultResponse":{"faultcode":`) {
		t.Fatalf("body %s", raw)
	}
	out := tsapi.ResolveDevices(tsapi.ActionActivate, []tsapi.DeviceIDs{
		{{Kind: "eid", ID: d0.EID}}, {{Kind: "eid", ID: d1.EID}}}, cbs[:1])
	for _, o := range out {
		if o.Status != tsapi.StatusFailed {
			t.Fatalf("a fault without deviceIds must fail every device: %+v", o)
		}
	}
}

func TestVariantFaultInline(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Faults = "fail=1,fault-inline=1" })
	_, cbs := h.run("activate", activateBody(h.dev(0), "M2M4GB"))
	cb, st, err := final(t, tsapi.ActionActivate, cbs)
	if st != tsapi.StatusFailed || cb.FaultResponse != nil || cb.Profile() == nil || cb.Profile().ErrorCode == "" ||
		err.Code != cb.Profile().ErrorCode {
		t.Fatalf("%s %v %+v", st, err, cb)
	}
}

func TestVariantEnableFailed(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Preactivated = 1; o.Faults = "enable-failed=1" })
	d := h.dev(0)
	id, cbs := h.run("download_enable", tsapi.ProfileRequest{Devices: entry(ids("eid", d.EID, "iccid", d.ICCID)), ServicePlan: "GLOBAL1GB"})
	if len(cbs) != 1 || cbs[0].Status != "SUCCESS" {
		t.Fatalf("want a SUCCESS callback, got %+v", cbs)
	}
	if st, err := cbs[0].Outcome(tsapi.ActionDownloadEnable); st != tsapi.StatusFailed || err == nil {
		t.Fatalf("profileStatus %q judged %s", cbs[0].Profile().ProfileStatus, st)
	}
	v := h.dev(0)
	if v.Profiles[profGlobal].Status != "DOWNLOAD_DISABLE" || v.ICCID != d.ICCID {
		t.Fatalf("device %+v", v)
	}
	_, b := h.call("GET", "/api/m2m/v2/accounts/"+h.s.opts.Account+"/requests/"+id+"/status", nil, true)
	if !strings.Contains(string(b), `"status":"Failed"`) {
		t.Fatalf("status %s", b)
	}
}

// A listener that fails the first attempts gets the callback again with a rising
// callbackCount; after four unacknowledged attempts the callback is dropped.
func TestCallbackRetry(t *testing.T) {
	h := newHarness(t, nil)
	h.lis.failFirst = 2
	_, cbs := h.run("activate", activateBody(h.dev(0), "M2M4GB"))
	if len(cbs) != 1 || cbs[0].CallbackCount != 3 || cbs[0].MaxCallbackThreshold != 4 {
		t.Fatalf("%+v", cbs)
	}
	if st := h.s.Stats().Callbacks; st.Sent != 3 || st.Retried != 2 || st.FailedAttempts != 2 || st.Acknowledged != 1 || st.Dropped != 0 {
		t.Fatalf("%+v", st)
	}
	h2 := newHarness(t, nil)
	h2.lis.failFirst = 100
	h2.run("activate", activateBody(h2.dev(0), "M2M4GB"))
	if st := h2.s.Stats().Callbacks; st.Sent != 4 || st.Retried != 3 || st.FailedAttempts != 4 || st.Acknowledged != 0 || st.Dropped != 1 {
		t.Fatalf("%+v", st)
	}
	// A refused connection counts as unacknowledged too.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	h3 := newHarness(t, nil)
	h3.register("http://"+addr+"/cb", "u", "p")
	h3.run("activate", activateBody(h3.dev(0), "M2M4GB"))
	if st := h3.s.Stats().Callbacks; st.FailedAttempts != 4 || st.Dropped != 1 {
		t.Fatalf("%+v", st)
	}
}

// A listener that does not answer in time has not acknowledged: the simulator gives up on the
// attempt (its client time-out, at least a second) and sends the callback again with
// callbackCount 2.
func TestCallbackRetryAfterTimeout(t *testing.T) {
	h := newHarness(t, nil)
	var mu sync.Mutex
	var counts []int
	hung := false
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		cb, err := tsapi.ParseCallback(b)
		if err != nil {
			t.Errorf("callback %s: %v", b, err)
			return
		}
		mu.Lock()
		first := !hung
		hung = true
		counts = append(counts, int(cb.CallbackCount))
		mu.Unlock()
		if first {
			<-r.Context().Done() // hang until the simulator gives up on this attempt
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer slow.Close()
	h.register(slow.URL+"/cb", "u", "p")
	h.action("activate", activateBody(h.dev(0), "M2M4GB"))
	h.idle()
	mu.Lock()
	defer mu.Unlock()
	if len(counts) != 2 || counts[0] != 1 || counts[1] != 2 {
		t.Fatalf("callbackCounts %v, want [1 2]", counts)
	}
	if st := h.s.Stats().Callbacks; st.FailedAttempts != 1 || st.Retried != 1 || st.Acknowledged != 1 || st.Dropped != 0 {
		t.Fatalf("%+v", st)
	}
}
