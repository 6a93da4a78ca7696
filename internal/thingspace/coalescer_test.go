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

	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

func eidDevice(i int) tsapi.DeviceIDs {
	return tsapi.DeviceIDs{{Kind: tsapi.KindEID, ID: fmt.Sprintf("8904903200000100000000000%07d", i)},
		{Kind: tsapi.KindICCID, ID: fmt.Sprintf("8914800000%010d", i)}, {Kind: tsapi.KindIMEI, ID: fmt.Sprintf("49015420%07d", i)}}
}

func activateBody(plan string, d tsapi.DeviceIDs) tsapi.ProfileRequest {
	return tsapi.ActivateRequest{Devices: Devices(d), AccountName: testAccount, ServicePlan: plan}.Body()
}

// runParticipants begins n participants, then submits them all concurrently.
func runParticipants(t *testing.T, co *Coalescer, n int, body func(i int) tsapi.ProfileRequest) ([][]AcceptedRequest, []error) {
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
			res[i], errs[i] = parts[i].Submit(context.Background(), tsapi.ActionActivate, body(i))
		}()
	}
	wg.Wait()
	return res, errs
}

func TestCoalescerMergesConcurrentCallersIntoOneCall(t *testing.T) {
	f := newFake(t)
	co := f.client(t).NewCoalescer(time.Minute) // the window never fires: the batch goes when all 20 submitted
	j := &recordingJournal{}
	co.c.SetJournal(j)
	res, errs := runParticipants(t, co, 20, func(i int) tsapi.ProfileRequest { return activateBody("M2M4GB", eidDevice(i)) })
	calls := f.recorded()
	if len(calls) != 1 || len(calls[0].Body.Devices) != 20 {
		t.Fatalf("POSTs = %d (devices in the first: %d), want one call with 20 devices", len(calls), len(calls[0].Body.Devices))
	}
	for i := range 20 {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if len(res[i]) != 1 || res[i][0].RequestID != "req-1" || len(res[i][0].Devices) != 1 ||
			res[i][0].Devices[0].DeviceIDs.Get(tsapi.KindEID) != eidDevice(i).Get(tsapi.KindEID) {
			t.Fatalf("caller %d got %+v", i, res[i])
		}
	}
	if ev := j.log(); len(ev) != 2 || ev[0] != "intend activate 20" || ev[1] != "accepted req-1 20" {
		t.Fatalf("journal = %q, want one intent for the 20 devices, then its acceptance", ev)
	}
}

