package thingspace

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// inventory is an account's devices behind the fake's v1 list: pages of pageSize devices in
// DeviceId order, and single reads by deviceId. It counts both kinds of request.
type inventory struct {
	mu       sync.Mutex
	devices  []tsapi.Device
	pageSize int
	// gate, when set, holds every listing page request (after its answer was taken) until
	// it is closed; started receives one value per page request.
	gate    chan struct{}
	started chan struct{}
	// fail answers listing pages with this ThingSpace error when set.
	fail *tsapi.ErrorResponse

	pages, singles atomic.Int32
}

func invEID(i int) string   { return fmt.Sprintf("890490320000010000000000%08d", i) }
func invICCID(i int) string { return fmt.Sprintf("8914800000%010d", i) }

func newInventory(f *fakeThingSpace, n, pageSize int) *inventory {
	inv := &inventory{pageSize: pageSize, started: make(chan struct{}, 1000)}
	for i := range n {
		inv.devices = append(inv.devices, tsapi.Device{AccountName: testAccount,
			DeviceIDs:           tsapi.DeviceIDs{{Kind: "eid", ID: invEID(i)}, {Kind: "iccid", ID: invICCID(i)}},
			CarrierInformations: []tsapi.CarrierInformation{{CarrierName: "Verizon Wireless", ServicePlan: "M2M4GB", State: "active"}},
			ExtendedAttributes:  []tsapi.KeyValue{{Key: "DeviceId", Value: fmt.Sprint(i + 1)}}})
	}
	f.onList = inv.serve
	return inv
}

// hold makes the listing pages wait until the returned channel is closed.
func (inv *inventory) hold() chan struct{} {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	inv.gate = make(chan struct{})
	for len(inv.started) > 0 {
		<-inv.started // so that the test's next receive is a page requested from now on
	}
	return inv.gate
}

// failWith makes the listing pages answer err.
func (inv *inventory) failWith(err tsapi.ErrorResponse) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	inv.fail = &err
}

// setPlan changes device i's plan, as an action taking effect would.
func (inv *inventory) setPlan(i int, plan string) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	inv.devices[i].CarrierInformations = []tsapi.CarrierInformation{{CarrierName: "Verizon Wireless", ServicePlan: plan, State: "active"}}
}

// changePlan sends the action that moves inventory device i to plan M2M10GB through c (which
// then drops the account's snapshot); the inventory itself changes only with setPlan.
func changePlan(t *testing.T, c *Client, i int) {
	t.Helper()
	if _, err := c.ChangeServicePlan(context.Background(), tsapi.ServicePlanRequest{Devices: Devices(tsapi.DeviceIDs{
		{Kind: tsapi.KindEID, ID: invEID(i)}, {Kind: tsapi.KindICCID, ID: invICCID(i)}}), AccountName: testAccount, ServicePlan: "M2M10GB"}); err != nil {
		t.Fatal(err)
	}
}

func (inv *inventory) serve(body tsapi.DeviceListRequest, w http.ResponseWriter) bool {
	inv.mu.Lock()
	if body.DeviceID != nil {
		inv.singles.Add(1)
		var out []tsapi.Device
		for _, d := range inv.devices {
			if d.DeviceIDs.Matches(tsapi.DeviceIDs{*body.DeviceID}) {
				out = append(out, *cloneDevice(&d))
			}
		}
		inv.mu.Unlock()
		writeJSON(w, 200, tsapi.DeviceListResponse{Devices: out})
		return true
	}
	inv.pages.Add(1)
	var page []tsapi.Device
	for i := int(body.LargestDeviceIDSeen); i < len(inv.devices) && len(page) < inv.pageSize; i++ {
		page = append(page, *cloneDevice(&inv.devices[i]))
	}
	more := int(body.LargestDeviceIDSeen)+len(page) < len(inv.devices)
	gate, fail := inv.gate, inv.fail
	inv.mu.Unlock()
	inv.started <- struct{}{}
	if gate != nil {
		<-gate
	}
	if fail != nil {
		writeJSON(w, 400, fail)
		return true
	}
	status := 200
	if more {
		status = 202
	}
	writeJSON(w, status, tsapi.DeviceListResponse{HasMoreData: more, Devices: page})
	return true
}

func eidID(i int) tsapi.DeviceID { return tsapi.DeviceID{Kind: tsapi.KindEID, ID: invEID(i)} }

