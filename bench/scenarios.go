package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The command lines of the measured steps; -parallelism is added per scenario.
var (
	applyArgs   = []string{"apply", "-auto-approve", "-input=false", "-no-color", "-compact-warnings"}
	planArgs    = []string{"plan", "-detailed-exitcode", "-input=false", "-no-color", "-compact-warnings"}
	destroyArgs = []string{"destroy", "-auto-approve", "-input=false", "-no-color", "-compact-warnings"}
)

func withParallelism(args []string, p int) []string {
	return append(append([]string(nil), args...), "-parallelism="+strconv.Itoa(p))
}

// profiles: N thingspace_esim_profile with for_each at -parallelism=P and callback delay D:
// apply, a plan that must be empty, destroy.
func (h *harness) profiles(ctx context.Context, r profilesRun) *Scenario {
	n := h.opt.n
	sc := &Scenario{Name: scProfiles, Variant: fmt.Sprintf("p%d-d%s", r.parallelism, r.delay), Devices: n,
		Parallelism: r.parallelism, CallbackDelay: r.delay.String(),
		Title: fmt.Sprintf("%d thingspace_esim_profile (for_each), -parallelism=%d, callback delay %s", n, r.parallelism, r.delay)}
	so := simOptions{devices: n, callbackDelay: r.delay, bulkLimit: h.opt.bulkLimit}
	return h.scenario(ctx, sc, so, n, true, func(e *env) error {
		dir := filepath.Join(e.dir, "profiles")
		if err := writeConfig(dir, profilesHCL(e.devs, e.plan)); err != nil {
			return err
		}
		return e.applyPlanDestroy(ctx, dir, r.parallelism)
	})
}

func (e *env) applyPlanDestroy(ctx context.Context, dir string, p int) error {
	if _, _, err := e.step(ctx, dir, "apply", "apply", []int{0}, withParallelism(applyArgs, p)...); err != nil {
		return err
	}
	if _, _, err := e.step(ctx, dir, "plan", "plan", []int{0}, withParallelism(planArgs, p)...); err != nil {
		return err
	}
	_, _, err := e.step(ctx, dir, "destroy", "destroy", []int{0}, withParallelism(destroyArgs, p)...)
	return err
}

// largeAccount: N profiles in an account of M devices, then a no-change plan whose device reads
// are counted: the provider should read the account's pages, not each device.
func (h *harness) largeAccount(ctx context.Context) *Scenario {
	n, p := h.opt.largeN, h.opt.parallelism
	sc := &Scenario{Name: scLarge, Devices: n, Parallelism: p, CallbackDelay: "0s", Account: h.opt.account,
		Title: fmt.Sprintf("a no-change plan of %d thingspace_esim_profile in an account of %d devices, -parallelism=%d", n, h.opt.account, p)}
	so := simOptions{devices: h.opt.account, callbackDelay: 0, bulkLimit: h.opt.bulkLimit}
	return h.scenario(ctx, sc, so, n, false, func(e *env) error {
		dir := filepath.Join(e.dir, "profiles")
		if err := writeConfig(dir, profilesHCL(e.devs, e.plan)); err != nil {
			return err
		}
		// Creates the profiles; measured, without a floor or a target.
		if _, _, err := e.step(ctx, dir, "apply (setup)", "", []int{0}, withParallelism(applyArgs, p)...); err != nil {
			return err
		}
		_, _, err := e.step(ctx, dir, "plan", "plan", []int{0}, withParallelism(planArgs, p)...)
		return err
	})
}

// fleet: one thingspace_esim_fleet of N devices: apply, a plan that must be empty, destroy.
func (h *harness) fleet(ctx context.Context) *Scenario {
	n, p := h.opt.fleetN, h.opt.parallelism
	sc := &Scenario{Name: scFleet, Devices: n, Parallelism: p, CallbackDelay: h.opt.fleetDelay.String(),
		Title: fmt.Sprintf("one thingspace_esim_fleet of %d devices, callback delay %s", n, h.opt.fleetDelay)}
	so := simOptions{devices: n, callbackDelay: h.opt.fleetDelay, bulkLimit: h.opt.bulkLimit}
	return h.scenario(ctx, sc, so, n, true, func(e *env) error {
		dir := filepath.Join(e.dir, "fleet")
		if err := writeConfig(dir, fleetHCL(e.devs, e.plan)); err != nil {
			return err
		}
		return e.applyPlanDestroy(ctx, dir, p)
	})
}

