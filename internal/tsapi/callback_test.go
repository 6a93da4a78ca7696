package tsapi

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func loadSeed(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "seeds", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Every callback example of the seeds parses, names its device, and succeeds.
func TestParseSeedCallbacks(t *testing.T) {
	for _, tc := range []struct {
		file, action                 string
		wantEID, wantState, wantRole string
	}{
		{"callback_activate.json", "activate", "32-digit EID", "ACTIVE", "LEAD"},
		{"callback_download_enable.json", "download_enable", "32-digit EID", "ACTIVE", "LOCAL"},
		{"callback_enable_local.json", "enable", "666456789123456789123456784008", "Active", ""},
		{"callback_serviceplan.json", "serviceplan", "32-digit EID", "ACTIVE", "LOCAL"},
		{"callback_profile_resume.json", "profile_resume", "32-digit EID", "ACTIVE", "LOCAL"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			cb, err := ParseCallback(loadSeed(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if cb.RequestID == "" {
				t.Fatal("no request id")
			}
			if got := cb.Identifiers().Get("eid"); got != tc.wantEID {
				t.Errorf("eid = %q, want %q", got, tc.wantEID)
			}
			p := cb.Profile()
			if p == nil || p.State != tc.wantState || p.ProfileRole != tc.wantRole {
				t.Fatalf("profile = %+v", p)
			}
			if NormalizeState(p.State) != StateActive {
				t.Errorf("state %q does not normalise to active", p.State)
			}
			if cb.CallbackCount != 1 || cb.MaxCallbackThreshold != 4 {
				t.Errorf("counts = %d/%d", cb.CallbackCount, cb.MaxCallbackThreshold)
			}
			status, cbErr := cb.Outcome(Action(tc.action))
			if status != StatusSucceeded || cbErr != nil {
				t.Fatalf("outcome = %s, %v; want succeeded", status, cbErr)
			}
		})
	}
	// The local enable example carries the device credential; the parser keeps it (the relay
	// redacts it before storing).
	cb, _ := ParseCallback(loadSeed(t, "callback_enable_local.json"))
	if cb.Profile().DeviceCredential == nil || cb.Profile().DeviceCredential.Username != "2022326360@vzw4g.com" {
		t.Fatalf("deviceCredential = %+v", cb.Profile().DeviceCredential)
	}
	if cb.Profile().SmsrOid != "1.3.6.1.4.1.31746.1.500.200.101.5" {
		t.Fatalf("smsrOid = %q", cb.Profile().SmsrOid)
	}
}

func TestParseCallbackVariants(t *testing.T) {
	cases := map[string]struct {
		body   string
		status CallbackStatus
		code   string
		eid    string
	}{
		"fault with devices": {`{"requestId":"r","deviceIds":[{"id":"E1","kind":"eid"}],"faultResponse":{"faultcode":"DeviceProfileService.REQUEST_FAILED.DeviceNotFound","faultstring":"no such device"},"status":"Failed","callbackCount":1,"maxCallbackThreshold":4}`,
			StatusFailed, "DeviceProfileService.REQUEST_FAILED.DeviceNotFound", "E1"},
		"fault SDK Failure":    {`{"requestId":"r","deviceIds":[{"id":"E1","kind":"EID"}],"status":"Failure"}`, StatusFailed, "", "E1"},
		"fault without status": {`{"requestId":"r","deviceIds":[{"id":"E1","kind":"eid"}],"faultResponse":{"faultcode":"X.Y.Z","faultstring":"z"}}`, StatusFailed, "X.Y.Z", "E1"},
		"error inside profile": {`{"requestId":"r","deviceIds":[{"id":"E1","kind":"Eid"}],"deviceResponse":{"deviceProfileResponse":{"errorCode":"DeviceProfileService.REQUEST_FAILED.DeviceState.Invalid","errorMessage":"bad state"}},"status":"SUCCESS"}`,
			StatusFailed, "DeviceProfileService.REQUEST_FAILED.DeviceState.Invalid", "E1"},
		"warning":              {`{"requestId":"r","deviceIds":[{"id":"E1","kind":"eid"}],"status":"warning"}`, StatusWarning, "", "E1"},
		"WARNING upper":        {`{"requestId":"r","deviceIds":[{"id":"E1","kind":"eid"}],"status":"WARNING"}`, StatusWarning, "", "E1"},
		"Success mixed":        {`{"requestId":"r","deviceIds":[{"id":"E1","kind":"EID"}],"status":"Success","callbackCount":"2","maxCallbackThreshold":"4"}`, StatusSucceeded, "", "E1"},
		"legacy PascalCase":    {`{"RequestId":"r","Device":[{"Kind":"Eid","Identifier":"E1"}],"Status":"Success"}`, StatusSucceeded, "", "E1"},
		"array of arrays":      {`{"requestId":"r","devices":[[{"kind":"eid","id":"E1"}]],"status":"Success"}`, StatusSucceeded, "", "E1"},
		"unknown status waits": {`{"requestId":"r","deviceIds":[{"id":"E1","kind":"eid"}],"status":"InProgress"}`, StatusPending, "", "E1"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cb, err := ParseCallback([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if got := cb.Identifiers().Get("eid"); got != tc.eid {
				t.Errorf("eid = %q", got)
			}
			status, cbErr := cb.Outcome(ActionActivate)
			if status != tc.status {
				t.Fatalf("status = %s, want %s", status, tc.status)
			}
			if tc.code != "" && (cbErr == nil || cbErr.Code != tc.code) {
				t.Fatalf("error = %v, want code %s", cbErr, tc.code)
			}
			if status == StatusFailed && (cbErr == nil || cbErr.Error() == "") {
				t.Fatal("a failure carries no error text")
			}
		})
	}
}

func TestParseCallbackRejects(t *testing.T) {
	for name, body := range map[string]string{
		"not json": `hello`, "array": `[1,2]`, "no request id": `{"status":"Success"}`, "blank request id": `{"requestId":"  "}`,
	} {
		if _, err := ParseCallback([]byte(body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ParseCallback([]byte(`{"username":"u","password":"p","hello":1}`)); err != ErrNotCallback {
		t.Errorf("authenticated non-callback: err = %v, want ErrNotCallback", err)
	}
}

func TestDownloadEnableJudgedByProfileStatus(t *testing.T) {
	var seed map[string]any
	if err := json.Unmarshal(loadSeed(t, "callback_download_enable.json"), &seed); err != nil {
		t.Fatal(err)
	}
	for ps, want := range map[string]CallbackStatus{
		"ENABLE": StatusSucceeded, "DOWNLOAD_ENABLE": StatusSucceeded, "enable": StatusSucceeded,
		"ENABLE_FAILED": StatusFailed, "DOWNLOAD_DISABLE": StatusFailed, "": StatusFailed,
	} {
		seed["deviceResponse"].(map[string]any)["deviceProfileResponse"].(map[string]any)["profileStatus"] = ps
		b, _ := json.Marshal(seed)
		cb, err := ParseCallback(b)
		if err != nil {
			t.Fatal(err)
		}
		got, cbErr := cb.Outcome(ActionDownloadEnable)
		if got != want {
			t.Errorf("profileStatus %q: %s, want %s", ps, got, want)
		}
		if want == StatusFailed && (cbErr == nil || !strings.Contains(cbErr.Message, "not enabled")) {
			t.Errorf("profileStatus %q: error %v should say the profile was not enabled", ps, cbErr)
		}
		// Other actions do not judge by profileStatus.
		if got, _ := cb.Outcome(ActionServicePlan); got != StatusSucceeded {
			t.Errorf("serviceplan with profileStatus %q: %s", ps, got)
		}
	}
}

func TestResolveDevices(t *testing.T) {
	devA := DeviceIDs{{Kind: "eid", ID: "A"}, {Kind: "iccid", ID: "IA"}}
	devB := DeviceIDs{{Kind: "eid", ID: "B"}, {Kind: "iccid", ID: "IB"}}
	parse := func(s string) *Callback {
		cb, err := ParseCallback([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return cb
	}
	t.Run("warning then success, matched by iccid in any case", func(t *testing.T) {
		out := ResolveDevices(ActionActivate, []DeviceIDs{devA, devB}, []*Callback{
			parse(`{"requestId":"r","deviceIds":[{"kind":"Iccid","id":"IA"}],"status":"warning"}`),
		})
		if out[0].Status != StatusWarning || out[1].Status != StatusPending {
			t.Fatalf("%+v", out)
		}
		out = ResolveDevices(ActionActivate, []DeviceIDs{devA, devB}, []*Callback{
			parse(`{"requestId":"r","deviceIds":[{"kind":"Iccid","id":"IA"}],"status":"warning"}`),
			parse(`{"requestId":"r","deviceIds":[{"kind":"EID","id":"A"}],"status":"SUCCESS"}`),
		})
		if out[0].Status != StatusSucceeded || out[1].Status != StatusPending {
			t.Fatalf("%+v", out)
		}
	})
	t.Run("late warning does not undo a terminal result; last terminal wins", func(t *testing.T) {
		out := ResolveDevices(ActionActivate, []DeviceIDs{devA}, []*Callback{
			parse(`{"requestId":"r","deviceIds":[{"kind":"eid","id":"A"}],"status":"Failed","faultResponse":{"faultcode":"F","faultstring":"f"}}`),
			parse(`{"requestId":"r","deviceIds":[{"kind":"eid","id":"A"}],"status":"Success"}`),
			parse(`{"requestId":"r","deviceIds":[{"kind":"eid","id":"A"}],"status":"warning"}`),
		})
		if out[0].Status != StatusSucceeded || out[0].Err != nil {
			t.Fatalf("%+v", out[0])
		}
	})
	t.Run("fault without deviceIds fails every device", func(t *testing.T) {
		out := ResolveDevices(ActionActivate, []DeviceIDs{devA, devB}, []*Callback{
			parse(`{"requestId":"r","status":"Failed","faultResponse":{"faultcode":"DeviceProfileService.REQUEST_FAILED.UnexpectedError","faultstring":"boom"}}`),
		})
		for _, o := range out {
			if o.Status != StatusFailed || o.Err == nil || o.Err.Code != "DeviceProfileService.REQUEST_FAILED.UnexpectedError" {
				t.Fatalf("%+v", o)
			}
		}
	})
	t.Run("a callback for another device does not count", func(t *testing.T) {
		out := ResolveDevices(ActionActivate, []DeviceIDs{devA}, []*Callback{
			parse(`{"requestId":"r","deviceIds":[{"kind":"eid","id":"Z"},{"kind":"iccid","id":"IZ"}],"status":"Success"}`),
		})
		if out[0].Status != StatusPending {
			t.Fatalf("%+v", out[0])
		}
	})
	t.Run("device_suspend waits for the device-level callback", func(t *testing.T) {
		profileCB := parse(`{"requestId":"r","deviceIds":[{"kind":"eid","id":"A"},{"kind":"iccid","id":"IA"}],"status":"Success"}`)
		out := ResolveDevices(ActionDeviceSuspend, []DeviceIDs{{{Kind: "eid", ID: "A"}}}, []*Callback{profileCB})
		if out[0].Status.Terminal() {
			t.Fatalf("a per-profile callback ended device_suspend: %+v", out[0])
		}
		out = ResolveDevices(ActionDeviceSuspend, []DeviceIDs{{{Kind: "eid", ID: "A"}}}, []*Callback{
			profileCB, parse(`{"requestId":"r","deviceIds":[{"kind":"eid","id":"A"}],"deviceResponse":{"deviceProfileResponse":{"state":"SUSPEND"}},"status":"Success"}`),
		})
		if out[0].Status != StatusSucceeded {
			t.Fatalf("%+v", out[0])
		}
	})
}

func TestNormalizers(t *testing.T) {
	for in, want := range map[string]DeviceState{
		"ACTIVE": StateActive, "Active": StateActive, "active": StateActive, "Activate": StateActive,
		"Suspend": StateSuspended, "SUSPEND": StateSuspended, "Deactive": StateDeactive, "DEACTIVATED": StateDeactive,
		"Pre-active": StatePreActive, "PRE_ACTIVE": StatePreActive, "PENDING_ACTIVATION": StatePendingActivation,
		"pending resume": StatePendingResume, "weird": StateUnknown,
	} {
		if got := NormalizeState(in); got != want {
			t.Errorf("NormalizeState(%q) = %q, want %q", in, got, want)
		}
	}
	if !StatePendingActivation.Pending() || StateActive.Pending() {
		t.Error("Pending()")
	}
	for in, want := range map[string]CallbackStatus{"SUCCESS": StatusSucceeded, "Success": StatusSucceeded, "Failed": StatusFailed, "Failure": StatusFailed, "warning": StatusWarning, "": StatusPending} {
		if got := NormalizeStatus(in); got != want {
			t.Errorf("NormalizeStatus(%q) = %q", in, got)
		}
	}
}

// FuzzParseCallback: the parser never panics, and whatever it accepts has a request id.
func FuzzParseCallback(f *testing.F) {
	for _, name := range []string{"callback_activate.json", "callback_download_enable.json", "callback_enable_local.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", "seeds", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"RequestId":"r","Device":[[{"Kind":"Eid","Identifier":"1"}]],"callbackCount":"x"}`))
	f.Add([]byte(`{"requestId":"r","deviceResponse":null,"faultResponse":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		cb, err := ParseCallback(b)
		if err != nil {
			return
		}
		if strings.TrimSpace(cb.RequestID) == "" {
			t.Fatal("accepted a callback without request id")
		}
		_, _ = cb.Outcome(ActionDownloadEnable)
		_ = cb.Identifiers()
		_ = ResolveDevices(ActionDeviceSuspend, []DeviceIDs{{{Kind: "eid", ID: "1"}}}, []*Callback{cb})
	})
}

// A callback logged by a caller shows no secret: neither the listener's password ThingSpace
// copies into it nor a device credential.
func TestLoggedCallbackHidesSecrets(t *testing.T) {
	var buf strings.Builder
	log := slog.New(slog.NewTextHandler(&buf, nil))
	cb, err := ParseCallback(loadSeed(t, "callback_enable_local.json"))
	if err != nil {
		t.Fatal(err)
	}
	cb.Password = "listener-pw"
	cb.Profile().DeviceCredential.Password = "device-secret"
	log.Info("callback", "cb", cb)
	out := buf.String()
	for _, secret := range []string{"listener-pw", "device-secret"} {
		if strings.Contains(out, secret) {
			t.Fatalf("log shows %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{"password=(redacted)", "request_id=" + cb.RequestID} {
		if !strings.Contains(out, want) {
			t.Fatalf("log lacks %q:\n%s", want, out)
		}
	}
}