// waitFor polls cond (under the coalescer's lock) until it holds; the test's deadline bounds it.
func waitFor(t *testing.T, rc *ReadCoalescer, cond func() bool) {
	t.Helper()
	for {
		rc.mu.Lock()
		ok := cond()
		rc.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// listed makes reads of the test account go to listings at once (no single reads first).
func listed(rc *ReadCoalescer) *ReadCoalescer {
	rc.singles = 0
	return rc
}

func TestReadCoalescerFirstTwoDevicesSingleThenOneListing(t *testing.T) {
	f := newFake(t)
	inv := newInventory(f, 250, 100) // three pages
	rc := f.client(t).Reads()
	ctx := context.Background()
	// One profile looked at again and again stays on single reads; so does a second one.
	for _, i := range []int{0, 0, 0, 1, 1} {
		d, err := rc.Device(ctx, testAccount, eidID(i), time.Now())
		if err != nil || d.DeviceIDs.Get(tsapi.KindEID) != invEID(i) {
			t.Fatalf("read %d: %v %+v", i, err, d)
		}
	}
	if s, p := inv.singles.Load(), inv.pages.Load(); s != 5 || p != 0 {
		t.Fatalf("single reads %d, listing pages %d; want 5 and 0 while only two devices were asked", s, p)
	}
	// 50 concurrent readers of other devices, all asking for data fetched after t0: one
	// listing serves them, whether they join the batch, the running listing or its snapshot.
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := rc.Device(ctx, testAccount, eidID(2+i*4), t0)
			if err == nil && d.DeviceIDs.Get(tsapi.KindEID) != invEID(2+i*4) {
				err = fmt.Errorf("got %s", d.DeviceIDs.Get(tsapi.KindEID))
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("reader %d: %v", i, err)
		}
	}
	if s, p := inv.singles.Load(), inv.pages.Load(); s != 5 || p != 3 {
		t.Fatalf("single reads %d, listing pages %d; want 5 and one listing of 3 pages", s, p)
	}
	// Later reads that accept data from t0 on are served by the snapshot, by ICCID as well.
	devs, err := rc.Devices(ctx, testAccount, []tsapi.DeviceID{{Kind: "ICCID", ID: invICCID(249)}, eidID(7)}, t0)
	if err != nil || devs[0].DeviceIDs.Get(tsapi.KindEID) != invEID(249) || devs[1].DeviceIDs.Get(tsapi.KindEID) != invEID(7) {
		t.Fatalf("snapshot read: %v %+v", err, devs)
	}
	if p := inv.pages.Load(); p != 3 {
		t.Fatalf("listing pages %d, want 3: the snapshot should have served the read", p)
	}
	// Each caller gets its own copy.
	devs[0].CarrierInformations[0].ServicePlan = "CHANGED"
	again, _ := rc.Device(ctx, testAccount, eidID(249), t0)
	if again.ServicePlan() != "M2M4GB" {
		t.Fatal("a caller's change reached the snapshot")
	}
}

func TestReadCoalescerBoundAfterListingStartNeedsAnotherListing(t *testing.T) {
	f := newFake(t)
	inv := newInventory(f, 20, 2000)
	rc := listed(f.client(t).Reads())
	ctx := context.Background()
	gate := inv.hold()
	first := make(chan *tsapi.Device, 1)
	go func() {
		d, err := rc.Device(ctx, testAccount, eidID(3), time.Now())
		if err != nil {
			t.Error(err)
		}
		first <- d
	}()
	<-inv.started // the first listing's page was taken: it started before what follows
	inv.setPlan(3, "M2M10GB")
	second := make(chan *tsapi.Device, 1)
	go func() {
		d, err := rc.Device(ctx, testAccount, eidID(3), time.Now())
		if err != nil {
			t.Error(err)
		}
		second <- d
	}()
	// The second reader waits for a listing of its own (it does not join the running one).
	waitFor(t, rc, func() bool { a := rc.accounts[testAccount]; return a.next != nil && a.next.waiters == 1 })
	close(gate)
	if d := <-first; d == nil || d.ServicePlan() != "M2M4GB" {
		t.Fatalf("first reader got %+v, want the device as the first listing saw it", d)
	}
	if d := <-second; d == nil || d.ServicePlan() != "M2M10GB" {
		t.Fatalf("second reader got %+v, want the device as listed after it asked", d)
	}
	if p := inv.pages.Load(); p != 2 {
		t.Fatalf("listings %d, want 2", p)
	}
}

func TestReadCoalescerActionInvalidatesSnapshot(t *testing.T) {
	f := newFake(t)
	inv := newInventory(f, 20, 2000)
	c := f.client(t)
	rc := listed(c.Reads())
	ctx := context.Background()
	refresh := func() time.Time { return time.Now().Add(-rc.TTL()) }
	if _, err := rc.Device(ctx, testAccount, eidID(1), time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Device(ctx, testAccount, eidID(2), refresh()); err != nil {
		t.Fatal(err)
	}
	if p := inv.pages.Load(); p != 1 {
		t.Fatalf("listings %d, want 1: a refresh within the TTL is served by the snapshot", p)
	}
	changePlan(t, c, 2)
	inv.setPlan(2, "M2M10GB")
	d, err := rc.Device(ctx, testAccount, eidID(2), refresh())
	if err != nil || d.ServicePlan() != "M2M10GB" {
		t.Fatalf("after the action: %v %+v, want the device listed again", err, d)
	}
	if p := inv.pages.Load(); p != 2 {
		t.Fatalf("listings %d, want 2: the action must drop the snapshot", p)
	}

	// A listing that started before an action serves nobody who asks after it, even a
	// refresh whose bound its start would satisfy.
	gate := inv.hold()
	before := make(chan error, 1)
	go func() {
		_, err := rc.Device(ctx, testAccount, eidID(4), time.Now())
		before <- err
	}()
	<-inv.started
	changePlan(t, c, 5)
	inv.setPlan(5, "M2M10GB")
	after := make(chan *tsapi.Device, 1)
	go func() {
		d, err := rc.Device(ctx, testAccount, eidID(5), refresh())
		if err != nil {
			t.Error(err)
		}
		after <- d
	}()
	waitFor(t, rc, func() bool { a := rc.accounts[testAccount]; return a.next != nil && a.next.waiters == 1 })
	close(gate)
	if err := <-before; err != nil {
		t.Fatal(err)
	}
	if d := <-after; d == nil || d.ServicePlan() != "M2M10GB" {
		t.Fatalf("reader after the action got %+v", d)
	}
	if p := inv.pages.Load(); p != 4 {
		t.Fatalf("listings %d, want 4", p)
	}
}

func TestReadCoalescerCancelledReaderDoesNotFailOthers(t *testing.T) {
	f := newFake(t)
	inv := newInventory(f, 20, 2000)
	rc := listed(f.client(t).Reads())
	gate := inv.hold()
	t0 := time.Now()
	cctx, cancel := context.WithCancel(context.Background())
	cancelled := make(chan error, 1)
	go func() {
		_, err := rc.Device(cctx, testAccount, eidID(1), t0)
		cancelled <- err
	}()
	other := make(chan error, 1)
	go func() {
		d, err := rc.Device(context.Background(), testAccount, eidID(2), t0)
		if err == nil && d.DeviceIDs.Get(tsapi.KindEID) != invEID(2) {
			err = errors.New("wrong device")
		}
		other <- err
	}()
	<-inv.started
	waitFor(t, rc, func() bool { r := rc.accounts[testAccount].running; return r != nil && r.waiters == 2 })
	cancel()
	if err := <-cancelled; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled reader: %v, want context.Canceled", err)
	}
	close(gate)
	if err := <-other; err != nil {
		t.Fatalf("the other reader failed: %v", err)
	}
	if p := inv.pages.Load(); p != 1 {
		t.Fatalf("listings %d, want 1", p)
	}
}

func TestReadCoalescerDeviceMissingFromListingIsNotFound(t *testing.T) {
	f := newFake(t)
	inv := newInventory(f, 30, 10)
	rc := f.client(t).Reads()
	ctx := context.Background()
	missing := tsapi.DeviceID{Kind: tsapi.KindEID, ID: invEID(999)}
	// On single reads (the first two devices) and from a complete listing alike.
	if _, err := rc.Device(ctx, testAccount, missing, time.Now()); !IsDeviceNotFound(err) {
		t.Fatalf("single read: %v, want not found", err)
	}
	t0 := time.Now()
	for i := range 3 {
		if _, err := rc.Device(ctx, testAccount, eidID(i), t0); err != nil {
			t.Fatal(err)
		}
	}
	if p, s := inv.pages.Load(), inv.singles.Load(); p != 3 || s != 2 {
		t.Fatalf("pages %d, single reads %d; want one listing of 3 pages after 2 single reads", p, s)
	}
	_, err := rc.Device(ctx, testAccount, missing, t0)
	if !IsDeviceNotFound(err) {
		t.Fatalf("read from the snapshot: %v, want not found", err)
	}
	// Read afresh, as the engine does: two devices of a three-page account are read one by
	// one, and the missing one is not found either.
	devs, err := rc.Devices(ctx, testAccount, []tsapi.DeviceID{eidID(29), missing}, time.Now())
	if err != nil || devs[0] == nil || devs[1] != nil {
		t.Fatalf("Devices: %v %+v, want the device and nil", err, devs)
	}
	if p, s := inv.pages.Load(), inv.singles.Load(); p != 3 || s != 4 {
		t.Fatalf("pages %d, single reads %d; want no more pages and 2 more single reads", p, s)
	}
}

func TestReadCoalescerListingErrorReachesEveryReader(t *testing.T) {
	f := newFake(t)
	inv := newInventory(f, 20, 2000)
	rc := listed(f.client(t).Reads())
	gate := inv.hold()
	inv.failWith(tsapi.ErrorResponse{ErrorCode: "UnifiedWebService.INPUT_INVALID.AccountNotFound", ErrorMessage: "no such account"})
	t0 := time.Now()
	const n = 5
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := rc.Device(context.Background(), testAccount, eidID(i), t0)
			errs <- err
		}()
	}
	<-inv.started
	waitFor(t, rc, func() bool { r := rc.accounts[testAccount].running; return r != nil && r.waiters == n })
	close(gate)
	for range n {
		if err := <-errs; !IsCode(err, tsapi.CodeAccountNotFound) {
			t.Fatalf("reader got %v, want the listing's error", err)
		}
	}
	if p := inv.pages.Load(); p != 1 {
		t.Fatalf("listings %d, want 1", p)
	}
}

