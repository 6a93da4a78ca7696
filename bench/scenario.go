package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// env is one scenario's world: its servers, its device map, its floor, and the report it fills.
type env struct {
	h     *harness
	sc    *Scenario
	dir   string
	srv   *servers
	devs  []device // the device map of the configurations under test
	plan  string   // a US service plan of the simulator
	floor *floor
}

// floor measures the same commands over terraform_data with the same for_each over the same
// device map (its first floorMax entries when -floor-max is smaller, scaled linearly).
type floor struct {
	dir     string
	n, full int  // instances measured, and the scenario's size
	cycle   bool // each repetition applies, plans and destroys; else apply once, then plans
	applied bool
	reps    int
	samples map[string][]float64 // by step kind: apply, plan, destroy
}

// seconds is the floor of a step kind at the scenario's size; ok is false without samples.
func (f *floor) seconds(kind string) (float64, bool) {
	s := f.samples[kind]
	if len(s) == 0 {
		return 0, false
	}
	return median(s) * float64(f.full) / float64(f.n), true
}

// newEnv starts the servers of a scenario, registers the relay as callback listener, and picks
// the scenario's n pre-active devices and a US plan.
func (h *harness) newEnv(ctx context.Context, sc *Scenario, so simOptions, n int, floorCycle bool) (*env, error) {
	e := &env{h: h, sc: sc, dir: filepath.Join(h.work, fileSafe(sc.label()))}
	if err := os.MkdirAll(e.dir, 0o755); err != nil {
		return nil, err
	}
	h.logf("%s: starting thingspace-sim (%d devices, callback delay %s) and thingspace-relay", sc.label(), so.devices, so.callbackDelay)
	var err error
	if e.srv, err = startServers(ctx, h.bins, e.dir, so); err != nil {
		return nil, err
	}
	all, err := e.srv.devices(ctx)
	if err != nil {
		return e, err
	}
	for _, d := range all {
		if d.State == "pre-active" && len(e.devs) < n {
			e.devs = append(e.devs, device{eid: d.EID, iccid: d.ICCID, imei: d.IMEI})
		}
	}
	if len(e.devs) < n {
		return e, fmt.Errorf("the simulator has %d pre-active devices, %d wanted", len(e.devs), n)
	}
	plans, err := e.srv.plans(ctx)
	if err != nil {
		return e, err
	}
	for _, p := range plans {
		if p.Type == "US" {
			e.plan = p.Code
			break
		}
	}
	if e.plan == "" {
		return e, errors.New("the simulator lists no US service plan")
	}
	fn := n
	if h.opt.floorMax > 0 && fn > h.opt.floorMax {
		fn = h.opt.floorMax
	}
	e.floor = &floor{dir: filepath.Join(e.dir, "floor"), n: fn, full: n, cycle: floorCycle, samples: map[string][]float64{}}
	if err := writeConfig(e.floor.dir, floorHCL(e.devs[:fn])); err != nil {
		return e, err
	}
	sc.Floor = FloorInfo{Instances: fn, Scaled: fn < n}

	// The listener, in a workspace of its own: not part of what is measured.
	lis := filepath.Join(e.dir, "listener")
	if err := writeConfig(lis, listenerHCL(e.srv.ingestURL, e.srv.callbackPwd)); err != nil {
		return e, err
	}
	r := h.terraform(ctx, lis, "listener-apply", e.srv.providerEnv(), "apply", "-auto-approve", "-input=false", "-no-color", "-compact-warnings")
	if err := e.unexpected(r, 0); err != nil {
		return e, fmt.Errorf("registering the relay as callback listener: %w", err)
	}
	return e, nil
}

// close stops the servers.
func (e *env) close() {
	if e != nil {
		e.srv.stop()
	}
}

func writeConfig(dir, hcl string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "main.tf"), []byte(hcl), 0o644)
}

// unexpected is the error of a command that did not end with one of the expected exit codes.
func (e *env) unexpected(r tfRun, want ...int) error {
	if r.err != nil {
		return r.err
	}
	if slices.Contains(want, r.exit) {
		return nil
	}
	detail := strings.Join(r.errorLines(12), "\n  ")
	if detail == "" {
		detail = lastLines(r.stderrText(), 12)
	}
	if err := e.srv.check(); err != nil {
		detail += "\n  " + err.Error()
	}
	return fmt.Errorf("%s exited with %d (output in %s):\n  %s", r.command(), r.exit, filepath.Dir(r.stderr), detail)
}

