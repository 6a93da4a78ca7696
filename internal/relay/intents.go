package relay

import (
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store"
	"github.com/fleetform/terraform-provider-thingspace/internal/relayapi"
	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// Write-ahead intents. Before each carrier action the provider writes an intent here (the
// action, every identifier of every device, the body's hash); once ThingSpace accepts the POST
// it attaches the request id. An intent whose outcome is unknown (a 5xx after sending, a
// time-out, a provider killed mid-call) stays open, and an open intent blocks further actions on
// its devices until evidence resolves it. Kept in the relay's store, it outlives the provider
// process: Terraform state written by a killed provider never reaches disk.

// maxReasonBytes caps an intent's reason.
const maxReasonBytes = 4096

var (
	intentIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
	sha256Pattern   = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

func toIntent(in *store.Intent) relayapi.Intent {
	return relayapi.Intent{
		IntentID: in.IntentID, Account: in.Account, Action: in.Action, Devices: wireDevices(in.Devices), BodySHA256: in.BodySHA256,
		Attempt: in.Attempt, Supersedes: in.Supersedes, State: in.State, RequestID: in.RequestID, Reason: in.Reason,
		CreatedAt: in.CreatedAt.UTC(), UpdatedAt: in.UpdatedAt.UTC(),
	}
}

// storeDevices is the API's devices as the store keys them (kinds as sent: the handlers
// normalise and check them).
func storeDevices(devs []tsapi.DeviceIDs) [][]store.DeviceKey {
	out := make([][]store.DeviceKey, len(devs))
	for i, d := range devs {
		out[i] = make([]store.DeviceKey, len(d))
		for j, id := range d {
			out[i][j] = store.DeviceKey(id)
		}
	}
	return out
}

// wireDevices is the store's devices as the API answers them: never null, nor any device.
func wireDevices(devs [][]store.DeviceKey) []tsapi.DeviceIDs {
	out := make([]tsapi.DeviceIDs, len(devs))
	for i, d := range devs {
		out[i] = wireIDs(d)
	}
	return out
}

// wireIDs is one device's identifiers as the API answers them (never null).
func wireIDs(keys []store.DeviceKey) tsapi.DeviceIDs {
	out := make(tsapi.DeviceIDs, len(keys))
	for i, k := range keys {
		out[i] = tsapi.DeviceID(k)
	}
	return out
}

func toDeviceRecord(rec store.DeviceRecord) relayapi.DeviceRecord {
	out := relayapi.DeviceRecord{
		OpenRequests: make([]relayapi.RequestRef, 0, len(rec.OpenRequests)),
		OpenIntents:  make([]relayapi.Intent, 0, len(rec.OpenIntents)),
		Latest:       make([]relayapi.LatestCallback, 0, len(rec.Latest)),
	}
	for _, r := range rec.OpenRequests {
		r.CreatedAt = r.CreatedAt.UTC()
		out.OpenRequests = append(out.OpenRequests, relayapi.RequestRef(r))
	}
	for i := range rec.OpenIntents {
		out.OpenIntents = append(out.OpenIntents, toIntent(&rec.OpenIntents[i]))
	}
	for _, l := range rec.Latest {
		body := json.RawMessage(l.Body)
		if !json.Valid(body) {
			body, _ = json.Marshal(string(l.Body))
		}
		out.Latest = append(out.Latest, relayapi.LatestCallback{Action: l.Action, RequestID: l.RequestID, Seq: l.Seq,
			ReceivedAt: l.ReceivedAt.UTC(), Status: l.Status, Terminal: l.Terminal, Body: body})
	}
	return out
}

// checkDevices normalises kinds in place and checks that every device has an identifier. It
// returns a message for a 400, or "".
func checkDevices(devs [][]store.DeviceKey) string {
	for i, d := range devs {
		ok := false
		for j := range d {
			d[j].Kind = tsapi.NormalizeKind(d[j].Kind)
			if d[j].Kind == "" {
				return "device " + strconv.Itoa(i) + ": identifier without kind"
			}
			if strings.TrimSpace(d[j].ID) != "" {
				ok = true
			}
		}
		if !ok {
			return "device " + strconv.Itoa(i) + " has no identifier"
		}
	}
	return ""
}

// decodeBody decodes a JSON body of at most maxRegistrationBytes; it answers 413 or 400 itself
// and reports whether to go on.
func decodeBody(w http.ResponseWriter, req *http.Request, what string, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, req.Body, maxRegistrationBytes)).Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeJSON(w, http.StatusRequestEntityTooLarge, relayapi.ErrorBody{Error: what + " larger than " + strconv.Itoa(maxRegistrationBytes) + " bytes"})
			return false
		}
		writeJSON(w, http.StatusBadRequest, relayapi.ErrorBody{Error: "invalid " + what + ": " + err.Error()})
		return false
	}
	return true
}

