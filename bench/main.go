// Command bench is `make bench`: it measures real Terraform runs of the provider against
// thingspace-sim and thingspace-relay and, in the same run, their floor: the same commands over
// terraform_data with the same for_each over the same device map, the cost Terraform itself has
// for that many instances. It prints a Markdown table per scenario with the provider's CPU time
// and peak RSS, the ThingSpace requests by kind and a pass/miss verdict against the targets, and
// writes the tables and a JSON report into bench/results/. See bench/README.md.
//
// Exit codes: 0 when every Terraform command did what was expected (a missed target is reported,
// not a failure), 1 when one failed unexpectedly or the harness broke, 2 for bad flags, 130 when
// interrupted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Scenario names, in the order they run.
const (
	scProfiles = "profiles"
	scLarge    = "plan-in-large-account"
	scFleet    = "fleet"
	scFaults   = "fleet-faults"
)

var allScenarios = []string{scProfiles, scLarge, scFleet, scFaults}

// options are the command's flags.
type options struct {
	scenarios    map[string]bool
	n            int
	profilesRuns []profilesRun
	parallelism  int
	largeN       int
	account      int
	fleetN       int
	fleetDelay   time.Duration
	faults       string
	bulkLimit    int
	floorRuns    int
	floorMax     int
	timeout      time.Duration
	terraform    string
	binDir       string
	results      string
	repo         string
	keep         bool
	args         []string // as given, for the report
}

// profilesRun is one run of the profiles scenario: Terraform's -parallelism and the
// simulator's callback delay.
type profilesRun struct {
	parallelism int
	delay       time.Duration
}

