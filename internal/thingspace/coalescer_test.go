package thingspace

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func eidDevice(i int) DeviceIDs {
	return DeviceIDs{{Kind: KindEID, ID: fmt.Sprintf("8904903200000100000000000%07d", i)},
		{Kind: KindICCID, ID: fmt.Sprintf("8914800000%010d", i)}, {Kind: KindIMEI, ID: fmt.Sprintf("49015420%07d", i)}}
}

func activateBody(plan string, d DeviceIDs) ProfileRequest {
	return ActivateRequest{Devices: Devices(d), AccountName: testAccount, ServicePlan: plan}.Body()
}

// runParticipants begins n participants, then submits them all concurrently.
func runParticipants(t *testing.T, co *Coalescer, n int, body func(i int) ProfileRequest) ([][]AcceptedRequest, []error) {
	t.Helper()
	parts := make([]*Participant, n)
	for i := range parts {
		parts[i] = co.Begin()
	}
	res := make([][]AcceptedRequest, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i], errs[i] = parts[i].Submit(context.Background(), ActionActivate, body(i))
		}()
	}
	wg.Wait()
	return res, errs
}

func TestCoalescerMergesConcurrentCallersIntoOneCall(t *testing.T) {
	f := newFake(t)
	co := f.client(t).NewCoalescer(time.Minute) // the window never fires: the batch goes when all 20 submitted
	var mu sync.Mutex
	var accepted []AcceptedRequest
	co.OnAccepted = func(_ context.Context, a Action, account string, r AcceptedRequest) {
		mu.Lock()
		defer mu.Unlock()
		if a != ActionActivate || account != testAccount {
			t.Errorf("OnAccepted(%s, %s)", a, account)
		}
		accepted = append(accepted, r)
	}
	res, errs := runParticipants(t, co, 20, func(i int) ProfileRequest { return activateBody("M2M4GB", eidDevice(i)) })
	calls := f.recorded()
	if len(calls) != 1 || len(calls[0].Body.Devices) != 20 {
		t.Fatalf("POSTs = %d (devices in the first: %d), want one call with 20 devices", len(calls), len(calls[0].Body.Devices))
	}
	for i := range 20 {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if len(res[i]) != 1 || res[i][0].RequestID != "req-1" || len(res[i][0].Devices) != 1 ||
			res[i][0].Devices[0].DeviceIDs.Get(KindEID) != eidDevice(i).Get(KindEID) {
			t.Fatalf("caller %d got %+v", i, res[i])
		}
	}
	if len(accepted) != 1 || len(accepted[0].Devices) != 20 {
		t.Fatalf("OnAccepted saw %+v, want one request with all 20 devices", accepted)
	}
}