// intentNow is the relay's clock for intents, to the microsecond: both stores keep that much,
// so the answer of a write equals every later read.
func intentNow() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// pathIntentID is the {id} of an intent path, or a 400 answered when it is not an intent id.
func pathIntentID(w http.ResponseWriter, req *http.Request) (string, bool) {
	id := req.PathValue("id")
	if !intentIDPattern.MatchString(id) {
		writeJSON(w, http.StatusBadRequest, relayapi.ErrorBody{Error: "intent id must match " + intentIDPattern.String()})
		return "", false
	}
	return id, true
}

// intentWriteProblem is why a PUT of intent id with this body is refused (400), or "".
func intentWriteProblem(id string, body *relayapi.IntentWrite) string {
	switch {
	case body.Account == "" || body.Action == "":
		return "an intent needs an account and an action"
	case len(body.Devices) == 0:
		return "an intent needs at least one device"
	case len(body.Devices) > relayapi.MaxLookupDevices:
		return "an intent names at most " + strconv.Itoa(relayapi.MaxLookupDevices) + " devices (" + strconv.Itoa(len(body.Devices)) + " given)"
	case !sha256Pattern.MatchString(body.BodySHA256):
		return "body_sha256 must be the lowercase hex SHA-256 of the action's request body (64 characters)"
	case body.Attempt < 0:
		return "attempt must be 1 or more (0 or absent means 1)"
	case body.Supersedes != "" && !intentIDPattern.MatchString(body.Supersedes):
		return "supersedes must be an intent id"
	case body.Supersedes == id:
		return "an intent cannot supersede itself"
	}
	return checkDevices(storeDevices(body.Devices))
}

// intentChangeProblem is why a PATCH with this body is refused (400), or "".
func intentChangeProblem(_ string, body *relayapi.IntentChange) string {
	switch {
	case body.State == store.IntentAccepted && strings.TrimSpace(body.RequestID) == "":
		return `"accepted" needs the request_id ThingSpace answered`
	case body.State == store.IntentRefused && body.RequestID != "":
		return `a "refused" intent has no request_id (ThingSpace started nothing)`
	case body.State != store.IntentAccepted && body.State != store.IntentRefused && body.State != store.IntentResolved:
		return `state must be "accepted", "refused" or "resolved"`
	case len(body.Reason) > maxReasonBytes:
		return "reason longer than " + strconv.Itoa(maxReasonBytes) + " bytes"
	}
	return ""
}

// readIntentRequest reads the {id} of an intent path and the body of a PUT or PATCH, and checks
// both with problem; when they are not valid it has answered (400, or 413 for a body too large)
// and returns false.
func readIntentRequest[B any](w http.ResponseWriter, req *http.Request, what string, problem func(id string, body *B) string) (string, B, bool) {
	var body B
	id, ok := pathIntentID(w, req)
	if !ok || !decodeBody(w, req, what, &body) {
		return "", body, false
	}
	if msg := problem(id, &body); msg != "" {
		writeJSON(w, http.StatusBadRequest, relayapi.ErrorBody{Error: msg})
		return "", body, false
	}
	return id, body, true
}