func main() {
	// Started by Terraform as the provider: see wrap.go.
	if real := os.Getenv(envRealProvider); real != "" {
		os.Exit(wrapProvider(real, os.Getenv(envRusageFile), os.Args[1:]))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run is the command; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opt, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 2
	}
	if opt.repo, err = findRepo(opt.repo); err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	if opt.results == "" {
		opt.results = filepath.Join(opt.repo, "bench", "results")
	}
	rep, err := runHarness(ctx, opt, stderr)
	if rep != nil && len(rep.Scenarios) > 0 {
		md := rep.markdown()
		fmt.Fprint(stdout, md)
		files, werr := rep.write(opt.results, md)
		if werr != nil {
			fmt.Fprintln(stderr, "bench: writing the results:", werr)
			return 1
		}
		fmt.Fprintf(stderr, "bench: wrote %s\n", strings.Join(files, ", "))
	}
	switch {
	case ctx.Err() != nil:
		fmt.Fprintln(stderr, "bench: interrupted")
		return 130
	case err != nil:
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	case rep.failed():
		fmt.Fprintln(stderr, "bench: FAILED: a Terraform command failed unexpectedly (see the errors above)")
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	opt := options{args: args}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scenarios := fs.String("scenarios", strings.Join(allScenarios, ","), "comma-separated scenarios to run: "+strings.Join(allScenarios, ", "))
	fs.IntVar(&opt.n, "n", 1000, "profiles: thingspace_esim_profile instances (pre-active devices of a simulator of that size)")
	runs := fs.String("profiles-runs", "10:0s,10:1s,50:1s", "profiles: the runs, as parallelism:callback-delay pairs")
	fs.IntVar(&opt.parallelism, "parallelism", 10, "Terraform -parallelism of the scenarios other than profiles")
	fs.IntVar(&opt.largeN, "large-n", 1000, "plan-in-large-account: thingspace_esim_profile instances")
	fs.IntVar(&opt.account, "account", 10000, "plan-in-large-account: devices in the account")
	fs.IntVar(&opt.fleetN, "fleet-n", 10000, "fleet, fleet-faults: devices of the thingspace_esim_fleet")
	fs.DurationVar(&opt.fleetDelay, "fleet-delay", time.Second, "fleet, fleet-faults: the simulator's callback delay")
	fs.StringVar(&opt.faults, "faults", "429=0.2,fail=0.02", "fleet-faults: the simulator's faults (thingspace-sim -faults)")
	fs.IntVar(&opt.bulkLimit, "bulk-limit", 10000, "the simulator's largest action (thingspace-sim -bulk-limit); the fleet's action target is ⌈devices / min(this, the provider's bulk_size 10000)⌉")
	fs.IntVar(&opt.floorRuns, "floor-runs", 3, "floor repetitions per scenario (the median is reported)")
	fs.IntVar(&opt.floorMax, "floor-max", 1000, "measure the floor with at most this many terraform_data instances and scale it linearly (0: no limit)")
	fs.DurationVar(&opt.timeout, "timeout", 30*time.Minute, "longest Terraform command; a stuck one is interrupted, then killed")
	fs.StringVar(&opt.terraform, "terraform", "", "Terraform CLI (default: $TF_ACC_TERRAFORM_PATH, else scripts/terraform-path.sh)")
	fs.StringVar(&opt.binDir, "bin", "", "take the provider, thingspace-sim and thingspace-relay from this folder (make build puts them in ./bin) instead of building them")
	fs.StringVar(&opt.results, "results", "", "results folder (default: bench/results in the repository)")
	fs.StringVar(&opt.repo, "repo", "", "the repository (default: found from the current folder)")
	fs.BoolVar(&opt.keep, "keep", false, "keep the work folder (configurations, states, every command's output, server logs)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: go run ./bench [flags]   (make bench BENCHFLAGS='...')")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return opt, err
	}
	if fs.NArg() > 0 {
		return opt, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	opt.scenarios = map[string]bool{}
	for s := range strings.SplitSeq(*scenarios, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !slices.Contains(allScenarios, s) {
			return opt, fmt.Errorf("-scenarios: unknown scenario %q (known: %s)", s, strings.Join(allScenarios, ", "))
		}
		opt.scenarios[s] = true
	}
	if len(opt.scenarios) == 0 {
		return opt, errors.New("-scenarios: none given")
	}
	var err error
	if opt.profilesRuns, err = parseRuns(*runs); err != nil {
		return opt, err
	}
	for _, c := range []struct {
		name string
		v    int
	}{{"-n", opt.n}, {"-parallelism", opt.parallelism}, {"-large-n", opt.largeN}, {"-fleet-n", opt.fleetN}, {"-floor-runs", opt.floorRuns}} {
		if c.v < 1 {
			return opt, fmt.Errorf("%s must be at least 1", c.name)
		}
	}
	switch {
	case opt.account < opt.largeN:
		return opt, fmt.Errorf("-account (%d) must be at least -large-n (%d)", opt.account, opt.largeN)
	case opt.floorMax < 0, opt.bulkLimit < 1, opt.fleetDelay < 0:
		return opt, errors.New("-floor-max, -bulk-limit and -fleet-delay must not be negative (-bulk-limit at least 1)")
	case opt.timeout <= 0:
		return opt, errors.New("-timeout must be positive")
	}
	return opt, nil
}

// parseRuns parses "10:0s,10:1s,50:1s".
func parseRuns(s string) ([]profilesRun, error) {
	var out []profilesRun
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		p, d, ok := strings.Cut(part, ":")
		par, err := strconv.Atoi(p)
		if !ok || err != nil || par < 1 {
			return nil, fmt.Errorf("-profiles-runs: %q is not parallelism:delay (such as 10:1s)", part)
		}
		delay, err := time.ParseDuration(d)
		if err != nil || delay < 0 {
			return nil, fmt.Errorf("-profiles-runs: %q: the delay is not a duration (such as 0s or 1s)", part)
		}
		out = append(out, profilesRun{parallelism: par, delay: delay})
	}
	if len(out) == 0 {
		return nil, errors.New("-profiles-runs: none given")
	}
	return out, nil
}