// fleetFaults: the fleet under 429s and device failures. The first apply should fail and name
// the devices that failed; the second should converge; ThingSpace should never have accepted an
// action for a device already in the action's target state or with a request open.
func (h *harness) fleetFaults(ctx context.Context) *Scenario {
	n, p := h.opt.fleetN, h.opt.parallelism
	sc := &Scenario{Name: scFaults, Devices: n, Parallelism: p, CallbackDelay: h.opt.fleetDelay.String(), Faults: h.opt.faults,
		Title: fmt.Sprintf("one thingspace_esim_fleet of %d devices, callback delay %s, simulator faults %s", n, h.opt.fleetDelay, h.opt.faults)}
	so := simOptions{devices: n, callbackDelay: h.opt.fleetDelay, bulkLimit: h.opt.bulkLimit}
	return h.scenario(ctx, sc, so, n, true, func(e *env) error {
		dir := filepath.Join(e.dir, "fleet")
		if err := writeConfig(dir, fleetHCL(e.devs, e.plan)); err != nil {
			return err
		}
		// The faults start now: the listener's registration is set-up, not under test.
		if err := e.srv.setFaults(ctx, h.opt.faults); err != nil {
			return err
		}
		before, err := e.srv.stats(ctx)
		if err != nil {
			return err
		}

		st1, r1, err := e.step(ctx, dir, "apply #1", "apply", []int{0, 1}, withParallelism(applyArgs, p)...)
		if err != nil {
			return err
		}
		notActive, err := e.notActive(ctx)
		if err != nil {
			return err
		}
		st1.Targets = append(st1.Targets, namesFailed(r1, e.devs, notActive))

		// The device failures were those of the first apply (the simulator draws them again on
		// every attempt, so at 2 % some of the ~200 devices sent again would fail anew, and
		// "the second apply converges" would depend on luck); the 429 storm goes on.
		if err := e.srv.setFaults(ctx, withoutFault(h.opt.faults, "fail")); err != nil {
			return err
		}
		st2, _, err := e.step(ctx, dir, "apply #2", "apply", []int{0}, withParallelism(applyArgs, p)...)
		if err != nil {
			return err
		}
		left, err := e.notActive(ctx)
		if err != nil {
			return err
		}
		st2.Targets = append(st2.Targets, Target{Text: "second apply converges", Pass: len(left) == 0,
			Got: fmt.Sprintf("%d of %d devices active", len(e.devs)-len(left), len(e.devs))})

		after, err := e.srv.stats(ctx)
		if err != nil {
			return err
		}
		e.sc.Checks = append(e.sc.Checks, auditCheck(auditActions(newActions(before, after)), notActive))

		_, _, err = e.step(ctx, dir, "plan", "plan", []int{0}, withParallelism(planArgs, p)...)
		return err
	})
}

// withoutFault removes one fault from a simulator fault specification ("429=0.2,fail=0.02").
func withoutFault(spec, name string) string {
	var kept []string
	for part := range strings.SplitSeq(spec, ",") {
		if k, _, _ := strings.Cut(strings.TrimSpace(part), "="); k != name && strings.TrimSpace(part) != "" {
			kept = append(kept, strings.TrimSpace(part))
		}
	}
	return strings.Join(kept, ",")
}

// notActive returns the scenario's devices that ThingSpace does not have active, as a set.
func (e *env) notActive(ctx context.Context) (map[string]bool, error) {
	all, err := e.srv.devices(ctx)
	if err != nil {
		return nil, err
	}
	state := make(map[string]string, len(all))
	for _, d := range all {
		state[d.EID] = d.State
	}
	out := map[string]bool{}
	for _, d := range e.devs {
		if state[d.eid] != "active" {
			out[d.eid] = true
		}
	}
	return out, nil
}

// namesFailed checks that a failed apply names the devices that failed: its error output names
// at least one of the devices left not active, and no device that is active. (The fleet names
// the first few and counts the rest.)
func namesFailed(r tfRun, devs []device, notActive map[string]bool) Target {
	t := Target{Text: "first apply fails, naming the failed devices"}
	b, _ := os.ReadFile(r.stderr)
	errText := string(b)
	named, wrong := 0, 0
	for _, d := range devs {
		if strings.Contains(errText, d.eid) {
			if notActive[d.eid] {
				named++
			} else {
				wrong++
			}
		}
	}
	switch {
	case r.exit == 0:
		t.Got = fmt.Sprintf("it succeeded (%d devices not active)", len(notActive))
	case len(notActive) == 0:
		t.Got = "it failed, but every device is active"
	default:
		t.Pass = named > 0 && wrong == 0
		t.Got = fmt.Sprintf("names %d of the %d devices left not active", named, len(notActive))
		if wrong > 0 {
			t.Got += fmt.Sprintf(", and %d active ones", wrong)
		}
	}
	return t
}

// auditCheck turns the action audit into the scenario's check. A repeated activate of a device
// that the first apply left not active is the retry it should be; any other repeat is listed.
func auditCheck(a actionAudit, failedFirst map[string]bool) Target {
	t := Target{Text: "no action accepted for a device already done or with an open request",
		Pass: len(a.AlreadyDone) == 0 && len(a.OpenRequest) == 0}
	var unexplained []string
	for _, eid := range a.Repeated["activate"] {
		if !failedFirst[eid] {
			unexplained = append(unexplained, eid)
		}
	}
	t.Got = fmt.Sprintf("%d already done, %d with a request open; activate repeated for %d EIDs (%d of them not among the first apply's failures)",
		len(a.AlreadyDone), len(a.OpenRequest), len(a.Repeated["activate"]), len(unexplained))
	t.Detail = append(append(append(t.Detail, firstN(a.AlreadyDone, 5)...), firstN(a.OpenRequest, 5)...), firstN(prefixAll("activate repeated, not a retry: ", unexplained), 5)...)
	for action, eids := range a.Repeated {
		if action != "activate" {
			t.Detail = append(t.Detail, fmt.Sprintf("%s repeated for %d EIDs (first: %s)", action, len(eids), eids[0]))
		}
	}
	return t
}

func firstN(xs []string, n int) []string {
	if len(xs) > n {
		return append(xs[:n:n], fmt.Sprintf("... and %d more", len(xs)-n))
	}
	return xs
}

func prefixAll(p string, xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = p + x
	}
	return out
}
