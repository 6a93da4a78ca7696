package main

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// Routes of the simulator's request counts (GET /sim/v1/stats: "<METHOD> <route pattern>").
const (
	routeAction = "POST /api/m2m/v1/devices/profile/actions/{action}"
	routeListV1 = "POST /api/m2m/v1/devices/actions/list"
	routeListV2 = "POST /api/m2m/v2/devices/actions/list"
)

// Requests are the ThingSpace API requests of one Terraform command, by kind: the difference
// of the simulator's counts before and after it. The simulator's own admin routes (/sim/v1/)
// are not ThingSpace and are not counted.
type Requests struct {
	// Actions counts the actions ThingSpace accepted, by action name; ActionDevices the
	// devices they carried.
	Actions       map[string]int `json:"actions"`
	ActionDevices int            `json:"actionDevices"`
	// ActionNotAccepted counts action requests answered with an error (429, 5xx, refusals).
	ActionNotAccepted int `json:"actionNotAccepted"`
	// ListV1 counts the v1 device list reads (a page of up to 2000 devices each); ListV2 the
	// asynchronous v2 list requests; Status the request-status reads.
	ListV1 int `json:"listV1"`
	ListV2 int `json:"listV2"`
	Status int `json:"requestStatus"`
	// Other is everything else: OAuth tokens, session logins, callback registrations, plans.
	Other int `json:"other"`
	Total int `json:"total"`
}

// actionRequests is the number of accepted action requests.
func (r Requests) actionRequests() int {
	n := 0
	for _, v := range r.Actions {
		n += v
	}
	return n
}

// meanBatch is the mean number of devices per accepted action request (0 without actions).
func (r Requests) meanBatch() float64 {
	if n := r.actionRequests(); n > 0 {
		return float64(r.ActionDevices) / float64(n)
	}
	return 0
}

// String is the table's cell: "activate 1 · list 5 · other 3 = 9".
func (r Requests) String() string {
	var parts []string
	names := make([]string, 0, len(r.Actions))
	for k := range r.Actions {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("%s %d", k, r.Actions[k]))
	}
	for _, kv := range []struct {
		name string
		n    int
	}{{"refused action", r.ActionNotAccepted}, {"list", r.ListV1}, {"list v2", r.ListV2}, {"status", r.Status}, {"other", r.Other}} {
		if kv.n != 0 {
			parts = append(parts, fmt.Sprintf("%s %d", kv.name, kv.n))
		}
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, " · ") + fmt.Sprintf(" = %d", r.Total)
}

// requestsBetween classifies the requests made between two snapshots of the simulator's stats.
func requestsBetween(before, after simStats) Requests {
	r := Requests{Actions: map[string]int{}}
	for route, n := range after.Requests {
		d := n - before.Requests[route]
		if d == 0 || !isAPIRoute(route) {
			continue
		}
		r.Total += d
		switch {
		case route == routeAction:
			r.ActionNotAccepted += d // accepted ones are subtracted below
		case route == routeListV1:
			r.ListV1 += d
		case route == routeListV2:
			r.ListV2 += d
		case strings.HasSuffix(route, "/status"):
			r.Status += d
		default:
			r.Other += d
		}
	}
	for name, n := range after.ActionCounts {
		if d := n - before.ActionCounts[name]; d > 0 {
			r.Actions[name] = d
			r.ActionNotAccepted -= d
		}
	}
	for _, a := range newActions(before, after) {
		r.ActionDevices += len(a.Devices)
	}
	return r
}

// isAPIRoute tells ThingSpace's routes from the simulator's admin API.
func isAPIRoute(route string) bool {
	_, path, _ := strings.Cut(route, " ")
	return strings.HasPrefix(path, "/api/")
}

// newActions are the actions accepted between two snapshots: the log only grows.
func newActions(before, after simStats) []simAction {
	if len(before.Actions) > len(after.Actions) {
		return nil
	}
	return after.Actions[len(before.Actions):]
}

// providerUsage sums the CPU time of the provider processes of a command and takes the largest
// peak RSS among them.
func providerUsage(procs []procUsage) (cpu, peakMB float64) {
	for _, p := range procs {
		cpu += p.UserSec + p.SysSec
		peakMB = math.Max(peakMB, float64(p.MaxRSSKiB)/1024)
	}
	return cpu, peakMB
}

// median of samples (0 for none).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// actionTarget is the state (or plan) an action puts a profile in, for telling an action sent
// to a profile already there. Actions not listed are not checked.
var actionTarget = map[string]string{
	"activate": "active", "deactivate": "deactive",
	"profile_suspend": "suspended", "device_suspend": "suspended",
	"profile_resume": "active", "device_resume": "active",
}

// actionAudit checks the simulator's action log: the actions per EID per action kind, the
// EIDs that got an action kind more than once, and every action accepted for a device that was
// already in the action's target state or had a request open.
type actionAudit struct {
	Repeated    map[string][]string `json:"repeated"`    // action → EIDs that got it more than once
	AlreadyDone []string            `json:"alreadyDone"` // "activate 8904...: profile already active"
	OpenRequest []string            `json:"openRequest"` // "activate 8904...: request open"
}

func auditActions(actions []simAction) actionAudit {
	a := actionAudit{Repeated: map[string][]string{}}
	count := map[string]map[string]int{}
	for _, rec := range actions {
		if count[rec.Action] == nil {
			count[rec.Action] = map[string]int{}
		}
		for _, d := range rec.Devices {
			count[rec.Action][d.EID]++
			state := d.ProfileStateBefore
			if state == "" {
				state = d.StateBefore
			}
			if t, ok := actionTarget[rec.Action]; ok && state == t {
				a.AlreadyDone = append(a.AlreadyDone, fmt.Sprintf("%s %s (request %s): profile already %s", rec.Action, d.EID, rec.RequestID, state))
			}
			if rec.Action == "serviceplan" && rec.ServicePlan != "" && d.PlanBefore == rec.ServicePlan {
				a.AlreadyDone = append(a.AlreadyDone, fmt.Sprintf("serviceplan %s (request %s): already on %s", d.EID, rec.RequestID, rec.ServicePlan))
			}
			if d.OpenRequestBefore {
				a.OpenRequest = append(a.OpenRequest, fmt.Sprintf("%s %s (request %s): a request was open", rec.Action, d.EID, rec.RequestID))
			}
		}
	}
	for action, byEID := range count {
		for eid, n := range byEID {
			if n > 1 {
				a.Repeated[action] = append(a.Repeated[action], eid)
			}
		}
		sort.Strings(a.Repeated[action])
	}
	return a
}