func TestReadCoalescerLargeAccountFallsBackToSingleReads(t *testing.T) {
	f := newFake(t)
	inv := newInventory(f, 500, 10) // 50 pages
	rc := listed(f.client(t).Reads())
	ctx := context.Background()
	// Three devices wanted, two of them past the pages a listing reads before giving up.
	devs, err := rc.Devices(ctx, testAccount, []tsapi.DeviceID{eidID(5), eidID(300), eidID(499)}, time.Now())
	if err != nil || devs[0] == nil || devs[1] == nil || devs[2] == nil {
		t.Fatalf("%v %+v", err, devs)
	}
	if p, s := inv.pages.Load(), inv.singles.Load(); p != listAbortFloor || s != 2 {
		t.Fatalf("pages %d, single reads %d; want the listing given up after %d pages and 2 single reads", p, s, listAbortFloor)
	}
	// The account is known to be large: a few devices are read one by one, none listed.
	devs, err = rc.Devices(ctx, testAccount, []tsapi.DeviceID{eidID(6), {Kind: tsapi.KindEID, ID: invEID(999)}}, time.Now())
	if err != nil || devs[0] == nil || devs[1] != nil {
		t.Fatalf("%v %+v", err, devs)
	}
	if p, s := inv.pages.Load(), inv.singles.Load(); p != listAbortFloor || s != 4 {
		t.Fatalf("pages %d, single reads %d; want no more pages and 2 more single reads", p, s)
	}
}