func (r *Relay) putIntent(w http.ResponseWriter, req *http.Request, accounts []string) {
	id, body, ok := readIntentRequest(w, req, "intent body", intentWriteProblem)
	if !ok {
		return
	}
	devices := storeDevices(body.Devices)
	if len(accounts) > 0 && !slices.Contains(accounts, body.Account) {
		writeJSON(w, http.StatusForbidden, relayapi.ErrorBody{Error: "this token may not write intents of account " + strconv.Quote(body.Account)})
		return
	}
	start := time.Now()
	res, err := r.st.PutIntent(req.Context(), store.Intent{
		IntentID: id, Account: body.Account, Action: body.Action, Devices: devices, BodySHA256: body.BodySHA256,
		Attempt: body.Attempt, Supersedes: body.Supersedes, CreatedAt: intentNow(),
	})
	r.m.storeDuration.WithLabelValues("put_intent").Observe(time.Since(start).Seconds())
	switch {
	case errors.Is(err, store.ErrInvalid):
		writeJSON(w, http.StatusBadRequest, relayapi.ErrorBody{Error: err.Error()})
		return
	case errors.Is(err, store.ErrConflict):
		msg := "intent " + strconv.Quote(id) + " was written with another account, action, devices or body_sha256"
		if body.Supersedes != "" {
			msg += ", or it supersedes an intent of another account"
		}
		writeJSON(w, http.StatusConflict, relayapi.ErrorBody{Error: msg})
		return
	case err != nil:
		r.storeUnavailable(w, "put_intent", err)
		return
	}
	code := http.StatusOK
	if res.Created {
		code = http.StatusCreated
		r.m.intents.WithLabelValues("written").Inc()
		r.log.Debug("intent written", "intent_id", id, "account", body.Account, "action", body.Action,
			"devices", len(body.Devices), "attempt", res.Intent.Attempt, "supersedes", body.Supersedes)
	}
	if res.Superseded {
		r.m.intents.WithLabelValues(store.IntentResolved).Inc()
		r.log.Debug("intent superseded", "intent_id", body.Supersedes, "by", id)
	}
	writeJSON(w, code, toIntent(res.Intent))
}

func (r *Relay) patchIntent(w http.ResponseWriter, req *http.Request, accounts []string) {
	id, body, ok := readIntentRequest(w, req, "intent change", intentChangeProblem)
	if !ok {
		return
	}
	if body.State == store.IntentAccepted && len(accounts) > 0 {
		// As for PUT /v1/requests: a request that callbacks of another account created must not
		// be handed to this token by registering it.
		rq, err := r.summary(req.Context(), body.RequestID, nil)
		switch {
		case errors.Is(err, store.ErrGone):
		case err != nil:
			r.storeUnavailable(w, "request", err)
			return
		case rq.State != store.StateUnknown && rq.Account != "" && !slices.Contains(accounts, rq.Account):
			writeJSON(w, http.StatusForbidden, relayapi.ErrorBody{Error: "request " + strconv.Quote(body.RequestID) + " belongs to an account this token may not see"})
			return
		}
	}
	start := time.Now()
	res, err := r.st.UpdateIntent(req.Context(), id, store.IntentChange{
		State: body.State, RequestID: body.RequestID, Reason: body.Reason, At: intentNow(),
	}, accounts)
	r.m.storeDuration.WithLabelValues("update_intent").Observe(time.Since(start).Seconds())
	switch {
	case errors.Is(err, store.ErrInvalid):
		writeJSON(w, http.StatusBadRequest, relayapi.ErrorBody{Error: err.Error()})
		return
	case errors.Is(err, store.ErrNotFound):
		writeJSON(w, http.StatusNotFound, relayapi.ErrorBody{Error: "no intent " + strconv.Quote(id)})
		return
	case errors.Is(err, store.ErrIntentClosed):
		msg := "intent " + strconv.Quote(id) + " is no longer open"
		if cur, gerr := r.st.Intent(req.Context(), id, accounts); gerr == nil {
			msg = "intent " + strconv.Quote(id) + " is already " + cur.State
			if cur.RequestID != "" {
				msg += " (request " + strconv.Quote(cur.RequestID) + ")"
			}
		}
		writeJSON(w, http.StatusConflict, relayapi.ErrorBody{Error: msg + "; only the same change may be repeated"})
		return
	case errors.Is(err, store.ErrConflict):
		writeJSON(w, http.StatusConflict, relayapi.ErrorBody{Error: "request " + strconv.Quote(body.RequestID) +
			" is registered with another account, action or devices; the intent stays open"})
		return
	case err != nil:
		r.storeUnavailable(w, "update_intent", err)
		return
	}
	if res.Changed {
		r.m.intents.WithLabelValues(body.State).Inc()
		r.log.Debug("intent "+body.State, "intent_id", id, "request_id", body.RequestID)
		if body.State == store.IntentAccepted {
			r.actions.put(body.RequestID, res.Intent.Action, true)
			r.hub.notify(body.RequestID) // the registration may have made the request terminal
		}
	}
	writeJSON(w, http.StatusOK, toIntent(res.Intent))
}