func TestCoalescerSeparatesDifferentBodies(t *testing.T) {
	f := newFake(t)
	co := f.client(t).NewCoalescer(time.Minute)
	_, errs := runParticipants(t, co, 6, func(i int) tsapi.ProfileRequest {
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
		_, err := p.Submit(context.Background(), tsapi.ActionActivate, activateBody("M2M4GB", eidDevice(1)))
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
	_, err := co.Submit(context.Background(), tsapi.ActionActivate, activateBody("M2M4GB", eidDevice(1)))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(f.recorded()); got != 1 {
		t.Fatalf("POSTs = %d", got)
	}
}

func TestCoalescerErrorNamingOneDeviceFailsOnlyThatCaller(t *testing.T) {
	f := newFake(t)
	bad := eidDevice(3).Get(tsapi.KindICCID)
	f.onAction = func(_ int, _ string, body tsapi.ProfileRequest, w http.ResponseWriter) bool {
		for _, d := range body.Devices {
			if d.DeviceIDs.Get(tsapi.KindICCID) == bad {
				writeJSON(w, 400, tsapi.ErrorResponse{ErrorCode: "DeviceService.INPUT_INVALID.Device.Identifier.Invalid",
					ErrorMessage: "Invalid ICCID " + bad})
				return true
			}
		}
		return false
	}
	co := f.client(t).NewCoalescer(time.Minute)
	res, errs := runParticipants(t, co, 8, func(i int) tsapi.ProfileRequest { return activateBody("M2M4GB", eidDevice(i)) })
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
	f.onAction = func(_ int, _ string, _ tsapi.ProfileRequest, w http.ResponseWriter) bool {
		writeJSON(w, 504, map[string]string{"message": "gateway timeout"})
		return true
	}
	co := f.client(t).NewCoalescer(time.Minute)
	_, errs := runParticipants(t, co, 5, func(i int) tsapi.ProfileRequest { return activateBody("M2M4GB", eidDevice(i)) })
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
		_, err := p.Submit(ctx, tsapi.ActionActivate, activateBody("M2M4GB", eidDevice(1)))
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
	err := <-errc
	if !errors.Is(err, context.Canceled) || !IsNotSent(err) || !strings.Contains(err.Error(), eidDevice(1).Get(tsapi.KindEID)) ||
		strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("err = %v, want a NotSentError naming the device, not %q", err, context.Canceled)
	}
	holder.Done()
	if got := len(f.recorded()); got != 0 {
		t.Fatalf("a cancelled caller's device was sent (%d POSTs)", got)
	}
}

func TestCoalescerSplitsAtBulkSize(t *testing.T) {
	f := newFake(t)
	co := f.client(t, func(c *Config) { c.BulkSize = 4 }).NewCoalescer(time.Minute)
	res, errs := runParticipants(t, co, 10, func(i int) tsapi.ProfileRequest { return activateBody("M2M4GB", eidDevice(i)) })
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

// recordingJournal records the journal calls of a client as short strings.
type recordingJournal struct {
	mu     sync.Mutex
	events []string
	n      int
	// failIntend makes Intend fail.
	failIntend bool
}

func (j *recordingJournal) Intend(_ context.Context, a tsapi.Action, b tsapi.ProfileRequest) (string, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.failIntend {
		return "", errors.New("relay unreachable")
	}
	j.n++
	j.events = append(j.events, fmt.Sprintf("intend %s %d", a, len(b.Devices)))
	return fmt.Sprintf("intent-%d", j.n), nil
}

func (j *recordingJournal) Accepted(_ context.Context, _ string, _ tsapi.Action, b tsapi.ProfileRequest, rid string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.events = append(j.events, fmt.Sprintf("accepted %s %d", rid, len(b.Devices)))
}

func (j *recordingJournal) Refused(_ context.Context, id string, _ error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.events = append(j.events, "refused "+id)
}

func (j *recordingJournal) log() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.events...)
}