func TestReadCoalescerLogsListings(t *testing.T) {
	f := newFake(t)
	newInventory(f, 25, 10)
	rc := listed(f.client(t).Reads())
	ctx, logged := withCapturedLog(slog.LevelDebug)
	if _, err := rc.Devices(ctx, testAccount, []tsapi.DeviceID{eidID(1), eidID(2)}, time.Now()); err != nil {
		t.Fatal(err)
	}
	out := logged.String()
	for _, want := range []string{`msg="listing the account's devices for concurrent reads"`, "devices_wanted=2",
		`msg="listed the account's devices"`, "pages=3", "devices=25", "readers=1"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %s:\n%s", want, out)
		}
	}
}

func TestReadCoalescerFreshBatchSmallerThanTheListingIsReadOneByOne(t *testing.T) {
	f := newFake(t)
	inv := newInventory(f, 45, 10) // five pages
	c := f.client(t)
	rc := listed(c.Reads())
	ctx := context.Background()
	ids := []tsapi.DeviceID{eidID(1), eidID(2), eidID(3), eidID(4), eidID(5)}
	if _, err := rc.Devices(ctx, testAccount, ids, time.Now()); err != nil {
		t.Fatal(err)
	}
	if p, s := inv.pages.Load(), inv.singles.Load(); p != 5 || s != 0 {
		t.Fatalf("pages %d, single reads %d; want one listing of 5 pages", p, s)
	}
	// Fresh reads of fewer devices than pages: one by one (no snapshot could serve them).
	if _, err := rc.Devices(ctx, testAccount, ids[:4], time.Now()); err != nil {
		t.Fatal(err)
	}
	if p, s := inv.pages.Load(), inv.singles.Load(); p != 5 || s != 4 {
		t.Fatalf("pages %d, single reads %d; want 4 single reads", p, s)
	}
	// As many devices as pages: listed.
	if _, err := rc.Devices(ctx, testAccount, ids, time.Now()); err != nil {
		t.Fatal(err)
	}
	if p, s := inv.pages.Load(), inv.singles.Load(); p != 10 || s != 4 {
		t.Fatalf("pages %d, single reads %d; want a second listing", p, s)
	}
	// A refresh of one device after an action is listed: its snapshot serves the refreshes
	// that follow.
	changePlan(t, c, 2)
	for i := range 10 {
		if _, err := rc.Device(ctx, testAccount, eidID(i), time.Now().Add(-rc.TTL())); err != nil {
			t.Fatal(err)
		}
	}
	if p, s := inv.pages.Load(), inv.singles.Load(); p != 15 || s != 4 {
		t.Fatalf("pages %d, single reads %d; want one more listing for the ten refreshes", p, s)
	}
}
