package sim

import (
	"encoding/json"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// request is one accepted asynchronous request (a profile action or a v2 list).
type request struct {
	id, account string
	action      string // a tsapi.Action, or "list" for the v2 device list
	plan        Plan   // zero when no servicePlan was sent
	smsrOid     string
	acceptedAt  time.Time
	gen         uint64
	jobs        []*job
}

// job is one device of a request: it becomes that device's callback(s).
type job struct {
	req      *request
	ids      tsapi.DeviceIDs // as sent
	dev      int32           // inventory ordinal, -1 when no device matched
	mismatch bool            // identifiers of different devices
	attempt  int             // how many times this (device, action) was requested
	faultKey string
	status   string // Pending, Success, Failed
	warned   bool
	list     []int // v2 list: the profiles to report
}

// Request statuses of the v2 status endpoint.
const (
	statusPending = "Pending"
	statusSuccess = "Success"
	statusFailed  = "Failed"
)

// ActionRecord is one accepted profile action in GET /sim/v1/stats, with every device's state
// at the moment the action was accepted.
type ActionRecord struct {
	RequestID   string         `json:"requestId"`
	Action      string         `json:"action"`
	AccountName string         `json:"accountName"`
	ServicePlan string         `json:"servicePlan,omitempty"`
	AcceptedAt  time.Time      `json:"acceptedAt"`
	Devices     []ActionDevice `json:"devices"`
}

// ActionDevice is a device of an ActionRecord. EID and IMEI come from the inventory when the
// device was found; ICCID is the one sent (else the profile the action targets).
// OpenRequestBefore says whether the device already had a request in flight.
type ActionDevice struct {
	EID                 string `json:"eid"`
	ICCID               string `json:"iccid"`
	IMEI                string `json:"imei"`
	StateBefore         string `json:"stateBefore"`
	ProfileStatusBefore string `json:"profileStatusBefore"`
	// ProfileStateBefore and PlanBefore are the targeted profile's own service state
	// (active, suspended, deactive, pre-active) and plan, so that a test can tell an action sent
	// to a profile already in its target state.
	ProfileStateBefore string `json:"profileStateBefore"`
	PlanBefore         string `json:"planBefore"`
	OpenRequestBefore  bool   `json:"openRequestBefore"`
	Found              bool   `json:"found"`
}

var (
	digitsRe  = regexp.MustCompile(`^[0-9]{3,32}$`)
	hexRe     = regexp.MustCompile(`^[0-9A-Fa-f]{8,18}$`)
	smsrOidRe = regexp.MustCompile(`^[0-9.]{3,46}$`)
)

var knownKinds = map[string]bool{"eid": true, "iccid": true, "imei": true, "mdn": true, "msisdn": true, "meid": true, "esn": true}

// requiredKinds lists the identifiers each device of an action must carry (activate: EID,
// ICCID and IMEI; the others as ThingSpace's pages list them); a missing one is a synchronous
// 400.
var requiredKinds = map[tsapi.Action][]string{
	tsapi.ActionActivate:        {"eid", "iccid", "imei"},
	tsapi.ActionDownloadEnable:  {"eid", "iccid"},
	tsapi.ActionDownload:        {"eid", "iccid"},
	tsapi.ActionDownloadDisable: {"eid", "iccid"},
	tsapi.ActionEnable:          {"eid", "iccid"},
	tsapi.ActionDisable:         {"eid", "iccid"},
	tsapi.ActionDelete:          {"iccid"},
	tsapi.ActionServicePlan:     {"iccid"},
	tsapi.ActionProfileSuspend:  {"iccid"},
	tsapi.ActionProfileResume:   {"iccid"},
	tsapi.ActionDeviceSuspend:   {"eid"},
	tsapi.ActionDeviceResume:    {"eid"},
}

// pendingStates is what the v1 list shows while a request that will change the line's state
// is in flight.
var pendingStates = map[tsapi.Action]string{
	tsapi.ActionActivate:       "PENDING_ACTIVATION",
	tsapi.ActionDeactivate:     "PENDING_DEACTIVATION",
	tsapi.ActionDeviceSuspend:  "PENDING_SUSPEND",
	tsapi.ActionDeviceResume:   "PENDING_RESUME",
	tsapi.ActionProfileSuspend: "PENDING_SUSPEND",
	tsapi.ActionProfileResume:  "PENDING_RESUME",
}

// validateIDs checks the identifiers of one device entry the way ThingSpace does up front.
func validateIDs(ids tsapi.DeviceIDs) (code, msg string) {
	if len(ids) == 0 {
		return "INPUT_INVALID.Device.Identifier.Invalid", "Every device needs at least one {kind, id}."
	}
	for _, id := range ids {
		k := tsapi.NormalizeKind(id.Kind)
		if !knownKinds[k] {
			return "INPUT_INVALID.Device.Kind.Invalid", "Device identifier kind " + quote(id.Kind) + " is not valid."
		}
		ok := digitsRe.MatchString(id.ID)
		if k == "meid" || k == "esn" {
			ok = hexRe.MatchString(id.ID)
		}
		if !ok {
			return "INPUT_INVALID.Device.Identifier.Invalid", "Device identifier " + quote(id.ID) + " of kind " + id.Kind + " is not valid."
		}
	}
	return "", ""
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }

func (s *Simulator) handleAction(w http.ResponseWriter, r *http.Request, c *call) {
	action := tsapi.Action(r.PathValue("action"))
	if !action.Valid() {
		s.handleNoResource(w, r, c)
		return
	}
	req, err := decodeProfileRequest(c.body)
	if err != nil {
		writeM2MError(w, http.StatusBadRequest, svc+"INPUT_INVALID.RequestUndefined", "The request body is not valid: "+err.Error())
		return
	}
	if !s.checkAccount(w, req.AccountName) {
		return
	}
	if len(req.Devices) == 0 {
		writeM2MError(w, http.StatusBadRequest, svc+"INPUT_INVALID.Devices.Empty", "devices must list at least one device.")
		return
	}
	if len(req.Devices) > s.opts.BulkLimit {
		writeM2MError(w, http.StatusBadRequest, svc+"INPUT_INVALID.MaxRequestsExceeded",
			"The request has more than the maximum of "+itoa(s.opts.BulkLimit)+" devices.")
		return
	}
	for _, e := range req.Devices {
		if code, msg := validateIDs(e.DeviceIDs); code != "" {
			writeM2MError(w, http.StatusBadRequest, svc+code, msg)
			return
		}
		for _, k := range requiredKinds[action] {
			if e.DeviceIDs.Get(k) == "" {
				writeM2MError(w, http.StatusBadRequest, svc+"INPUT_INVALID.Device.Identifier.Invalid",
					string(action)+" needs the identifiers "+strings.Join(requiredKinds[action], ", ")+" for every device.")
				return
			}
		}
	}
	var plan Plan
	if req.ServicePlan != "" {
		p, ok := s.planByCode[req.ServicePlan]
		if !ok {
			writeM2MError(w, http.StatusBadRequest, svc+"REQUEST_FAILED."+req.ServicePlan+".NotFound",
				"Service plan "+req.ServicePlan+" was not found for account "+req.AccountName+".")
			return
		}
		plan = p
	}
	if req.SmsrOid != "" && !smsrOidRe.MatchString(req.SmsrOid) {
		writeM2MError(w, http.StatusBadRequest, svc+"INPUT_INVALID.SmsrOid.Invalid", "smsrOid is not a valid object id.")
		return
	}
	switch action {
	case tsapi.ActionActivate, tsapi.ActionServicePlan:
		if plan.Code == "" {
			writeM2MError(w, http.StatusBadRequest, svc+"INPUT_INVALID.ServicePlan.Required", string(action)+" needs a servicePlan.")
			return
		}
	case tsapi.ActionDownloadEnable, tsapi.ActionDownload, tsapi.ActionDownloadDisable:
		if plan.Code == "" && req.SmsrOid == "" {
			writeM2MError(w, http.StatusBadRequest, svc+"INPUT_INVALID.ServicePlan.Required",
				string(action)+" needs a Global servicePlan (Global profiles) or an smsrOid (local profiles).")
			return
		}
	}

	s.mu.Lock()
	rq := &request{id: s.newRequestID(), account: req.AccountName, action: string(action), plan: plan,
		smsrOid: req.SmsrOid, acceptedAt: time.Now(), gen: s.gen}
	rec := ActionRecord{RequestID: rq.id, Action: string(action), AccountName: rq.account, ServicePlan: plan.Code,
		AcceptedAt: rq.acceptedAt, Devices: make([]ActionDevice, len(req.Devices))}
	rq.jobs = make([]*job, len(req.Devices))
	tasks := make([]*task, 0, len(req.Devices))
	for i, e := range req.Devices {
		j := &job{req: rq, ids: e.DeviceIDs, dev: -1, status: statusPending}
		rq.jobs[i] = j
		d, mismatch := s.resolve(e.DeviceIDs)
		ad := ActionDevice{EID: e.DeviceIDs.Get("eid"), ICCID: e.DeviceIDs.Get("iccid"), IMEI: e.DeviceIDs.Get("imei")}
		j.faultKey = firstID(e.DeviceIDs)
		if d != nil {
			j.dev = d.ord
			j.faultKey = d.eid
			k := s.target(action, d, e.DeviceIDs, plan, req.SmsrOid)
			ad.EID, ad.IMEI, ad.Found = d.eid, d.imei, true
			if ad.ICCID == "" {
				ad.ICCID = d.profiles[k].iccid
			}
			ad.StateBefore = string(d.deviceState())
			ad.ProfileStatusBefore = d.profiles[k].status.String()
			ad.ProfileStateBefore = string(normState(d.profiles[k].effState()))
			ad.PlanBefore = d.profiles[k].plan
			ad.OpenRequestBefore = d.inflight > 0
			d.inflight++
			if ps, ok := pendingStates[action]; ok && s.wouldChange(action, d, k) {
				d.pending = ps
			}
		} else {
			j.mismatch = mismatch
		}
		ak := "dev:" + j.faultKey + "|" + string(action)
		s.attempts[ak]++
		j.attempt = s.attempts[ak]
		rec.Devices[i] = ad
		tasks = append(tasks, &task{due: rq.acceptedAt.Add(s.delay(j.faultKey, j.attempt)), gen: rq.gen, job: j})
	}
	s.requests[rq.id] = rq
	s.actionLog = append(s.actionLog, rec)
	s.actionCounts[string(action)]++
	s.mu.Unlock()
	s.sched.pushAll(tasks)
	s.log.Info("action accepted", "action", action, "requestId", rq.id, "devices", len(req.Devices))
	if s.fired(FaultServerAfter, c.failAfter) {
		writeM2MError(w, http.StatusInternalServerError, svc+"REQUEST_FAILED.UnexpectedError", "Internal server error (simulated, request applied)")
		return
	}
	writeJSON(w, http.StatusOK, tsapi.RequestResponse{RequestID: rq.id})
}

// decodeProfileRequest decodes an action body. Besides what tsapi.ProfileRequest accepts
// ("ids" for "deviceIds", "smrsOid" for "smsrOid"), it takes the GIO SDK's "devices" as an array
// of arrays of {kind, id}.
func decodeProfileRequest(body []byte) (tsapi.ProfileRequest, error) {
	var req tsapi.ProfileRequest
	err := json.Unmarshal(body, &req)
	if err == nil {
		return req, nil
	}
	var raw map[string]json.RawMessage
	if json.Unmarshal(body, &raw) != nil {
		return req, err
	}
	var nested []tsapi.DeviceIDs
	if json.Unmarshal(raw["devices"], &nested) != nil {
		return req, err
	}
	delete(raw, "devices")
	rest, _ := json.Marshal(raw)
	req = tsapi.ProfileRequest{}
	if err2 := json.Unmarshal(rest, &req); err2 != nil {
		return req, err
	}
	for _, ids := range nested {
		req.Devices = append(req.Devices, tsapi.DeviceEntry{DeviceIDs: ids})
	}
	return req, nil
}

func firstID(ids tsapi.DeviceIDs) string {
	for _, k := range []string{"eid", "iccid", "imei", "mdn", "msisdn"} {
		if v := ids.Get(k); v != "" {
			return v
		}
	}
	if len(ids) > 0 {
		return ids[0].ID
	}
	return ""
}

// delay draws the callback delay of a device from the seed. Callers hold s.mu.
func (s *Simulator) delay(key string, attempt int) time.Duration {
	lo, hi := s.opts.CallbackDelayMin, s.opts.CallbackDelayMax
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(unitHash(s.opts.Seed, "delay", key, attempt)*float64(hi-lo))
}

// resolve finds the device the identifiers name. eid, iccid, mdn and msisdn must all name the
// same device; an IMEI that names no device is tolerated (a module swap: activate records it).
// Callers hold s.mu.
func (s *Simulator) resolve(ids tsapi.DeviceIDs) (d *device, mismatch bool) {
	for _, id := range ids {
		k := tsapi.NormalizeKind(id.Kind)
		if k != "eid" && k != "iccid" && k != "imei" && k != "mdn" && k != "msisdn" {
			continue
		}
		x := s.lookup(id.ID)
		if x == nil {
			if k == "imei" {
				continue
			}
			return nil, false
		}
		if k == "mdn" || k == "msisdn" {
			if !x.mdnAssigned {
				return nil, false
			}
		}
		if k == "iccid" && x.profileOf(id.ID) < 0 {
			return nil, false
		}
		if k == "imei" && x.imei != id.ID {
			continue
		}
		if d != nil && d != x {
			return nil, true
		}
		d = x
	}
	return d, false
}

// target chooses the profile an action acts on: the one whose ICCID was sent, except that a
// Global servicePlan always means the Global profile, a US plan on activate/serviceplan the
// LEAD profile, and an smsrOid with the LEAD (or no) ICCID the local profile.
func (s *Simulator) target(action tsapi.Action, d *device, ids tsapi.DeviceIDs, plan Plan, smsrOid string) int {
	k := d.profileOf(ids.Get("iccid"))
	switch {
	case plan.Type == PlanGlobal:
		return profGlobal
	case plan.Type == PlanUS && (action == tsapi.ActionActivate || action == tsapi.ActionServicePlan):
		return profLead
	}
	if smsrOid != "" && k <= profLead {
		switch action {
		case tsapi.ActionDownloadEnable, tsapi.ActionDownload, tsapi.ActionDownloadDisable,
			tsapi.ActionEnable, tsapi.ActionDisable, tsapi.ActionDelete:
			return profLocal
		}
	}
	if k < 0 {
		return profLead
	}
	return k
}

// wouldChange reports whether the action is a valid transition right now (so that the v1 list
// shows a PENDING state for it).
func (s *Simulator) wouldChange(action tsapi.Action, d *device, k int) bool {
	st := d.profiles[k].effState()
	switch action {
	case tsapi.ActionActivate:
		return st == statePreActive || st == stateDeactive
	case tsapi.ActionDeactivate:
		return k == profLead && (st == stateActive || st == stateSuspended)
	case tsapi.ActionDeviceSuspend:
		return d.lead().effState() == stateActive
	case tsapi.ActionDeviceResume:
		return d.lead().devSuspended
	case tsapi.ActionProfileSuspend:
		// Global profiles only; the device shows suspended when the enabled profile is.
		return k == profGlobal && st == stateActive && d.enabled() == k
	case tsapi.ActionProfileResume:
		return st == stateSuspended && (k == profLead || d.enabled() == k)
	}
	return false
}

// ---- v1 list (synchronous) ----

const v1PageMax = 2000

func (s *Simulator) handleListV1(w http.ResponseWriter, r *http.Request, c *call) {
	var req tsapi.DeviceListRequest
	if err := json.Unmarshal(c.body, &req); err != nil {
		writeM2MError(w, http.StatusBadRequest, svc+"INPUT_INVALID.RequestUndefined", "The request body is not valid: "+err.Error())
		return
	}
	if req.AccountName != "" && !s.checkAccount(w, req.AccountName) {
		return
	}
	if req.DeviceID != nil {
		if code, msg := validateIDs(tsapi.DeviceIDs{*req.DeviceID}); code != "" {
			writeM2MError(w, http.StatusBadRequest, svc+code, msg)
			return
		}
	}
	if req.Filter != nil {
		for _, f := range req.Filter.DeviceIdentifierFilters {
			if !knownKinds[tsapi.NormalizeKind(f.Kind)] {
				writeM2MError(w, http.StatusBadRequest, svc+"INPUT_INVALID.Device.Kind.Invalid", "Device identifier kind "+quote(f.Kind)+" is not valid.")
				return
			}
		}
	}
	if req.ServicePlan != "" {
		if _, ok := s.planByCode[req.ServicePlan]; !ok {
			writeM2MError(w, http.StatusBadRequest, svc+"REQUEST_FAILED."+req.ServicePlan+".NotFound",
				"Service plan "+req.ServicePlan+" was not found.")
			return
		}
	}
	page := req.MaxNumberOfDevices
	if page <= 0 || page > v1PageMax {
		page = v1PageMax
	}
	wantState := tsapi.StateUnknown
	if req.CurrentState != "" {
		wantState = tsapi.NormalizeState(req.CurrentState)
	}
	s.mu.Lock()
	resp := tsapi.DeviceListResponse{Devices: []tsapi.Device{}}
	match := func(d *device) bool {
		if v1DeviceID(d) <= req.LargestDeviceIDSeen {
			return false
		}
		if req.DeviceID != nil {
			x, _ := s.resolve(tsapi.DeviceIDs{*req.DeviceID})
			if x != d {
				return false
			}
		}
		if req.Filter != nil {
			for _, f := range req.Filter.DeviceIdentifierFilters {
				if !matchesIDFilter(d, f.Kind, f.Contains) {
					return false
				}
			}
		}
		if req.CurrentState != "" && d.deviceState() != wantState {
			return false
		}
		if req.ServicePlan != "" {
			found := false
			for k := range d.profiles {
				if d.profiles[k].plan == req.ServicePlan && d.profiles[k].state != statePreActive {
					found = true
				}
			}
			if !found {
				return false
			}
		}
		return true
	}
	start := 0
	if req.DeviceID != nil {
		// One device: no scan needed.
		if x, _ := s.resolve(tsapi.DeviceIDs{*req.DeviceID}); x != nil && match(x) {
			resp.Devices = append(resp.Devices, s.v1Device(x))
		}
		start = len(s.devices)
	}
	for i := start; i < len(s.devices); i++ {
		d := &s.devices[i]
		if !match(d) {
			continue
		}
		if len(resp.Devices) == page {
			resp.HasMoreData = true
			break
		}
		resp.Devices = append(resp.Devices, s.v1Device(d))
	}
	s.mu.Unlock()
	status := http.StatusOK
	if resp.HasMoreData {
		status = http.StatusAccepted
	}
	writeJSON(w, status, resp)
}

// ---- v2 list (asynchronous) ----

// listV2Request is the body of POST /api/m2m/v2/devices/actions/list.
type listV2Request struct {
	AccountName              string          `json:"accountName"`
	ProvisioningStatusFilter string          `json:"provisioningStatusFilter,omitempty"`
	ProfileStatusFilter      string          `json:"profileStatusFilter,omitempty"`
	CarrierNameFilter        string          `json:"carrierNameFilter,omitempty"`
	DeviceFilter             json.RawMessage `json:"deviceFilter,omitempty"`
}

func (s *Simulator) handleListV2(w http.ResponseWriter, r *http.Request, c *call) {
	var req listV2Request
	if err := json.Unmarshal(c.body, &req); err != nil {
		writeM2MError(w, http.StatusBadRequest, svc+"INPUT_INVALID.RequestUndefined", "The request body is not valid: "+err.Error())
		return
	}
	if !s.checkAccount(w, req.AccountName) {
		return
	}
	var filters []tsapi.DeviceIDs
	if len(req.DeviceFilter) > 0 && string(req.DeviceFilter) != "null" {
		var entries []json.RawMessage
		if err := json.Unmarshal(req.DeviceFilter, &entries); err != nil {
			writeM2MError(w, http.StatusBadRequest, svc+"INPUT_INVALID.RequestUndefined", "deviceFilter must be an array.")
			return
		}
		for _, e := range entries {
			var de tsapi.DeviceEntry
			if err := json.Unmarshal(e, &de); err == nil && len(de.DeviceIDs) > 0 {
				filters = append(filters, de.DeviceIDs)
				continue
			}
			var id tsapi.DeviceID
			if err := json.Unmarshal(e, &id); err != nil || id.ID == "" {
				writeM2MError(w, http.StatusBadRequest, svc+"INPUT_INVALID.Device.Identifier.Invalid", "deviceFilter entries must be {kind, id} or {deviceIds}.")
				return
			}
			filters = append(filters, tsapi.DeviceIDs{id})
		}
		for _, f := range filters {
			if code, msg := validateIDs(f); code != "" {
				writeM2MError(w, http.StatusBadRequest, svc+code, msg)
				return
			}
		}
		if len(filters) > s.opts.BulkLimit {
			writeM2MError(w, http.StatusBadRequest, svc+"INPUT_INVALID.MaxRequestsExceeded",
				"The request has more than the maximum of "+itoa(s.opts.BulkLimit)+" devices.")
			return
		}
	}
	provState := tsapi.StateUnknown
	if req.ProvisioningStatusFilter != "" {
		provState = tsapi.NormalizeState(req.ProvisioningStatusFilter)
	}
	profFilter := tsapi.ProfileUnknown
	if req.ProfileStatusFilter != "" {
		profFilter = tsapi.NormalizeProfileStatus(req.ProfileStatusFilter)
	}
	s.mu.Lock()
	rq := &request{id: s.newRequestID(), account: req.AccountName, action: "list", acceptedAt: time.Now(), gen: s.gen}
	consider := func(d *device, ids tsapi.DeviceIDs) {
		if req.ProvisioningStatusFilter != "" && d.deviceState() != provState {
			return
		}
		var profs []int
		for k := range d.profiles {
			p := &d.profiles[k]
			if k != profLead && p.state == statePreActive && !p.status.downloaded() {
				continue
			}
			if req.ProfileStatusFilter != "" && tsapi.NormalizeProfileStatus(p.status.String()) != profFilter {
				continue
			}
			if req.CarrierNameFilter != "" && !strings.Contains(strings.ToLower(carrierOf(k)), strings.ToLower(req.CarrierNameFilter)) {
				continue
			}
			profs = append(profs, k)
		}
		if len(profs) == 0 {
			return
		}
		if ids == nil {
			ids = tsapi.DeviceIDs{{Kind: "eid", ID: d.eid}}
		}
		rq.jobs = append(rq.jobs, &job{req: rq, ids: ids, dev: d.ord, status: statusPending, list: profs, faultKey: d.eid})
	}
	if filters != nil {
		for _, f := range filters {
			d, _ := s.resolve(f)
			if d == nil {
				rq.jobs = append(rq.jobs, &job{req: rq, ids: f, dev: -1, status: statusPending, faultKey: firstID(f)})
				continue
			}
			consider(d, f)
		}
	} else {
		for i := range s.devices {
			consider(&s.devices[i], nil)
		}
	}
	tasks := make([]*task, 0, len(rq.jobs))
	for _, j := range rq.jobs {
		ak := "dev:" + j.faultKey + "|list"
		s.attempts[ak]++
		j.attempt = s.attempts[ak]
		tasks = append(tasks, &task{due: rq.acceptedAt.Add(s.delay(j.faultKey, j.attempt)), gen: rq.gen, job: j})
	}
	s.requests[rq.id] = rq
	s.mu.Unlock()
	s.sched.pushAll(tasks)
	if s.fired(FaultServerAfter, c.failAfter) {
		writeM2MError(w, http.StatusInternalServerError, svc+"REQUEST_FAILED.UnexpectedError", "Internal server error (simulated, request applied)")
		return
	}
	writeJSON(w, http.StatusOK, tsapi.RequestResponse{RequestID: rq.id})
}

func carrierOf(k int) string {
	switch k {
	case profGlobal:
		return "Verizon Global"
	case profLocal:
		return "Local"
	}
	return "Verizon Wireless"
}

// ---- request status ----

func (s *Simulator) findRequest(w http.ResponseWriter, r *http.Request) *request {
	acct, id := r.PathValue("account"), r.PathValue("requestId")
	if !s.checkAccount(w, acct) {
		return nil
	}
	rq := s.requests[id]
	if rq == nil || rq.account != acct {
		writeM2MError(w, http.StatusBadRequest, svc+"REQUEST_FAILED.RequestNotFound", "Request "+id+" was not found.")
		return nil
	}
	return rq
}

// overall is a request's status: Pending while any device is pending, Failed when any failed,
// else Success.
func overall(rq *request) string {
	st := statusSuccess
	for _, j := range rq.jobs {
		switch j.status {
		case statusPending:
			return statusPending
		case statusFailed:
			st = statusFailed
		}
	}
	return st
}

func (s *Simulator) handleRequestStatusV2(w http.ResponseWriter, r *http.Request, _ *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rq := s.findRequest(w, r)
	if rq == nil {
		return
	}
	resp := tsapi.RequestStatusResponse{RequestID: rq.id, Status: overall(rq), SubRequests: make([]tsapi.SubRequest, len(rq.jobs))}
	for i, j := range rq.jobs {
		resp.SubRequests[i] = tsapi.SubRequest{IDs: j.ids, Status: j.status}
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Simulator) handleRequestStatusV1(w http.ResponseWriter, r *http.Request, _ *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rq := s.findRequest(w, r)
	if rq == nil {
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"requestId": rq.id, "status": overall(rq)})
}

func itoa(n int) string { return strconv.Itoa(n) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ActionOutcome is the outcome of an accepted action for one device, by EID: Pending, Success
// or Failed ("" when the request or the device is unknown).
func (s *Simulator) ActionOutcome(requestID, eid string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	rq := s.requests[requestID]
	if rq == nil {
		return ""
	}
	for _, j := range rq.jobs {
		if j.dev >= 0 && s.devices[j.dev].eid == eid {
			return j.status
		}
	}
	return ""
}
