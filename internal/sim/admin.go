package sim

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
)

// Stats is GET /sim/v1/stats. The provider's acceptance tests assert on these names.
type Stats struct {
	// Requests counts requests per "<METHOD> <route pattern>".
	Requests map[string]int `json:"requests"`
	// ActionCounts counts accepted profile actions per action name.
	ActionCounts map[string]int `json:"actionCounts"`
	// Actions lists every accepted profile action with its devices' state at acceptance.
	Actions []ActionRecord `json:"actions"`
	// Callbacks counts callback deliveries.
	Callbacks CallbackStats `json:"callbacks"`
	// FaultsFired counts, per fault name, the draws that injected the fault.
	FaultsFired map[string]int64 `json:"faultsFired"`
}

// CallbackStats counts callback deliveries. Sent counts delivery attempts POSTed (duplicates
// excluded), Acknowledged those answered 2xx, FailedAttempts those not acknowledged (non-2xx,
// refused, time-out, or suppressed by the drop fault), Retried the repeat attempts scheduled,
// Dropped the messages given up (after maxCallbackThreshold attempts, or with no listener
// registered, also counted in NoListener). Messages counts the callback messages generated and
// Duplicates the extra copies sent by the dup fault. Pending is the scheduled work not done yet.
type CallbackStats struct {
	Sent           int64 `json:"sent"`
	Retried        int64 `json:"retried"`
	Acknowledged   int64 `json:"acknowledged"`
	Dropped        int64 `json:"dropped"`
	FailedAttempts int64 `json:"failedAttempts"`
	NoListener     int64 `json:"noListener"`
	Messages       int64 `json:"messages"`
	Duplicates     int64 `json:"duplicates"`
	Pending        int64 `json:"pending"`
}

// Stats returns a snapshot of the statistics.
func (s *Simulator) Stats() Stats {
	s.mu.Lock()
	st := Stats{Requests: make(map[string]int, len(s.reqCounts)), ActionCounts: make(map[string]int, len(s.actionCounts)),
		Actions: make([]ActionRecord, len(s.actionLog))}
	for k, v := range s.reqCounts {
		st.Requests[k] = v
	}
	for k, v := range s.actionCounts {
		st.ActionCounts[k] = v
	}
	copy(st.Actions, s.actionLog) // records are never modified after acceptance
	s.mu.Unlock()
	c := &s.cb
	st.FaultsFired = s.faultsFired()
	st.Callbacks = CallbackStats{Sent: c.sent.Load(), Retried: c.retried.Load(), Acknowledged: c.acknowledged.Load(),
		Dropped: c.dropped.Load(), FailedAttempts: c.failedAttempts.Load(), NoListener: c.noListener.Load(),
		Messages: c.messages.Load(), Duplicates: c.duplicates.Load(),
		Pending: int64(s.sched.len()) + s.inflight.Load()}
	return st
}

func (s *Simulator) adminDevices(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Devices())
}

func (s *Simulator) adminDevice(w http.ResponseWriter, r *http.Request) {
	v, ok := s.Device(r.PathValue("eid"))
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such device"})
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Simulator) adminPatchDevice(w http.ResponseWriter, r *http.Request) {
	var p DevicePatch
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body must be {state?, servicePlan?, online?}: " + err.Error()})
		return
	}
	id := r.PathValue("eid")
	if err := s.UpdateDevice(id, p); err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, ErrNoDevice) {
			status = http.StatusNotFound
		}
		writeJSON(w, status, map[string]string{"error": err.Error()})
		return
	}
	v, _ := s.Device(id)
	s.log.Info("device patched", "eid", v.EID)
	writeJSON(w, http.StatusOK, v)
}

func (s *Simulator) adminPlans(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Plans())
}

func (s *Simulator) adminStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Stats())
}

func (s *Simulator) adminGetFaults(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"faults": s.Faults()})
}

// adminPutFaults accepts {"faults": "<spec>"} or the spec itself as the body.
func (s *Simulator) adminPutFaults(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	spec := strings.TrimSpace(string(b))
	if strings.HasPrefix(spec, "{") {
		var body struct {
			Faults *string `json:"faults"`
		}
		if err := json.Unmarshal(b, &body); err != nil || body.Faults == nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": `body must be {"faults": "<spec>"} or the spec itself`})
			return
		}
		spec = *body.Faults
	} else if strings.HasPrefix(spec, `"`) {
		_ = json.Unmarshal(b, &spec)
	}
	if err := s.SetFaults(spec); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"faults": s.Faults()})
}

// adminReset answers POST /sim/v1/reset (?all=true also forgets tokens, sessions, callback
// registrations and faults set at run time).
func (s *Simulator) adminReset(w http.ResponseWriter, r *http.Request) {
	all := r.URL.Query().Get("all") == "true"
	s.Reset(all)
	s.log.Info("reset", "all", all)
	writeJSON(w, http.StatusOK, map[string]any{"reset": true, "all": all, "devices": s.opts.Devices})
}
