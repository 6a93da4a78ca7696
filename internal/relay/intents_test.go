package relay_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store"
	"github.com/fleetform/terraform-provider-thingspace/internal/relayapi"
)

// apiRaw calls the API with a raw body and returns the status and the answer's bytes.
func (e *env) apiRaw(method, path, token, body string) (int, []byte) {
	e.t.Helper()
	code, _, b := e.apiCall(method, path, token, strings.NewReader(body))
	return code, b
}

const bodyHash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

func intentBody(account, action string, devices ...[]store.DeviceKey) relayapi.IntentWrite {
	return relayapi.IntentWrite{Account: account, Action: action, Devices: apiDevices(devices), BodySHA256: bodyHash}
}

func (e *env) putIntent(id string, body relayapi.IntentWrite, token string) (int, relayapi.Intent) {
	e.t.Helper()
	var out relayapi.Intent
	code, _ := e.apiDo("PUT", "/v1/intents/"+id, token, body, &out)
	return code, out
}

func (e *env) patchIntent(id string, ch relayapi.IntentChange, token string) (int, relayapi.Intent) {
	e.t.Helper()
	var out relayapi.Intent
	code, _ := e.apiDo("PATCH", "/v1/intents/"+id, token, ch, &out)
	return code, out
}

func (e *env) lookup(token string, devices ...[]store.DeviceKey) relayapi.Lookup {
	e.t.Helper()
	var out relayapi.Lookup
	if code, _ := e.apiDo("POST", "/v1/devices/lookup", token, relayapi.LookupRequest{Devices: apiDevices(devices)}, &out); code != 200 {
		e.t.Fatalf("lookup: %d", code)
	}
	if len(out.Devices) != len(devices) {
		e.t.Fatalf("lookup: %d records for %d devices", len(out.Devices), len(devices))
	}
	return out
}