func TestCoalescerSeparatesDifferentBodies(t *testing.T) {
	f := newFake(t)
	co := f.client(t).NewCoalescer(time.Minute)
	_, errs := runParticipants(t, co, 6, func(i int) ProfileRequest {
		return activateBody([]string{"M2M4GB", "M2M10GB"}[i%2], eidDevice(i))
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	calls := f.recorded()
	if len(calls) != 2 {
		t.Fatalf("POSTs = %d, want 2 (one per plan)", len(calls))
	}
	for _, c := range calls {
		if len(c.Body.Devices) != 3 {
			t.Fatalf("a call carried %d devices, want 3", len(c.Body.Devices))
		}
	}
}

func TestCoalescerDoneCallerDoesNotHoldTheBatch(t *testing.T) {
	f := newFake(t)
	co := f.client(t).NewCoalescer(time.Hour)
	adopter := co.Begin()
	p := co.Begin()
	done := make(chan error, 1)
	go func() {
		_, err := p.Submit(context.Background(), ActionActivate, activateBody("M2M4GB", eidDevice(1)))
		done <- err
	}()
	// The batch waits for the adopter (announced, still coming) until it withdraws.
	adopter.Done()
	adopter.Done() // idempotent
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := len(f.recorded()); got != 1 {
		t.Fatalf("POSTs = %d", got)
	}
}

func TestCoalescerWindowBoundsTheWait(t *testing.T) {
	f := newFake(t)
	co := f.client(t).NewCoalescer(20 * time.Millisecond)
	slow := co.Begin() // announced, never submits within the window
	defer slow.Done()
	_, err := co.Submit(context.Background(), ActionActivate, activateBody("M2M4GB", eidDevice(1)))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(f.recorded()); got != 1 {
		t.Fatalf("POSTs = %d", got)
	}
}

func TestCoalescerErrorNamingOneDeviceFailsOnlyThatCaller(t *testing.T) {
	f := newFake(t)
	bad := eidDevice(3).Get(KindICCID)
	f.onAction = func(_ int, _ string, body ProfileRequest, w http.ResponseWriter) bool {
		for _, d := range body.Devices {
			if d.DeviceIDs.Get(KindICCID) == bad {
				writeJSON(w, 400, ErrorResponse{ErrorCode: "DeviceService.INPUT_INVALID.Device.Identifier.Invalid",
					ErrorMessage: "Invalid ICCID " + bad})
				return true
			}
		}
		return false
	}
	co := f.client(t).NewCoalescer(time.Minute)
	res, errs := runParticipants(t, co, 8, func(i int) ProfileRequest { return activateBody("M2M4GB", eidDevice(i)) })
	for i := range 8 {
		if i == 3 {
			if errs[i] == nil || !strings.Contains(errs[i].Error(), bad) {
				t.Fatalf("the bad device's caller got %v", errs[i])
			}
			continue
		}
		if errs[i] != nil || len(res[i]) != 1 {
			t.Fatalf("batch-mate %d failed: %v %+v", i, errs[i], res[i])
		}
	}
	calls := f.recorded()
	if len(calls) != 2 || len(calls[1].Body.Devices) != 7 {
		t.Fatalf("POSTs = %d, want the batch, then the 7 others", len(calls))
	}
}

func TestCoalescerOutcomeUnknownIsNotResent(t *testing.T) {
	f := newFake(t)
	f.onAction = func(_ int, _ string, _ ProfileRequest, w http.ResponseWriter) bool {
		writeJSON(w, 504, map[string]string{"message": "gateway timeout"})
		return true
	}
	co := f.client(t).NewCoalescer(time.Minute)
	_, errs := runParticipants(t, co, 5, func(i int) ProfileRequest { return activateBody("M2M4GB", eidDevice(i)) })
	for _, err := range errs {
		if !IsOutcomeUnknown(err) {
			t.Fatalf("err = %v, want outcome unknown for every caller", err)
		}
	}
	if got := len(f.recorded()); got != 1 {
		t.Fatalf("POSTs = %d, want 1: an action whose outcome is unknown is never sent again", got)
	}
}

func TestCoalescerCancelledCallerLeavesAnUnsentBatch(t *testing.T) {
	f := newFake(t)
	co := f.client(t).NewCoalescer(time.Hour)
	holder := co.Begin() // keeps the batch open
	ctx, cancel := context.WithCancel(context.Background())
	p := co.Begin()
	errc := make(chan error, 1)
	go func() {
		_, err := p.Submit(ctx, ActionActivate, activateBody("M2M4GB", eidDevice(1)))
		errc <- err
	}()
	for range 200 {
		co.mu.Lock()
		n := len(co.batches)
		co.mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	holder.Done()
	if got := len(f.recorded()); got != 0 {
		t.Fatalf("a cancelled caller's device was sent (%d POSTs)", got)
	}
}

func TestCoalescerSplitsAtBulkSize(t *testing.T) {
	f := newFake(t)
	co := f.client(t, func(c *Config) { c.BulkSize = 4 }).NewCoalescer(time.Minute)
	res, errs := runParticipants(t, co, 10, func(i int) ProfileRequest { return activateBody("M2M4GB", eidDevice(i)) })
	ids := map[string]int{}
	for i := range 10 {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		ids[res[i][0].RequestID]++
	}
	total := 0
	for _, c := range f.recorded() {
		if len(c.Body.Devices) > 4 {
			t.Fatalf("a call carried %d devices over the bulk size 4", len(c.Body.Devices))
		}
		total += len(c.Body.Devices)
	}
	if total != 10 {
		t.Fatalf("devices sent = %d, want 10 (each exactly once)", total)
	}
}