// A caller with several devices (the plan assignment, a fleet) whose devices straddle chunks:
// when a later chunk is refused for naming a batch-mate's device, only the devices not yet
// accepted are sent again. Before, every device of the surviving callers was sent again, so the
// devices of the first accepted chunk got the action twice.
func TestCoalescerNeverResendsDevicesAcceptedInAnEarlierChunk(t *testing.T) {
	f := newFake(t)
	bad := eidDevice(4).Get(tsapi.KindICCID)
	f.onAction = func(_ int, _ string, body tsapi.ProfileRequest, w http.ResponseWriter) bool {
		if len(body.Devices) > 2 {
			writeJSON(w, 400, tsapi.ErrorResponse{ErrorCode: "DeviceService.INPUT_INVALID.NumberofDevices", ErrorMessage: "too many devices"})
			return true
		}
		for _, d := range body.Devices {
			if d.DeviceIDs.Get(tsapi.KindICCID) == bad {
				writeJSON(w, 400, tsapi.ErrorResponse{ErrorCode: "DeviceService.INPUT_INVALID.Device.Identifier.Invalid", ErrorMessage: "Invalid ICCID " + bad})
				return true
			}
		}
		return false
	}
	c := f.client(t, func(c *Config) { c.BulkSize = 4 })
	j := &recordingJournal{}
	c.SetJournal(j)
	co := c.NewCoalescer(time.Minute)
	a, b := co.Begin(), co.Begin()
	var wg sync.WaitGroup
	var resA []AcceptedRequest
	var errA, errB error
	wg.Add(2)
	go func() {
		defer wg.Done()
		resA, errA = a.Submit(context.Background(), tsapi.ActionActivate, tsapi.ActivateRequest{
			Devices: Devices(eidDevice(1), eidDevice(2), eidDevice(3)), AccountName: testAccount, ServicePlan: "M2M4GB"}.Body())
	}()
	go func() {
		defer wg.Done()
		_, errB = b.Submit(context.Background(), tsapi.ActionActivate, activateBody("M2M4GB", eidDevice(4)))
	}()
	wg.Wait()
	if errB == nil || !strings.Contains(errB.Error(), bad) {
		t.Fatalf("the bad device's caller got %v", errB)
	}
	sent := map[string]int{}
	for _, call := range f.recorded() {
		if len(call.Body.Devices) > 2 {
			continue // refused for its size: nothing applied
		}
		refused := false
		for _, d := range call.Body.Devices {
			refused = refused || d.DeviceIDs.Get(tsapi.KindICCID) == bad
		}
		if refused {
			continue
		}
		for _, d := range call.Body.Devices {
			sent[d.DeviceIDs.Get(tsapi.KindEID)]++
		}
	}
	for i := 1; i <= 3; i++ {
		if n := sent[eidDevice(i).Get(tsapi.KindEID)]; n != 1 {
			t.Errorf("device %d accepted %d times, want exactly once (accepted: %v)", i, n, sent)
		}
	}
	if errA != nil {
		t.Fatalf("the good caller failed: %v", errA)
	}
	got := 0
	for _, r := range resA {
		got += len(r.Devices)
	}
	if got != 3 {
		t.Fatalf("the good caller heard of %d accepted devices, want 3: %+v", got, resA)
	}
	// Every POST was journaled first; the refused ones were closed, the accepted ones carry ids.
	var intents, accepted, refused int
	for _, e := range j.log() {
		switch {
		case strings.HasPrefix(e, "intend"):
			intents++
		case strings.HasPrefix(e, "accepted"):
			accepted++
		case strings.HasPrefix(e, "refused"):
			refused++
		}
	}
	if posts := len(f.recorded()); intents != posts || accepted+refused != posts {
		t.Fatalf("journal %q for %d POSTs: want one intent per POST, each accepted or refused", j.log(), posts)
	}
}

// An intent that cannot be written stops the POST: an action is never sent unrecorded.
func TestPostActionSendsNothingWhenTheIntentCannotBeRecorded(t *testing.T) {
	f := newFake(t)
	c := f.client(t)
	c.SetJournal(&recordingJournal{failIntend: true})
	_, err := c.PostAction(context.Background(), tsapi.ActionActivate, activateBody("M2M4GB", eidDevice(1)))
	if !IsNotSent(err) || !strings.Contains(err.Error(), "relay unreachable") {
		t.Fatalf("err = %v, want NotSentError with the journal's cause", err)
	}
	if n := len(f.recorded()); n != 0 {
		t.Fatalf("%d POSTs, want none", n)
	}
}

// A 200 whose body cannot be read may have been applied: it is an outcome-unknown error, and
// its intent stays open (neither accepted nor refused).
func TestPostActionUndecodableAnswerIsOutcomeUnknown(t *testing.T) {
	f := newFake(t)
	f.onAction = func(_ int, _ string, _ tsapi.ProfileRequest, w http.ResponseWriter) bool {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(200)
		_, _ = w.Write([]byte(`{"requestId": "req-`))
		return true
	}
	c := f.client(t)
	j := &recordingJournal{}
	c.SetJournal(j)
	_, err := c.PostAction(context.Background(), tsapi.ActionServicePlan, tsapi.ServicePlanRequest{
		Devices: Devices(eidDevice(1)), AccountName: testAccount, ServicePlan: "M2M4GB"}.Body())
	if !IsOutcomeUnknown(err) {
		t.Fatalf("err = %v, want outcome unknown", err)
	}
	if ev := j.log(); len(ev) != 1 || !strings.HasPrefix(ev[0], "intend") {
		t.Fatalf("journal = %q, want only the intent (left open)", ev)
	}
}