// floorRep runs one repetition of the floor: apply, no-change plan, destroy (or, without cycle,
// the apply once and then a plan each time).
func (e *env) floorRep(ctx context.Context) error {
	f := e.floor
	f.reps++
	p := "-parallelism=" + strconv.Itoa(e.sc.Parallelism)
	run := func(kind string, want int, args ...string) error {
		r := e.h.terraform(ctx, f.dir, fmt.Sprintf("floor-%d-%s", f.reps, kind), nil, args...)
		if r.err == nil && r.exit != want {
			return fmt.Errorf("floor: %s exited with %d: %s", r.command(), r.exit, lastLines(r.stderrText(), 8))
		}
		if r.err != nil {
			return fmt.Errorf("floor: %w", r.err)
		}
		f.samples[kind] = append(f.samples[kind], r.wall.Seconds())
		e.h.logf("%s: floor #%d %s %.1fs (%d terraform_data)", e.sc.label(), f.reps, kind, r.wall.Seconds(), f.n)
		return nil
	}
	if !f.applied {
		if err := run("apply", 0, "apply", "-auto-approve", "-input=false", "-no-color", p); err != nil {
			return err
		}
		f.applied = true
	}
	if err := run("plan", 0, "plan", "-detailed-exitcode", "-input=false", "-no-color", p); err != nil {
		return err
	}
	if f.cycle {
		if err := run("destroy", 0, "destroy", "-auto-approve", "-input=false", "-no-color", p); err != nil {
			return err
		}
		f.applied = false
	}
	return nil
}

// moreFloor runs the repetitions of the floor not run yet.
func (e *env) moreFloor(ctx context.Context) error {
	for e.floor.reps < e.h.opt.floorRuns {
		if err := e.floorRep(ctx); err != nil {
			return err
		}
	}
	return nil
}

// assignFloor gives every step the floor of its kind, from the repetitions that ran.
func (e *env) assignFloor() {
	for _, st := range e.sc.Steps {
		if v, ok := e.floor.seconds(st.Kind); ok {
			st.Floor = &v
			st.FloorSamples = e.floor.samples[st.Kind]
		}
	}
}

// step measures one Terraform command of the configuration in dir, after a repetition of the
// floor when one is still to run (so that real and floor runs alternate, under the same load).
// kind is the floor it compares with (apply, plan, destroy; "" for none). A command that exits
// otherwise than want is an error; a plan -detailed-exitcode that finds changes says which.
func (e *env) step(ctx context.Context, dir, name, kind string, want []int, args ...string) (*Step, tfRun, error) {
	if kind != "" && e.floor.reps < e.h.opt.floorRuns {
		if err := e.floorRep(ctx); err != nil {
			return nil, tfRun{}, err
		}
	}
	before, err := e.srv.stats(ctx)
	if err != nil {
		return nil, tfRun{}, err
	}
	r := e.h.terraform(ctx, dir, name, e.srv.providerEnv(), args...)
	after, err := e.srv.stats(ctx)
	if err != nil && r.err == nil {
		r.err = err
	}
	st := &Step{Name: name, Kind: kind, Command: r.command(), Exit: r.exit, Wall: r.wall.Seconds(),
		Requests: requestsBetween(before, after), ProviderProcesses: len(r.procs)}
	st.ProviderCPU, st.ProviderRSSMB = providerUsage(r.procs)
	st.RequestsPerDevice = float64(st.Requests.Total) / float64(len(e.devs))
	st.MeanBatch = st.Requests.meanBatch()
	if r.exit != 0 {
		st.ErrorLines = r.errorLines(12)
	}
	e.sc.Steps = append(e.sc.Steps, st)
	e.h.logf("%s: %s %.1fs (exit %d; %s)", e.sc.label(), name, st.Wall, r.exit, st.Requests)
	if r.exit == 2 && slices.Contains(args, "-detailed-exitcode") && !slices.Contains(want, 2) {
		b, _ := os.ReadFile(r.stdout)
		err = fmt.Errorf("%s found changes after apply (exit 2): the plan must be empty:\n  %s", r.command(), planChanges(string(b), 10))
	} else {
		err = e.unexpected(r, want...)
	}
	st.Failed = err != nil
	return st, r, err
}

// planChanges returns up to n lines of a plan's "# ... will be ..." headers and its summary.
func planChanges(out string, n int) string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		t := strings.TrimSpace(l)
		if (strings.HasPrefix(t, "# ") && strings.Contains(t, " will be ")) || strings.HasPrefix(t, "# ") && strings.Contains(t, " must be ") || strings.HasPrefix(t, "Plan:") {
			lines = append(lines, t)
		}
	}
	if len(lines) > n {
		lines = append(lines[:n], fmt.Sprintf("... and %d more lines", len(lines)-n))
	}
	return strings.Join(lines, "\n  ")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n  ")
}

// scenario runs body in a new env and records its outcome; the servers are stopped whatever
// happens.
func (h *harness) scenario(ctx context.Context, sc *Scenario, so simOptions, n int, floorCycle bool, body func(*env) error) *Scenario {
	start := time.Now()
	h.logf("%s: %s", sc.label(), sc.Title)
	e, err := h.newEnv(ctx, sc, so, n, floorCycle)
	defer e.close()
	if err == nil {
		err = body(e)
	}
	if err == nil {
		err = e.moreFloor(ctx)
	}
	if e != nil && e.floor != nil {
		e.assignFloor()
	}
	sc.evaluate(h.opt)
	if err != nil {
		if ctx.Err() != nil {
			err = errInterrupted
		}
		sc.Error = err.Error()
		h.logf("%s: FAILED: %v", sc.label(), err)
	}
	sc.Seconds = time.Since(start).Seconds()
	return sc
}
