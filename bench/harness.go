package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// binaries are the three programs under test.
type binaries struct{ provider, sim, relay string }

// harness is one run of the command.
type harness struct {
	opt          options
	log          io.Writer
	repo         string // options.repo, resolved
	work         string // temporary folder of the run
	tf           string
	providerHost string
	cliConfig    string
	bins         binaries
	seq          counter
}

// runHarness prepares the run (Terraform, the binaries, the provider wrapper), runs the chosen
// scenarios one after the other, each with servers of its own, and returns the report.
func runHarness(ctx context.Context, opt options, log io.Writer) (*Report, error) {
	h := &harness{opt: opt, log: log, repo: opt.repo}
	var err error
	if h.work, err = os.MkdirTemp("", "thingspace-bench-"); err != nil {
		return nil, err
	}
	if opt.keep {
		h.logf("work folder %s (kept: -keep)", h.work)
	} else {
		defer os.RemoveAll(h.work)
	}
	if h.tf, err = h.findTerraform(ctx); err != nil {
		return nil, err
	}
	version, host, err := terraformVersion(ctx, h.tf)
	if err != nil {
		return nil, err
	}
	h.providerHost = host
	h.logf("%s at %s", version, h.tf)
	if err := h.getBinaries(ctx); err != nil {
		return nil, err
	}
	if err := h.installWrapper(); err != nil {
		return nil, fmt.Errorf("installing the provider wrapper: %w", err)
	}

	rep := &Report{Started: time.Now().UTC(), Terraform: version, Platform: runtime.GOOS + "/" + runtime.GOARCH,
		CPUs: runtime.NumCPU(), Args: opt.args}
	defer func() { rep.Finished = time.Now().UTC() }()
	var plan []func(context.Context) *Scenario
	if opt.scenarios[scProfiles] {
		for _, r := range opt.profilesRuns {
			plan = append(plan, func(ctx context.Context) *Scenario { return h.profiles(ctx, r) })
		}
	}
	if opt.scenarios[scLarge] {
		plan = append(plan, h.largeAccount)
	}
	if opt.scenarios[scFleet] {
		plan = append(plan, h.fleet)
	}
	if opt.scenarios[scFaults] {
		plan = append(plan, h.fleetFaults)
	}
	for _, sc := range plan {
		if ctx.Err() != nil {
			rep.Interrupted = true
			break
		}
		rep.Scenarios = append(rep.Scenarios, sc(ctx))
	}
	rep.Interrupted = rep.Interrupted || ctx.Err() != nil
	return rep, nil
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(h.log, "bench: "+format+"\n", args...)
}

// findRepo returns the repository: dir when given, else the first folder up from the current
// one with this module's go.mod.
func findRepo(dir string) (string, error) {
	if dir != "" {
		return filepath.Abs(dir)
	}
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for range 64 { // bounded: a path has fewer components
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil &&
			strings.Contains(string(b), "module github.com/fleetform/terraform-provider-thingspace\n") {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			break
		}
		d = parent
	}
	return "", errors.New("not inside the terraform-provider-thingspace repository (run from it, or give -repo)")
}

// findTerraform: -terraform, else $TF_ACC_TERRAFORM_PATH (what make test sets), else
// scripts/terraform-path.sh, which finds one or builds one.
func (h *harness) findTerraform(ctx context.Context) (string, error) {
	for _, p := range []string{h.opt.terraform, os.Getenv("TF_ACC_TERRAFORM_PATH")} {
		if p != "" {
			return exec.LookPath(p)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Minute) // it may build Terraform
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(h.repo, "scripts", "terraform-path.sh"))
	cmd.Stderr = h.log
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("scripts/terraform-path.sh: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// getBinaries takes the three programs from -bin, or builds them into the work folder (not
// ./bin, which another command may be using at the same time).
func (h *harness) getBinaries(ctx context.Context) error {
	dir := h.opt.binDir
	if dir == "" {
		dir = filepath.Join(h.work, "bin")
		h.logf("building the provider, thingspace-sim and thingspace-relay")
		ctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
		defer cancel()
		// A plain build, which shares the build cache with go test (the smoke test runs under
		// make test); `make bench` takes make build's release-like binaries (-bin ./bin).
		cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(filepath.Separator),
			".", "./cmd/thingspace-sim", "./cmd/thingspace-relay")
		cmd.Dir = h.repo
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build: %w\n%s", err, out)
		}
	}
	dir, err := filepath.Abs(dir) // Terraform runs the provider from another folder
	if err != nil {
		return err
	}
	exe := ""
	if runtime.GOOS == "windows" {
		exe = ".exe"
	}
	h.bins = binaries{
		provider: filepath.Join(dir, "terraform-provider-thingspace"+exe),
		sim:      filepath.Join(dir, "thingspace-sim"+exe),
		relay:    filepath.Join(dir, "thingspace-relay"+exe),
	}
	for _, p := range []string{h.bins.provider, h.bins.sim, h.bins.relay} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%w (run make build, or leave out -bin to build them)", err)
		}
	}
	return nil
}