func jsonKeys(t *testing.T, b []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// TestIntentWire: the intent endpoints' shapes, answers and validation, as the provider relies on
// them.
func TestIntentWire(t *testing.T) {
	e := newEnv(t, nil)
	before := time.Now().UTC()
	code, raw := e.apiRaw("PUT", "/v1/intents/plan:0001.a-b_c", apiToken,
		`{"account":"acme","action":"serviceplan","body_sha256":"`+bodyHash+`",
		  "devices":[[{"kind":"EID","id":"E1"},{"kind":"iccid","id":"I1"},{"kind":"imei","id":""}],[{"kind":"eid","id":"E2"}]]}`)
	if code != http.StatusCreated {
		t.Fatalf("PUT: %d %s", code, raw)
	}
	if got, want := jsonKeys(t, raw), []string{"account", "action", "attempt", "body_sha256", "created_at", "devices", "intent_id",
		"reason", "request_id", "state", "supersedes", "updated_at"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("intent keys %v, want %v", got, want)
	}
	var in relayapi.Intent
	json.Unmarshal(raw, &in)
	wantDevs := [][]store.DeviceKey{{K("eid", "E1"), K("iccid", "I1")}, {K("eid", "E2")}}
	if in.IntentID != "plan:0001.a-b_c" || in.Account != "acme" || in.Action != "serviceplan" || in.BodySHA256 != bodyHash ||
		in.Attempt != 1 || in.State != "open" || in.RequestID != "" || in.Reason != "" || in.Supersedes != "" ||
		!reflect.DeepEqual(in.Devices, apiDevices(wantDevs)) || in.CreatedAt.Before(before.Add(-time.Second)) || !in.UpdatedAt.Equal(in.CreatedAt) {
		t.Fatalf("created intent %+v", in)
	}
	if _, err := time.Parse(time.RFC3339Nano, strings.Trim(string(mustField(t, raw, "created_at")), `"`)); err != nil {
		t.Fatalf("created_at is not RFC 3339: %v", err)
	}

	// An idempotent retry (devices in another order, another attempt): 200 and the stored intent.
	retry := intentBody("acme", "serviceplan", []store.DeviceKey{K("eid", "E2")}, []store.DeviceKey{K("iccid", "I1"), K("eid", "E1")})
	retry.Attempt = 3
	code, again := e.putIntent("plan:0001.a-b_c", retry, apiToken)
	if code != http.StatusOK || !reflect.DeepEqual(again, in) {
		t.Fatalf("retry: %d %+v, want 200 %+v", code, again, in)
	}
	// Anything else under the same id: 409.
	other := intentBody("acme", "activate", wantDevs...)
	if code, _ := e.putIntent("plan:0001.a-b_c", other, apiToken); code != http.StatusConflict {
		t.Fatalf("conflicting PUT: %d", code)
	}
	var got relayapi.Intent
	if code, _ := e.apiDo("GET", "/v1/intents/plan:0001.a-b_c", apiToken, nil, &got); code != 200 || !reflect.DeepEqual(got, in) {
		t.Fatalf("GET: %d %+v", code, got)
	}
	if code, _ := e.apiDo("GET", "/v1/intents/nope", apiToken, nil, nil); code != http.StatusNotFound {
		t.Fatalf("GET unknown: %d", code)
	}

	t.Run("validation", func(t *testing.T) {
		many := make([][]store.DeviceKey, relayapi.MaxLookupDevices+1)
		for i := range many {
			many[i] = []store.DeviceKey{K("eid", fmt.Sprint(i))}
		}
		dev := []store.DeviceKey{K("eid", "E1")}
		for name, tc := range map[string]struct {
			id   string
			body relayapi.IntentWrite
		}{
			"id with a slash encoded": {"a%2Fb", intentBody("acme", "x", dev)},
			"id with a space":         {"a%20b", intentBody("acme", "x", dev)},
			"id too long":             {strings.Repeat("a", 129), intentBody("acme", "x", dev)},
			"no account":              {"v1", intentBody("", "x", dev)},
			"no action":               {"v2", intentBody("acme", "", dev)},
			"no devices":              {"v3", intentBody("acme", "x")},
			"a device without id":     {"v4", intentBody("acme", "x", dev, []store.DeviceKey{K("eid", "")})},
			"identifier without kind": {"v5", intentBody("acme", "x", []store.DeviceKey{K("", "E1")})},
			"too many devices":        {"v6", intentBody("acme", "x", many...)},
			"upper-case hash":         {"v7", relayapi.IntentWrite{Account: "acme", Action: "x", Devices: apiDevices([][]store.DeviceKey{dev}), BodySHA256: strings.ToUpper(bodyHash)}},
			"no hash":                 {"v8", relayapi.IntentWrite{Account: "acme", Action: "x", Devices: apiDevices([][]store.DeviceKey{dev})}},
			"negative attempt":        {"v9", relayapi.IntentWrite{Account: "acme", Action: "x", Devices: apiDevices([][]store.DeviceKey{dev}), BodySHA256: bodyHash, Attempt: -1}},
			"supersedes itself":       {"v10", relayapi.IntentWrite{Account: "acme", Action: "x", Devices: apiDevices([][]store.DeviceKey{dev}), BodySHA256: bodyHash, Supersedes: "v10"}},
		} {
			if code, _ := e.apiDo("PUT", "/v1/intents/"+tc.id, apiToken, tc.body, nil); code != http.StatusBadRequest {
				t.Errorf("%s: %d, want 400", name, code)
			}
		}
		if code, _ := e.apiRaw("PUT", "/v1/intents/v11", apiToken, `{"account":`); code != http.StatusBadRequest {
			t.Errorf("broken JSON: %d", code)
		}
		if code, _ := e.apiRaw("PUT", "/v1/intents/v12", apiToken, `{"account":"`+strings.Repeat("x", 17<<20)+`"}`); code != http.StatusRequestEntityTooLarge {
			t.Errorf("huge body: %d", code)
		}
		if code, _ := e.apiDo("GET", "/v1/intents/v1", apiToken, nil, nil); code != http.StatusNotFound {
			t.Errorf("a refused write was stored: %d", code)
		}
	})

	t.Run("transitions", func(t *testing.T) {
		if code, out := e.patchIntent("plan:0001.a-b_c", relayapi.IntentChange{State: "accepted", RequestID: "REQ-1"}, apiToken); code != 200 ||
			out.State != "accepted" || out.RequestID != "REQ-1" || out.UpdatedAt.Before(out.CreatedAt) {
			t.Fatalf("accept: %d %+v", code, out)
		}
		// Registered as PUT /v1/requests would: the account, action and devices of the intent.
		r := e.request("REQ-1")
		if r.Account != "acme" || r.Action != "serviceplan" || r.Expected != 2 || r.State != "pending" {
			t.Fatalf("registered request %+v", r)
		}
		if code, out := e.patchIntent("plan:0001.a-b_c", relayapi.IntentChange{State: "accepted", RequestID: "REQ-1"}, apiToken); code != 200 || out.State != "accepted" {
			t.Fatalf("repeated accept: %d %+v", code, out)
		}
		for _, ch := range []relayapi.IntentChange{{State: "accepted", RequestID: "REQ-2"}, {State: "resolved"}, {State: "refused", Reason: "x"}} {
			if code, raw := e.apiRaw("PATCH", "/v1/intents/plan:0001.a-b_c", apiToken, mustJSON(ch)); code != http.StatusConflict ||
				!strings.Contains(string(raw), "already accepted") {
				t.Fatalf("change of an accepted intent %+v: %d %s", ch, code, raw)
			}
		}
		if code, _ := e.patchIntent("nope", relayapi.IntentChange{State: "refused"}, apiToken); code != http.StatusNotFound {
			t.Fatalf("unknown intent: %d", code)
		}
		e.putIntent("ref", intentBody("acme", "activate", []store.DeviceKey{K("eid", "E3")}), apiToken)
		for _, bad := range []relayapi.IntentChange{{State: "open"}, {State: "accepted"}, {State: "refused", RequestID: "R"}, {State: "done"},
			{State: "resolved", Reason: strings.Repeat("x", 5000)}} {
			if code, _ := e.patchIntent("ref", bad, apiToken); code != http.StatusBadRequest {
				t.Fatalf("invalid change %+v: %d", bad, code)
			}
		}
		if code, out := e.patchIntent("ref", relayapi.IntentChange{State: "refused", Reason: "400 InvalidPlan"}, apiToken); code != 200 ||
			out.State != "refused" || out.Reason != "400 InvalidPlan" {
			t.Fatalf("refuse: %d %+v", code, out)
		}
		if code, _ := e.patchIntent("ref", relayapi.IntentChange{State: "refused"}, apiToken); code != 200 {
			t.Fatalf("repeated refusal: %d", code)
		}
		e.putIntent("res", intentBody("acme", "activate", []store.DeviceKey{K("eid", "E4")}), apiToken)
		if code, out := e.patchIntent("res", relayapi.IntentChange{State: "resolved", Reason: "callback seen", RequestID: "REQ-seen"}, apiToken); code != 200 ||
			out.State != "resolved" || out.RequestID != "REQ-seen" {
			t.Fatalf("resolve: %d %+v", code, out)
		}
		// A conflicting registration leaves the intent open.
		e.register("REQ-taken", "acme", "activate", []store.DeviceKey{K("eid", "E99")})
		e.putIntent("acc", intentBody("acme", "activate", []store.DeviceKey{K("eid", "E5")}), apiToken)
		if code, _ := e.patchIntent("acc", relayapi.IntentChange{State: "accepted", RequestID: "REQ-taken"}, apiToken); code != http.StatusConflict {
			t.Fatalf("accept with a conflicting request: %d", code)
		}
		if _, out := e.patchIntent("acc", relayapi.IntentChange{State: "resolved", Reason: "gave up"}, apiToken); out.State != "resolved" {
			t.Fatalf("the intent did not stay open after the conflict: %+v", out)
		}
	})

	t.Run("supersedes", func(t *testing.T) {
		dev := []store.DeviceKey{K("eid", "E6")}
		e.putIntent("old", intentBody("acme", "serviceplan", dev), apiToken)
		nb := intentBody("acme", "serviceplan", dev)
		nb.Attempt, nb.Supersedes = 2, "old"
		code, out := e.putIntent("new", nb, apiToken)
		if code != http.StatusCreated || out.Attempt != 2 || out.Supersedes != "old" {
			t.Fatalf("superseding PUT: %d %+v", code, out)
		}
		var old relayapi.Intent
		e.apiDo("GET", "/v1/intents/old", apiToken, nil, &old)
		if old.State != "resolved" || old.Reason != "superseded by new" {
			t.Fatalf("superseded intent %+v", old)
		}
		rec := e.lookup(apiToken, dev).Devices[0]
		if len(rec.OpenIntents) != 1 || rec.OpenIntents[0].IntentID != "new" {
			t.Fatalf("open intents %+v", rec.OpenIntents)
		}
	})
	if e.metric(`thingspace_relay_intents_total{state="written"}`) < 6 || e.metric(`thingspace_relay_intents_total{state="accepted"}`) != 1 ||
		e.metric(`thingspace_relay_intents_total{state="refused"}`) != 1 || e.metric(`thingspace_relay_intents_total{state="resolved"}`) != 3 {
		t.Fatalf("intent metrics: written %v accepted %v refused %v resolved %v", e.metric(`thingspace_relay_intents_total{state="written"}`),
			e.metric(`thingspace_relay_intents_total{state="accepted"}`), e.metric(`thingspace_relay_intents_total{state="refused"}`), e.metric(`thingspace_relay_intents_total{state="resolved"}`))
	}
}

func mustField(t *testing.T, raw []byte, key string) json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m[key]
}

