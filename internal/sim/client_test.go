package sim

import (
	"context"
	"testing"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/thingspace"
	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// The project's own ThingSpace client works against the simulator unchanged: token, lazy login,
// re-login on an expired session, retries of 429, actions, the v1 list with paging, request
// status, plans and callback registration.
func TestWithThingSpaceClient(t *testing.T) {
	var clock *fakeClock
	h := newHarness(t, func(o *Options) { clock = withFakeClock(o); o.Preactivated = 3; o.BulkLimit = 4 })
	c, err := thingspace.New(thingspace.Config{BaseURL: h.base, ClientID: "sim-client", ClientSecret: "sim-secret",
		Username: "sim-user", Password: "sim-pass", RequestsPerSecond: 1000, RetryBaseDelay: time.Millisecond, RetryMaxDelay: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	acct := h.s.Account()
	plans, err := c.ServicePlans(ctx, acct)
	if err != nil || len(plans) < 4 {
		t.Fatalf("plans %v %v", plans, err)
	}
	d := h.dev(5)
	res, err := c.Activate(ctx, tsapi.ActivateRequest{AccountName: acct, ServicePlan: "M2M4GB", MdnZipCode: "20001",
		Devices: entry(ids("eid", d.EID, "iccid", d.ICCID, "imei", d.IMEI))})
	if err != nil || len(res.Requests) != 1 {
		t.Fatalf("activate %+v %v", res, err)
	}
	h.idle()
	rs, err := c.RequestStatus(ctx, acct, res.Requests[0].RequestID)
	if err != nil || tsapi.NormalizeStatus(rs.Status) != tsapi.StatusSucceeded || len(rs.SubRequests) != 1 {
		t.Fatalf("status %+v %v", rs, err)
	}
	dev, err := c.GetDevice(ctx, acct, tsapi.DeviceID{Kind: "eid", ID: d.EID})
	if err != nil || dev.State() != tsapi.StateActive || dev.ServicePlan() != "M2M4GB" {
		t.Fatalf("device %+v %v", dev, err)
	}
	if _, err := c.GetDevice(ctx, acct, tsapi.DeviceID{Kind: "eid", ID: "89049032000000000000000000000000"}); !thingspace.IsDeviceNotFound(err) {
		t.Fatalf("unknown device: %v", err)
	}
	n := 0
	if err := c.ListAllDevices(ctx, tsapi.DeviceListRequest{AccountName: acct, MaxNumberOfDevices: 6}, func(tsapi.Device) error { n++; return nil }); err != nil || n != 20 {
		t.Fatalf("list all: %d %v", n, err)
	}
	regs, err := c.ListCallbacks(ctx, acct)
	if err != nil || len(regs) != 1 {
		t.Fatalf("callbacks %+v %v", regs, err)
	}
	// An expired session and 429s are handled by the client.
	if err := h.s.SetFaults("session-expiry=60s,429=0.3,retry-after=0s"); err != nil {
		t.Fatal(err)
	}
	clock.advance(61 * time.Second)
	if _, err := c.GetDevice(ctx, acct, tsapi.DeviceID{Kind: "eid", ID: d.EID}); err != nil {
		t.Fatalf("after session expiry: %v", err)
	}
	// Bulk size: over the limit the client halves and retries.
	_ = h.s.SetFaults("")
	var entries []tsapi.DeviceEntry
	for _, x := range h.s.Devices()[10:20] {
		entries = append(entries, ids("eid", x.EID, "iccid", x.ICCID))
	}
	res, err = c.ChangeServicePlan(ctx, tsapi.ServicePlanRequest{AccountName: acct, ServicePlan: "M2M10GB", Devices: entries})
	if err != nil || len(res.Requests) < 3 {
		t.Fatalf("bulk split %+v %v", res, err)
	}
}
