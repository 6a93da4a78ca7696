package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// interruptGrace is how long Terraform gets after SIGINT (a time-out or Ctrl-C) to stop
// cleanly and write its state, before its process group is killed.
const interruptGrace = 60 * time.Second

// tfRun is one finished Terraform command.
type tfRun struct {
	args   []string
	exit   int // -1: it did not start, or was stopped (err says why)
	wall   time.Duration
	stdout string // files with its output
	stderr string
	procs  []procUsage // one per provider process it started
	err    error       // did not start, timed out, interrupted
}

// command is the command line as a user would type it.
func (r tfRun) command() string { return "terraform " + strings.Join(r.args, " ") }

// errorLines returns up to n lines of Terraform's error output, from its first "Error:" on
// (stderr only: stdout of an apply also shows the plan, whose EIDs are not errors).
func (r tfRun) errorLines(n int) []string {
	b, err := os.ReadFile(r.stderr)
	if err != nil {
		return nil
	}
	var out []string
	started := false
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimRight(strings.TrimLeft(l, "│╷╵ "), " ")
		if !started {
			started = strings.HasPrefix(l, "Error:")
		}
		if started && l != "" && len(out) < n {
			out = append(out, l)
		}
	}
	return out
}

// stderrText is the whole error output.
func (r tfRun) stderrText() string {
	b, _ := os.ReadFile(r.stderr)
	return string(b)
}

// terraform runs the Terraform CLI in dir with env, its output in dir/logs/<label>.*, at most
// opt.timeout; on time-out or interruption it gets SIGINT, then interruptGrace, then SIGKILL
// for its whole process group (the provider processes included).
func (h *harness) terraform(ctx context.Context, dir, label string, env []string, args ...string) tfRun {
	r := tfRun{args: args, exit: -1}
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		r.err = err
		return r
	}
	base := filepath.Join(logs, fmt.Sprintf("%02d-%s", h.seq.next(), fileSafe(label)))
	r.stdout, r.stderr = base+".stdout", base+".stderr"
	usage := base + ".rusage.jsonl"
	stdout, err := os.Create(r.stdout)
	if err != nil {
		r.err = err
		return r
	}
	defer stdout.Close()
	stderr, err := os.Create(r.stderr)
	if err != nil {
		r.err = err
		return r
	}
	defer stderr.Close()

	cmd := exec.Command(h.tf, append([]string{"-chdir=" + dir}, args...)...)
	cmd.Env = append(append(h.tfEnv(), env...), envRusageFile+"="+usage)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	ownProcessGroup(cmd)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		r.err = fmt.Errorf("starting %s: %w", h.tf, err)
		return r
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timer := time.NewTimer(h.opt.timeout)
	defer timer.Stop()
	var werr error
	select {
	case werr = <-done:
	case <-timer.C:
		r.err = fmt.Errorf("%s: no answer after %s (-timeout); stopped", r.command(), h.opt.timeout)
		werr = stopGracefully(cmd, done)
	case <-ctx.Done():
		r.err = errInterrupted
		werr = stopGracefully(cmd, done)
	}
	r.wall = time.Since(start)
	var exitErr *exec.ExitError
	switch {
	case werr == nil:
		r.exit = 0
	case errors.As(werr, &exitErr) && exitErr.ExitCode() >= 0:
		r.exit = exitErr.ExitCode()
	case r.err == nil:
		r.err = werr
	}
	r.procs, err = readUsage(usage)
	if err != nil && r.err == nil {
		r.err = err
	}
	return r
}

// stopGracefully sends SIGINT to Terraform (not to its providers: Terraform stops them), waits
// interruptGrace, then kills the process group.
func stopGracefully(cmd *exec.Cmd, done <-chan error) error {
	_ = cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-done:
		return err
	case <-time.After(interruptGrace):
		signalGroup(cmd, syscall.SIGKILL)
		return <-done
	}
}

// readUsage reads the wrapper's lines; no file means no provider process (terraform_data).
func readUsage(name string) ([]procUsage, error) {
	f, err := os.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []procUsage
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var u procUsage
		if err := json.Unmarshal(sc.Bytes(), &u); err != nil {
			return out, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, u)
	}
	return out, sc.Err()
}

// tfEnv is the environment of every Terraform command: the cleaned harness environment, the CLI
// configuration with the provider's dev_overrides, no update check, no prompts.
func (h *harness) tfEnv() []string {
	return append(cleanEnv(), "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1", "TF_INPUT=0",
		"TF_CLI_CONFIG_FILE="+h.cliConfig, envRealProvider+"="+h.bins.provider)
}

// installWrapper makes this executable the provider Terraform finds through dev_overrides, and
// writes the CLI configuration that says so. Terraform then needs no `terraform init`.
func (h *harness) installWrapper() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	plugins := filepath.Join(h.work, "plugins")
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		return err
	}
	if err := os.Symlink(self, filepath.Join(plugins, "terraform-provider-thingspace")); err != nil {
		return err
	}
	h.cliConfig = filepath.Join(h.work, "terraformrc")
	rc := fmt.Sprintf("provider_installation {\n  dev_overrides {\n    %q = %q\n  }\n  direct {}\n}\n",
		h.providerHost+"/fleetform/thingspace", plugins)
	return os.WriteFile(h.cliConfig, []byte(rc), 0o644)
}

// terraformVersion returns the CLI's first version line ("Terraform v1.11.4") and the registry
// host it gives a bare provider source.
func terraformVersion(ctx context.Context, tf string) (version, host string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, tf, "version")
	cmd.Env = append(cleanEnv(), "CHECKPOINT_DISABLE=1", "TF_CLI_CONFIG_FILE=/dev/null")
	out, err := cmd.Output()
	if err != nil {
		return "", "", fmt.Errorf("%s version: %w", tf, err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(l, "Terraform v"):
			return l, "registry.terraform.io", nil
		case strings.HasPrefix(l, "OpenTofu v"):
			return l, "registry.opentofu.org", nil
		}
	}
	return "", "", fmt.Errorf("%s version prints no Terraform or OpenTofu version line", tf)
}

// fileSafe makes a label a file name.
func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '_'
	}, s)
}

// counter numbers the log files in the order the commands ran.
type counter struct{ n int }

func (c *counter) next() int { c.n++; return c.n }