// TestIntentScoping: a token scoped to accounts writes intents of those accounts only, and sees
// only their intents, requests and callbacks.
func TestIntentScoping(t *testing.T) {
	e := newEnv(t, nil)
	dev := []store.DeviceKey{K("eid", "E1")}
	if code, _ := e.putIntent("g1", intentBody("globex", "activate", dev), scopedToken); code != http.StatusForbidden {
		t.Fatalf("scoped token writing another account's intent: %d", code)
	}
	if code, _ := e.putIntent("g1", intentBody("globex", "activate", dev), apiToken); code != http.StatusCreated {
		t.Fatalf("unscoped token: %d", code)
	}
	if code, _ := e.putIntent("a1", intentBody("acme", "activate", dev), scopedToken); code != http.StatusCreated {
		t.Fatalf("scoped token writing its account's intent: %d", code)
	}
	if code, _ := e.apiDo("GET", "/v1/intents/g1", scopedToken, nil, nil); code != http.StatusNotFound {
		t.Fatalf("GET another account's intent: %d", code)
	}
	if code, _ := e.patchIntent("g1", relayapi.IntentChange{State: "refused"}, scopedToken); code != http.StatusNotFound {
		t.Fatalf("PATCH another account's intent: %d", code)
	}
	// Writing the other account's id again through the scoped token conflicts, without showing it.
	if code, raw := e.apiRaw("PUT", "/v1/intents/g1", scopedToken, mustJSON(intentBody("acme", "activate", dev))); code != http.StatusConflict || strings.Contains(string(raw), "globex") {
		t.Fatalf("PUT over another account's intent: %d %s", code, raw)
	}
	// Callbacks of globex (its credentials) for a request nobody registered: a scoped acme token
	// cannot claim the request by accepting an intent with it.
	e.post(strings.NewReplacer("tsuser", "other", "tspass", "otherpass").Replace(cbBody("R-globex", "Success", 1, "eid", "E1")))
	if code, _ := e.patchIntent("a1", relayapi.IntentChange{State: "accepted", RequestID: "R-globex"}, scopedToken); code != http.StatusForbidden {
		t.Fatalf("accepting with another account's request: %d", code)
	}
	e.post(cbBody("R-acme", "Success", 1, "eid", "E1"))
	all := e.lookup(apiToken, dev).Devices[0]
	acme := e.lookup(scopedToken, dev).Devices[0]
	// Two requests nobody registered: each has its own entry in latest.
	if len(all.OpenIntents) != 2 || len(all.Latest) != 2 || len(all.OpenRequests) != 2 {
		t.Fatalf("unscoped record %+v", all)
	}
	if len(acme.OpenIntents) != 1 || acme.OpenIntents[0].IntentID != "a1" || len(acme.OpenRequests) != 1 ||
		acme.OpenRequests[0].RequestID != "R-acme" || len(acme.Latest) != 1 || acme.Latest[0].RequestID != "R-acme" {
		t.Fatalf("scoped record %+v", acme)
	}
	var one relayapi.DeviceRecord
	if code, _ := e.apiDo("GET", "/v1/devices/EID:E1", scopedToken, nil, &one); code != 200 || !reflect.DeepEqual(one, acme) {
		t.Fatalf("GET device: %d %+v, want %+v", code, one, acme)
	}
}

