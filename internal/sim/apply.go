package sim

import (
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// message is one callback body waiting for delivery. The body's callbackCount and the
// registered credentials are filled in per attempt.
type message struct {
	account string
	gen     uint64
	key     string // fault key of the drop and dup draws
	cb      tsapi.Callback
}

// variants are the per-job draws of the callback-shape selectors.
type variants struct {
	lowerKinds, mixedStatus, noDevices, inline bool
}

func (s *Simulator) variantsFor(fs faultSet, key string, attempt int) variants {
	seed := s.opts.Seed
	return variants{
		lowerKinds:  s.fired(FaultKindCase, draw(seed, fs.rates[FaultKindCase], FaultKindCase, key, attempt)),
		mixedStatus: s.fired(FaultStatusCase, draw(seed, fs.rates[FaultStatusCase], FaultStatusCase, key, attempt)),
		noDevices:   s.fired(FaultNoDevices, draw(seed, fs.rates[FaultNoDevices], FaultNoDevices, key, attempt)),
		inline:      s.fired(FaultInline, draw(seed, fs.rates[FaultInline], FaultInline, key, attempt)),
	}
}

// needsDevice reports whether an action talks to the eUICC over the air (SM-SR), so that the
// device must be online.
func needsDevice(a tsapi.Action) bool {
	switch a {
	case tsapi.ActionDownloadEnable, tsapi.ActionDownload, tsapi.ActionDownloadDisable,
		tsapi.ActionEnable, tsapi.ActionDisable, tsapi.ActionDelete:
		return true
	}
	return false
}

// applyJob turns a due job into its callback messages. It applies the state transition (the
// device's state changes when its callback is generated). When the job first owes a "warning"
// callback, it returns that and the time the job is due again.
func (s *Simulator) applyJob(j *job) (msgs []*message, again time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rq := j.req
	if rq.gen != s.gen {
		return nil, time.Time{}
	}
	fs := s.faults
	seed := s.opts.Seed
	action := tsapi.Action(rq.action)
	fkey := j.faultKey + "|" + rq.action
	v := s.variantsFor(fs, fkey, j.attempt)
	var d *device
	if j.dev >= 0 {
		d = &s.devices[j.dev]
	}

	if rq.action == "list" {
		j.status = statusSuccess
		if d == nil {
			j.status = statusFailed
			return []*message{s.failure(rq, j.ids, nil, -1, "REQUEST_FAILED.DeviceNotFound",
				"The device was not found in account "+rq.account+".", v)}, time.Time{}
		}
		for _, k := range j.list {
			msgs = append(msgs, s.success(rq, d, k, v, "", false))
		}
		return msgs, time.Time{}
	}

	offline := d != nil && needsDevice(action) &&
		(!d.online || s.fired(FaultOffline, draw(seed, fs.rates[FaultOffline], FaultOffline, fkey, j.attempt)))
	if !j.warned && d != nil && (offline || s.fired(FaultWarning, draw(seed, fs.rates[FaultWarning], FaultWarning, fkey, j.attempt))) {
		j.warned = true
		k := s.target(action, d, j.ids, rq.plan, rq.smsrOid)
		return []*message{s.warning(rq, d, k, v)}, time.Now().Add(s.delay(fkey+"|warning", j.attempt))
	}

	if d != nil {
		d.inflight--
		if d.inflight <= 0 {
			d.inflight, d.pending = 0, ""
		}
	}
	j.status = statusFailed
	switch {
	case d == nil && j.mismatch:
		return []*message{s.failure(rq, j.ids, nil, -1, "REQUEST_FAILED.DeviceNotFound",
			"The identifiers do not belong to the same device in account "+rq.account+".", v)}, time.Time{}
	case d == nil:
		return []*message{s.failure(rq, j.ids, nil, -1, "REQUEST_FAILED.DeviceNotFound",
			"The device was not found in account "+rq.account+".", v)}, time.Time{}
	case s.fired(FaultFail, draw(seed, fs.rates[FaultFail], FaultFail, fkey, j.attempt)):
		k := s.failTarget(action, d, j)
		return []*message{s.failure(rq, j.ids, d, k, "REQUEST_FAILED.UnexpectedError",
			"The request failed for this device (simulated failure).", v)}, time.Time{}
	case offline:
		k := s.failTarget(action, d, j)
		return []*message{s.failure(rq, j.ids, d, k, "REQUEST_FAILED.Device.NotReachable",
			"The device is not reachable: it must be powered on and connected.", v)}, time.Time{}
	}
	if action == tsapi.ActionDeviceSuspend || action == tsapi.ActionDeviceResume {
		msgs, ok := s.deviceLevel(rq, j, d, action, v)
		if ok {
			j.status = statusSuccess
		}
		return msgs, time.Time{}
	}
	enableFailed := action == tsapi.ActionDownloadEnable &&
		s.fired(FaultEnableFailed, draw(seed, fs.rates[FaultEnableFailed], FaultEnableFailed, fkey, j.attempt))
	o := s.transition(action, d, j, enableFailed)
	if o.code != "" {
		return []*message{s.failure(rq, j.ids, d, o.k, o.code, o.msg, v)}, time.Time{}
	}
	if o.profileStatus == "" {
		j.status = statusSuccess
	}
	return []*message{s.success(rq, d, o.k, v, o.profileStatus, false)}, time.Time{}
}

// failTarget is the profile a whole-job failure reports on: none (a device-level message) for
// device_suspend and device_resume, whose per-profile messages are only progress.
func (s *Simulator) failTarget(action tsapi.Action, d *device, j *job) int {
	if action == tsapi.ActionDeviceSuspend || action == tsapi.ActionDeviceResume {
		return -1
	}
	return s.target(action, d, j.ids, j.req.plan, j.req.smsrOid)
}

// outcome is the result of one transition: the profile it reports on, and a failure code
// (without the service prefix) and message, or a profileStatus overriding the profile's.
type outcome struct {
	k             int
	code, msg     string
	profileStatus string
}

// transition applies action to device d: ThingSpace's line and profile state machine, as
// cmd/thingspace-sim/README.md describes it. Callers hold s.mu.
func (s *Simulator) transition(action tsapi.Action, d *device, j *job, enableFailed bool) outcome {
	rq := j.req
	k := s.target(action, d, j.ids, rq.plan, rq.smsrOid)
	p, l := &d.profiles[k], d.lead()
	lst := l.effState()
	fail := func(code, msg string) outcome { return outcome{k: k, code: code, msg: msg} }
	notActive := func() outcome {
		return fail("INPUT_INVALID.DeviceState.Invalid", "The device is "+string(normState(lst))+"; the action needs an active device.")
	}
	done := outcome{k: k}
	switch action {
	case tsapi.ActionActivate:
		if k == profLead {
			switch lst {
			case stateActive:
				return fail("REQUEST_FAILED.DeviceAlreadyActive", "The device is already active.")
			case stateSuspended:
				return fail("INPUT_INVALID.DeviceState.Invalid", "The device is suspended; resume it instead.")
			}
			if imei := j.ids.Get("imei"); imei != "" && imei != d.imei && s.lookup(imei) == nil {
				delete(s.index, d.imei) // module swap: the line now belongs to a new IMEI
				d.imei = imei
				s.index[imei] = d.ord
			}
			s.activateLead(d, rq.plan.Code)
			return done
		}
		if lst != stateActive {
			return notActive()
		}
		if p.state == stateActive {
			return fail("REQUEST_FAILED.DeviceAlreadyActive", "The Global profile is already active.")
		}
		p.state, p.plan, p.suspended, p.devSuspended = stateActive, rq.plan.Code, false, false
		return done

	case tsapi.ActionDownloadEnable, tsapi.ActionDownload, tsapi.ActionDownloadDisable:
		switch {
		case rq.plan.Code != "" && rq.plan.Type != PlanGlobal:
			return fail("REQUEST_FAILED.ServicePlan.Invalid", "Service plan "+rq.plan.Code+" is not a Global plan.")
		case k == profLead:
			return fail("INPUT_INVALID.DeviceState.Invalid", "The Verizon US profile is always on the device; downloads apply to Global and local profiles.")
		case k == profLocal && rq.smsrOid == "":
			return fail("INPUT_INVALID.SmsrOid.Required", "Local profiles need an smsrOid.")
		case lst != stateActive:
			return notActive()
		case p.status.downloaded():
			return fail("REQUEST_FAILED.Profile.AlreadyDownloaded", "The profile is already downloaded.")
		}
		if rq.plan.Code != "" {
			p.plan = rq.plan.Code
		}
		if rq.smsrOid != "" {
			p.smsrOid = rq.smsrOid
		}
		p.state, p.suspended, p.devSuspended = stateActive, false, false
		switch {
		case action != tsapi.ActionDownloadEnable:
			p.status = psDownloadDisable
		case enableFailed:
			p.status = psDownloadDisable
			return outcome{k: k, profileStatus: "DOWNLOAD_SUCCESS_ENABLE_FAILED"}
		default:
			d.enable(k)
		}
		return done

	case tsapi.ActionEnable:
		switch {
		case k == profLocal && rq.smsrOid == "" && p.smsrOid == "":
			return fail("INPUT_INVALID.SmsrOid.Required", "Local profiles need an smsrOid.")
		case lst != stateActive && lst != stateSuspended:
			return notActive()
		case p.status == psEnable:
			return fail("REQUEST_FAILED.Profile.AlreadyEnabled", "The profile is already enabled.")
		case !p.status.downloaded():
			return fail("REQUEST_FAILED.Profile.NotDownloaded", "The profile is not downloaded; download it first.")
		case p.state == stateDeactive:
			return fail("INPUT_INVALID.DeviceState.Invalid", "The profile is deactivated.")
		}
		d.enable(k)
		return done

	case tsapi.ActionDisable:
		switch {
		case k == profLead:
			return fail("INPUT_INVALID.DeviceState.Invalid", "The Verizon US (lead) profile cannot be disabled; enable another profile instead.")
		case p.status != psEnable:
			return fail("REQUEST_FAILED.Profile.NotEnabled", "The profile is not enabled.")
		}
		p.status = psDisable
		d.fallBackToLead()
		return done

	case tsapi.ActionDelete:
		switch {
		case k == profLead:
			return fail("REQUEST_FAILED.Profile.DeleteNotAllowed", "The Verizon US profile cannot be deleted.")
		case !p.status.downloaded():
			return fail("REQUEST_FAILED.Profile.NotDownloaded", "The profile is not on the device.")
		case k == profGlobal && p.state == stateActive:
			return fail("INPUT_INVALID.DeviceState.Invalid", "A Global profile must be deactivated before it is deleted.")
		}
		wasEnabled := p.status == psEnable
		*p = profile{iccid: p.iccid, status: psDelete}
		if wasEnabled {
			d.fallBackToLead()
		}
		return done

	case tsapi.ActionServicePlan:
		want := PlanUS
		if k != profLead {
			want = PlanGlobal
		}
		switch {
		case k == profLocal:
			return fail("REQUEST_FAILED.ServicePlan.Invalid", "Local profiles have no ThingSpace service plan.")
		case rq.plan.Type != want:
			return fail("REQUEST_FAILED.ServicePlan.Invalid", "Service plan "+rq.plan.Code+" is not a "+want+" plan.")
		case p.effState() != stateActive:
			return fail("INPUT_INVALID.DeviceState.Invalid", "The profile is "+string(normState(p.effState()))+"; the plan of an active profile only can change.")
		}
		p.plan = rq.plan.Code
		return done

	case tsapi.ActionProfileSuspend:
		switch {
		case k != profGlobal:
			return fail("INPUT_INVALID.ProfileType.Invalid", "profile_suspend suspends Global profiles only; use device_suspend for the Verizon US profile.")
		case p.state != stateActive:
			return fail("INPUT_INVALID.DeviceState.Invalid", "The profile is not active.")
		case p.effState() == stateSuspended:
			return fail("REQUEST_FAILED.Profile.AlreadySuspended", "Profile is already suspended")
		}
		p.suspended = true
		return done

	case tsapi.ActionProfileResume:
		switch {
		case p.state != stateActive:
			return fail("INPUT_INVALID.DeviceState.Invalid", "The profile is not active.")
		case p.effState() != stateSuspended:
			return fail("REQUEST_FAILED.Profile.AlreadyResumed", "Profile is already resumed")
		}
		p.suspended, p.devSuspended = false, false
		return done

	case tsapi.ActionDeactivate:
		if k == profLead {
			switch lst {
			case statePreActive:
				return fail("INPUT_INVALID.DeviceState.Invalid", "The device was never activated.")
			case stateDeactive:
				return fail("INPUT_INVALID.DeviceState.Invalid", "The device is already deactive.")
			}
			d.deactivateProfiles()
			return done
		}
		if p.state != stateActive {
			return fail("INPUT_INVALID.DeviceState.Invalid", "The profile is not active.")
		}
		p.state, p.suspended, p.devSuspended = stateDeactive, false, false
		if p.status == psEnable {
			p.status = psDisable
			d.fallBackToLead()
		}
		return done
	}
	return fail("INPUT_INVALID.RequestUndefined", "Unsupported action.")
}

// deviceLevel runs device_suspend / device_resume: one message per activated profile, then
// the final device-level message (its identifiers carry the EID but no ICCID).
func (s *Simulator) deviceLevel(rq *request, j *job, d *device, action tsapi.Action, v variants) ([]*message, bool) {
	l := d.lead()
	if st := l.effState(); st == statePreActive || st == stateDeactive {
		return []*message{s.failure(rq, j.ids, d, -1, "INPUT_INVALID.DeviceState.Invalid",
			"The device is "+string(normState(st))+".", v)}, false
	}
	suspend := action == tsapi.ActionDeviceSuspend
	var msgs []*message
	changed := false
	// Per-profile failures are progress: they always name their profile, even under
	// fault-nodevices (a fault without deviceIds would fail every device of the request).
	pv := v
	pv.noDevices = false
	for k := range d.profiles {
		p := &d.profiles[k]
		if p.state != stateActive {
			continue
		}
		switch {
		case suspend && p.effState() == stateSuspended:
			msgs = append(msgs, s.failure(rq, nil, d, k, "REQUEST_FAILED.Profile.AlreadySuspended", "Profile is already suspended", pv))
		case suspend:
			p.devSuspended = true
			changed = true
			msgs = append(msgs, s.success(rq, d, k, v, "", false))
		case !p.devSuspended:
			msgs = append(msgs, s.failure(rq, nil, d, k, "REQUEST_FAILED.Profile.AlreadyResumed", "Profile is already resumed", pv))
		default:
			p.devSuspended = false
			changed = true
			msgs = append(msgs, s.success(rq, d, k, v, "", false))
		}
	}
	if !changed {
		msg := "The device is already resumed."
		code := "REQUEST_FAILED.Device.AlreadyResumed"
		if suspend {
			msg, code = "The device is already suspended.", "REQUEST_FAILED.Device.AlreadySuspended"
		}
		return append(msgs, s.failure(rq, nil, d, -1, code, msg, v)), false
	}
	return append(msgs, s.success(rq, d, -1, v, "", true)), true
}

// ---- callback bodies ----

func kindName(kind string, lower bool) string {
	if lower {
		return kind
	}
	switch kind {
	case "eid":
		return "Eid"
	case "iccid":
		return "Iccid"
	case "imei":
		return "Imei"
	}
	return kind // mdn and msisdn are lower case in every example
}

// idsOf lists a device's identifiers in the order of ThingSpace's example callbacks (iccid, imei, eid, mdn, msisdn). k < 0
// leaves the ICCID out (device-level messages).
func idsOf(d *device, k int, lower bool) tsapi.DeviceIDs {
	ids := make(tsapi.DeviceIDs, 0, 5)
	if k >= 0 {
		ids = append(ids, tsapi.DeviceID{Kind: kindName("iccid", lower), ID: d.profiles[k].iccid})
	}
	ids = append(ids, tsapi.DeviceID{Kind: kindName("imei", lower), ID: d.imei},
		tsapi.DeviceID{Kind: kindName("eid", lower), ID: d.eid})
	if d.mdnAssigned {
		ids = append(ids, tsapi.DeviceID{Kind: "mdn", ID: d.mdn}, tsapi.DeviceID{Kind: "msisdn", ID: d.msisdn()})
	}
	return ids
}

func successStatus(v variants) string {
	if v.mixedStatus {
		return "Success"
	}
	return "SUCCESS"
}

func (s *Simulator) newMessage(rq *request, key string, cb tsapi.Callback) *message {
	cb.RequestID = rq.id
	cb.MaxCallbackThreshold = maxCallbackAttempts
	return &message{account: rq.account, gen: rq.gen, key: key + "|" + rq.id, cb: cb}
}

// success builds the success message for profile k of d (device-level when deviceLevel).
// profileStatus overrides the profile's status (download_enable whose enable failed).
func (s *Simulator) success(rq *request, d *device, k int, v variants, profileStatus string, deviceLevel bool) *message {
	ids := idsOf(d, k, v.lowerKinds)
	dpr := &tsapi.DeviceProfileResponse{DeviceIdentifierCollection: ids, DeviceCredential: s.deviceCredential(d)}
	if deviceLevel {
		dpr.State = cbState(d.lineState())
		dpr.IPAddress = ipAddress(d)
	} else {
		p := &d.profiles[k]
		dpr.State = cbState(p.effState())
		dpr.ServicePlan = p.plan
		dpr.ProfileStatus = p.status.String()
		if profileStatus != "" {
			dpr.ProfileStatus = profileStatus
		}
		dpr.ProfileRole = roleOf(k)
		dpr.SmsrOid = p.smsrOid
		switch tsapi.Action(rq.action) {
		case tsapi.ActionActivate, tsapi.ActionServicePlan:
			dpr.EuiccSubAddressUpdateStatus = "EXECUTED_SUCCESS"
			dpr.EuiccSubAddressUpdateStatusCode = "1"
			dpr.EuiccSubAddressUpdateStatusDesc = "Line processed successfully"
		case tsapi.ActionEnable, tsapi.ActionDisable, tsapi.ActionDelete,
			tsapi.ActionDownload, tsapi.ActionDownloadEnable, tsapi.ActionDownloadDisable:
			dpr.IPAddress = ipAddress(d)
			dpr.EuiccStatus = "EXECUTED_SUCCESS"
			dpr.EuiccStatusCode = "1.2.365"
			dpr.EuiccStatusDesc = "EUICC device profile has been updated"
		}
	}
	key := d.eid
	if k >= 0 {
		key = d.profiles[k].iccid
	}
	return s.newMessage(rq, key, tsapi.Callback{DeviceIDs: ids,
		DeviceResponse: &tsapi.DeviceResponse{DeviceProfileResponse: dpr}, Status: successStatus(v)})
}

// warning builds the "warning" message sent before the final one when the device does not
// answer in time.
func (s *Simulator) warning(rq *request, d *device, k int, v variants) *message {
	ids := idsOf(d, k, v.lowerKinds)
	p := &d.profiles[k]
	dpr := &tsapi.DeviceProfileResponse{DeviceIdentifierCollection: ids, State: cbState(p.effState()),
		ProfileStatus: p.status.String(), ProfileRole: roleOf(k),
		EuiccStatus: "PENDING", EuiccStatusDesc: "The device did not respond in time; the request is still in progress."}
	return s.newMessage(rq, p.iccid+"|warning", tsapi.Callback{DeviceIDs: ids,
		DeviceResponse: &tsapi.DeviceResponse{DeviceProfileResponse: dpr}, Status: "warning"})
}

// failure builds a failure message: status "Failed" with a faultResponse (deviceIds left out
// under fault-nodevices), or with the error inside deviceProfileResponse under fault-inline.
// With d nil the identifiers sent are echoed; k < 0 leaves the ICCID out.
func (s *Simulator) failure(rq *request, sent tsapi.DeviceIDs, d *device, k int, code, msg string, v variants) *message {
	var ids tsapi.DeviceIDs
	key := firstID(sent)
	if d != nil {
		ids = idsOf(d, k, v.lowerKinds)
		key = d.eid
		if k >= 0 {
			key = d.profiles[k].iccid
		}
	} else {
		for _, id := range sent {
			kind := tsapi.NormalizeKind(id.Kind)
			ids = append(ids, tsapi.DeviceID{Kind: kindName(kind, v.lowerKinds), ID: id.ID})
		}
	}
	code = "DeviceProfileService." + code
	cb := tsapi.Callback{Status: "Failed"}
	switch {
	case v.inline:
		dpr := &tsapi.DeviceProfileResponse{DeviceIdentifierCollection: ids, ErrorCode: code, ErrorMessage: msg}
		if d != nil {
			dpr.State = cbState(d.lead().effState())
			if k >= 0 {
				dpr.State = cbState(d.profiles[k].effState())
				dpr.ProfileStatus = d.profiles[k].status.String()
				dpr.ProfileRole = roleOf(k)
			}
		}
		cb.DeviceIDs = ids
		cb.DeviceResponse = &tsapi.DeviceResponse{DeviceProfileResponse: dpr}
	case v.noDevices:
		cb.FaultResponse = &tsapi.FaultResponse{FaultCode: code, FaultString: msg}
	default:
		cb.DeviceIDs = ids
		cb.FaultResponse = &tsapi.FaultResponse{FaultCode: code, FaultString: msg}
	}
	return s.newMessage(rq, key+"|fail", cb)
}
