package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

// The provider wrapper. The harness installs its own executable as the provider
// (terraform-provider-thingspace in the dev_overrides folder) and sets envRealProvider in
// Terraform's environment; Terraform starts that "provider", which runs the real one as a child
// with the same standard streams (the plugin handshake goes straight to Terraform), waits for
// it, and appends the child's resource usage as a JSON line to the file envRusageFile names.
// Terraform stops its plugins gracefully at the end of every command, so every provider
// process it started leaves one line: the CPU time and peak RSS are the kernel's, not sampled.
const (
	envRealProvider = "THINGSPACE_BENCH_REAL_PROVIDER"
	envRusageFile   = "THINGSPACE_BENCH_RUSAGE_FILE"
)

// procUsage is one provider process's line in the envRusageFile file.
type procUsage struct {
	PID       int     `json:"pid"`
	Exit      int     `json:"exit"`
	UserSec   float64 `json:"userSeconds"`
	SysSec    float64 `json:"sysSeconds"`
	MaxRSSKiB int64   `json:"maxRssKiB"`
}

// wrapProvider runs the real provider and returns its exit code.
func wrapProvider(real, usageFile string, args []string) int {
	// SIGINT: Terraform (and a terminal's Ctrl-C, for the whole group) interrupts the plugin
	// itself, which go-plugin's server handles; the wrapper must outlive its child to write
	// the line. SIGTERM is passed on.
	signal.Ignore(os.Interrupt)
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)

	cmd := exec.Command(real, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "thingspace bench provider wrapper:", err)
		return 1
	}
	go func() {
		for s := range term {
			_ = cmd.Process.Signal(s)
		}
	}()
	err := cmd.Wait()
	code := 0
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	} else if err != nil {
		fmt.Fprintln(os.Stderr, "thingspace bench provider wrapper:", err)
		code = 1
	}
	if usageFile != "" && cmd.ProcessState != nil {
		u := procUsage{PID: cmd.ProcessState.Pid(), Exit: cmd.ProcessState.ExitCode()}
		var rss int64
		if user, sys, maxRSS, ok := usageOf(cmd.ProcessState); ok {
			u.UserSec, u.SysSec, rss = user, sys, maxRSS
		}
		u.MaxRSSKiB = rss / 1024
		if err := appendJSONLine(usageFile, u); err != nil {
			fmt.Fprintln(os.Stderr, "thingspace bench provider wrapper:", err)
		}
	}
	if code < 0 { // killed by a signal
		code = 1
	}
	return code
}

// appendJSONLine appends v as one line. O_APPEND with a single short write keeps the lines of
// provider processes that end at the same time apart.
func appendJSONLine(name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
