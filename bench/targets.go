package main

import (
	"fmt"
	"sort"
	"time"
)

// The targets of the issue, for the default sizes; other sizes keep the per-device and absolute
// figures and scale the rest as said below.
const (
	profilesMaxRatio       = 1.3  // apply, callback delay 0: wall ≤ 1.3 × floor
	profilesMaxPerDevice   = 0.15 // apply, callback delay 0: ThingSpace requests per device
	profilesBatchShare     = 0.7  // callback delay > 0: mean batch ≥ 0.7 × parallelism (7 at 10, 35 at 50)
	profilesRoundSlack     = 1.2  // callback delay > 0: wall ≤ floor + ⌈N/P⌉ rounds × delay × 1.2
	largeMaxRatio          = 1.5  // no-change plan in a large account: wall ≤ 1.5 × floor
	largeExtraReads        = 2    // ... and reads ≤ the account's pages + 2
	v1PageSize             = 2000 // devices per page of the v1 device list
	fleetMaxApply          = 30 * time.Second
	fleetMaxPlan           = 10 * time.Second
	fleetMaxRSSMB          = 300
	providerDefaultBulkMax = 10000 // the provider's default bulk_size
)

// evaluate sets the targets of the scenario's steps from their measures.
func (sc *Scenario) evaluate(opt options) {
	for _, st := range sc.Steps {
		switch {
		case st.Failed:
			// Its measures are those of a failure: a fast failed apply is no pass.
		case sc.Name == scProfiles && st.Kind == "apply":
			sc.profilesTargets(st)
		case sc.Name == scLarge && st.Kind == "plan":
			st.Targets = append(st.Targets, ratioTarget(st, largeMaxRatio))
			pages := ceilDiv(sc.Account, v1PageSize)
			reads := st.Requests.ListV1 + st.Requests.ListV2
			st.Targets = append(st.Targets, Target{
				Text: fmt.Sprintf("device reads ≤ %d pages + %d", pages, largeExtraReads),
				Pass: reads <= pages+largeExtraReads, Got: fmt.Sprintf("%d reads", reads)})
		case sc.Name == scFleet:
			bulk := min(opt.bulkLimit, providerDefaultBulkMax)
			if st.Kind == "apply" {
				st.Targets = append(st.Targets, maxWall(st, fleetMaxApply))
			}
			if st.Kind == "plan" {
				st.Targets = append(st.Targets, maxWall(st, fleetMaxPlan))
			}
			if st.Kind == "apply" || st.Kind == "destroy" {
				st.Targets = append(st.Targets, actionsTarget(st, ceilDiv(sc.Devices, bulk)))
			}
			st.Targets = append(st.Targets, Target{Text: fmt.Sprintf("provider peak RSS ≤ %d MB", fleetMaxRSSMB),
				Pass: st.ProviderRSSMB <= fleetMaxRSSMB, Got: fmt.Sprintf("%.0f MB", st.ProviderRSSMB)})
		}
	}
}

func (sc *Scenario) profilesTargets(st *Step) {
	delay, _ := time.ParseDuration(sc.CallbackDelay)
	if delay == 0 {
		st.Targets = append(st.Targets, ratioTarget(st, profilesMaxRatio), Target{
			Text: fmt.Sprintf("ThingSpace requests ≤ %.2f per device", profilesMaxPerDevice),
			Pass: st.RequestsPerDevice <= profilesMaxPerDevice, Got: fmt.Sprintf("%.3f per device", st.RequestsPerDevice)})
		return
	}
	wantBatch := profilesBatchShare * float64(min(sc.Parallelism, sc.Devices))
	st.Targets = append(st.Targets, Target{Text: fmt.Sprintf("mean batch ≥ %.4g", wantBatch),
		Pass: st.MeanBatch >= wantBatch, Got: fmt.Sprintf("%.1f", st.MeanBatch)})
	rounds := ceilDiv(sc.Devices, sc.Parallelism)
	allowance := float64(rounds) * delay.Seconds() * profilesRoundSlack
	t := Target{Text: fmt.Sprintf("wall ≤ floor + %d rounds × %s × %.1f", rounds, delay, profilesRoundSlack)}
	if st.Floor == nil {
		t.Got = "no floor"
	} else {
		t.Pass = st.Wall <= *st.Floor+allowance
		t.Got = fmt.Sprintf("%.1f s ≤ %.1f s", st.Wall, *st.Floor+allowance)
		if !t.Pass {
			t.Got = fmt.Sprintf("%.1f s > %.1f s", st.Wall, *st.Floor+allowance)
		}
	}
	st.Targets = append(st.Targets, t)
}

func ratioTarget(st *Step, limit float64) Target {
	t := Target{Text: fmt.Sprintf("wall ≤ %.1f × floor", limit)}
	if st.Floor == nil || *st.Floor <= 0 {
		t.Got = "no floor"
		return t
	}
	r := st.Wall / *st.Floor
	t.Pass, t.Got = r <= limit, fmt.Sprintf("%.2f ×", r)
	return t
}

func maxWall(st *Step, limit time.Duration) Target {
	return Target{Text: fmt.Sprintf("wall ≤ %s", limit), Pass: st.Wall <= limit.Seconds(), Got: fmt.Sprintf("%.1f s", st.Wall)}
}

// actionsTarget: at most limit accepted requests of each action.
func actionsTarget(st *Step, limit int) Target {
	t := Target{Text: fmt.Sprintf("≤ %d request(s) per action", limit), Pass: true}
	names := make([]string, 0, len(st.Requests.Actions))
	for k := range st.Requests.Actions {
		names = append(names, k)
	}
	sort.Strings(names)
	worst := 0
	for _, k := range names {
		if n := st.Requests.Actions[k]; n > limit {
			t.Pass = false
			t.Detail = append(t.Detail, fmt.Sprintf("%s: %d requests", k, n))
		}
		worst = max(worst, st.Requests.Actions[k])
	}
	t.Got = fmt.Sprintf("at most %d", worst)
	return t
}

func ceilDiv(a, b int) int {
	if b <= 0 {
		return 0
	}
	return (a + b - 1) / b
}