func (r *Relay) getIntent(w http.ResponseWriter, req *http.Request, accounts []string) {
	id := req.PathValue("id")
	start := time.Now()
	in, err := r.st.Intent(req.Context(), id, accounts)
	r.m.storeDuration.WithLabelValues("intent").Observe(time.Since(start).Seconds())
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeJSON(w, http.StatusNotFound, relayapi.ErrorBody{Error: "no intent " + strconv.Quote(id)})
		return
	case err != nil:
		r.storeUnavailable(w, "intent", err)
		return
	}
	writeJSON(w, http.StatusOK, toIntent(in))
}

// lookup reads the records of devices (already checked) and answers them with the relay's
// clock, taken before the read: everything the answer shows was committed by then or later.
func (r *Relay) lookup(w http.ResponseWriter, req *http.Request, devices [][]store.DeviceKey, accounts []string) (time.Time, []store.DeviceRecord, bool) {
	now := time.Now().UTC()
	start := time.Now()
	recs, err := r.st.LookupDevices(req.Context(), devices, accounts)
	r.m.storeDuration.WithLabelValues("lookup").Observe(time.Since(start).Seconds())
	if err != nil {
		r.storeUnavailable(w, "lookup", err)
		return now, nil, false
	}
	return now, recs, true
}

func (r *Relay) postLookup(w http.ResponseWriter, req *http.Request, accounts []string) {
	var body relayapi.LookupRequest
	if !decodeBody(w, req, "lookup body", &body) {
		return
	}
	devices := storeDevices(body.Devices)
	switch {
	case len(body.Devices) == 0:
		writeJSON(w, http.StatusBadRequest, relayapi.ErrorBody{Error: "a lookup needs at least one device"})
		return
	case len(body.Devices) > relayapi.MaxLookupDevices:
		writeJSON(w, http.StatusRequestEntityTooLarge, relayapi.ErrorBody{Error: "a lookup takes at most " + strconv.Itoa(relayapi.MaxLookupDevices) +
			" devices (" + strconv.Itoa(len(body.Devices)) + " given); split it"})
		return
	}
	if msg := checkDevices(devices); msg != "" {
		writeJSON(w, http.StatusBadRequest, relayapi.ErrorBody{Error: msg})
		return
	}
	now, recs, ok := r.lookup(w, req, devices, accounts)
	if !ok {
		return
	}
	out := relayapi.Lookup{Now: now, Devices: make([]relayapi.DeviceRecord, len(recs))}
	for i, rec := range recs {
		out.Devices[i] = toDeviceRecord(rec)
	}
	writeJSON(w, http.StatusOK, out)
}

func (r *Relay) getDevice(w http.ResponseWriter, req *http.Request, accounts []string) {
	kind, id, ok := strings.Cut(req.PathValue("key"), ":")
	if !ok || kind == "" || id == "" {
		writeJSON(w, http.StatusBadRequest, relayapi.ErrorBody{Error: "device must be kind:id, e.g. eid:8904..."})
		return
	}
	_, recs, ok := r.lookup(w, req, [][]store.DeviceKey{{{Kind: tsapi.NormalizeKind(kind), ID: id}}}, accounts)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, toDeviceRecord(recs[0]))
}