// TestLookupAnswersWhatTheEngineNeeds: an intent whose POST's answer was lost stays open and
// blocks the device; a callback for the device from a request nobody registered, received
// after the intent, is the evidence, reported under action "" with its body; a registered
// request's callbacks are reported under its action.
func TestLookupAnswersWhatTheEngineNeeds(t *testing.T) {
	e := newEnv(t, nil)
	dev := []store.DeviceKey{K("eid", "E1"), K("iccid", "I1"), K("imei", "M1"), K("mdn", "5551234")}
	e.register("R-old", "acme", "activate", []store.DeviceKey{K("eid", "E1"), K("iccid", "I1")})
	e.post(cbBody("R-old", "Success", 1, "eid", "E1"))
	code, in := e.putIntent("sp-1", intentBody("acme", "serviceplan", []store.DeviceKey{K("eid", "E1"), K("iccid", "I1")},
		[]store.DeviceKey{K("eid", "E2")}), apiToken)
	if code != http.StatusCreated {
		t.Fatal(code)
	}
	got := e.lookup(apiToken, dev, []store.DeviceKey{K("eid", "E2")}, []store.DeviceKey{K("eid", "nobody")})
	if got.Now.Before(in.CreatedAt) || time.Since(got.Now) > time.Hour {
		t.Fatalf("now %v (intent created %v)", got.Now, in.CreatedAt)
	}
	r := got.Devices[0]
	if len(r.OpenRequests) != 0 || len(r.OpenIntents) != 1 || r.OpenIntents[0].IntentID != "sp-1" ||
		!reflect.DeepEqual(r.OpenIntents[0].Devices, apiDevices([][]store.DeviceKey{{K("eid", "E1"), K("iccid", "I1")}})) {
		t.Fatalf("record before the evidence %+v", r)
	}
	if len(r.Latest) != 1 || r.Latest[0].Action != "activate" || r.Latest[0].RequestID != "R-old" || r.Latest[0].Status != "succeeded" || !r.Latest[0].Terminal {
		t.Fatalf("latest before the evidence %+v", r.Latest)
	}
	if e2 := got.Devices[1]; len(e2.OpenIntents) != 1 || !reflect.DeepEqual(e2.OpenIntents[0].Devices, apiDevices([][]store.DeviceKey{{K("eid", "E2")}})) {
		t.Fatalf("record of E2 %+v", e2)
	}
	if n := got.Devices[2]; n.OpenRequests == nil || n.OpenIntents == nil || n.Latest == nil || len(n.OpenRequests)+len(n.OpenIntents)+len(n.Latest) != 0 {
		t.Fatalf("record of an unknown device %+v (lists must be empty, not null)", n)
	}

	// The POST's answer was lost; ThingSpace's callbacks come, with the device's ICCID only.
	e.post(cbBody("R-lost", "Warning", 1, "iccid", "I1"))
	e.post(`{"username":"tsuser","password":"tspass","requestId":"R-lost","deviceIds":[{"kind":"Iccid","id":"I1"}],"status":"SUCCESS","servicePlan":"NEWPLAN"}`)
	r = e.lookup(apiToken, dev).Devices[0]
	var ev *relayapi.LatestCallback
	for i := range r.Latest {
		if r.Latest[i].Action == "" {
			ev = &r.Latest[i]
		}
	}
	if ev == nil || ev.RequestID != "R-lost" || ev.Seq != 2 || ev.Status != "succeeded" || !ev.ReceivedAt.After(in.CreatedAt) {
		t.Fatalf("evidence %+v in %+v", ev, r.Latest)
	}
	var body map[string]any
	if err := json.Unmarshal(ev.Body, &body); err != nil || body["servicePlan"] != "NEWPLAN" || body["password"] != nil {
		t.Fatalf("evidence body %s (%v)", ev.Body, err)
	}
	if len(r.OpenIntents) != 1 || len(r.OpenRequests) != 1 || r.OpenRequests[0].RequestID != "R-lost" || r.OpenRequests[0].Action != "" {
		t.Fatalf("record with the evidence %+v", r)
	}
	// The engine resolves the intent with the request it found.
	if code, _ := e.patchIntent("sp-1", relayapi.IntentChange{State: "resolved", RequestID: "R-lost", Reason: "callback after the intent"}, apiToken); code != 200 {
		t.Fatal(code)
	}
	if r = e.lookup(apiToken, dev).Devices[0]; len(r.OpenIntents) != 0 {
		t.Fatalf("resolved intent still open %+v", r.OpenIntents)
	}
	// The single-identifier form answers the record of that identifier alone: R-old's callback
	// named the EID only.
	var one relayapi.DeviceRecord
	if code, _ := e.apiDo("GET", "/v1/devices/iccid:I1", apiToken, nil, &one); code != 200 || len(one.Latest) != 1 || one.Latest[0].RequestID != "R-lost" {
		t.Fatalf("GET device: %d %+v", code, one)
	}
	if code, _ := e.apiDo("GET", "/v1/devices/nokind", apiToken, nil, nil); code != http.StatusBadRequest {
		t.Fatalf("GET device without kind: %d", code)
	}
}

func TestLookupLimits(t *testing.T) {
	e := newEnv(t, nil)
	post := func(body any) int {
		b, _ := json.Marshal(body)
		code, _ := e.apiRaw("POST", "/v1/devices/lookup", apiToken, string(b))
		return code
	}
	if code := post(relayapi.LookupRequest{}); code != http.StatusBadRequest {
		t.Fatalf("no devices: %d", code)
	}
	if code := post(relayapi.LookupRequest{Devices: apiDevices([][]store.DeviceKey{{K("eid", "")}})}); code != http.StatusBadRequest {
		t.Fatalf("a device without id: %d", code)
	}
	devs := make([][]store.DeviceKey, relayapi.MaxLookupDevices)
	for i := range devs {
		devs[i] = []store.DeviceKey{K("eid", fmt.Sprintf("E%05d", i)), K("iccid", fmt.Sprintf("I%05d", i))}
	}
	var out relayapi.Lookup
	if code, _ := e.apiDo("POST", "/v1/devices/lookup", apiToken, relayapi.LookupRequest{Devices: apiDevices(devs)}, &out); code != 200 || len(out.Devices) != len(devs) {
		t.Fatalf("%d devices: %d, %d records", len(devs), code, len(out.Devices))
	}
	if code := post(relayapi.LookupRequest{Devices: apiDevices(append(devs, []store.DeviceKey{K("eid", "one-more")}))}); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("%d devices: %d", len(devs)+1, code)
	}
	if code, _ := e.apiRaw("POST", "/v1/devices/lookup", apiToken, `{"devices":[[{"kind":"eid","id":"`+strings.Repeat("x", 17<<20)+`"}]]}`); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("huge body: %d", code)
	}
	if code, _ := e.apiRaw("POST", "/v1/devices/lookup", "", `{}`); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d", code)
	}
}
