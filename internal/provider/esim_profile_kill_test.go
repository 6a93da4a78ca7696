//go:build unix

package provider

import (
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// SIGKILL of the CLI under test and of the provider it runs (their process group, as when a CI
// runner or a machine dies) right after ThingSpace accepted the activate: nothing reaches the
// state file, so the next apply plans a plain create. What it finds at the relay (the intent
// written before the POST, the request registered after it, or the callback that arrives for
// the device) makes it wait for the activate already sent and adopt the device. One activate in
// all; the plan after is empty.
func TestAccESIMProfile_killedApply(t *testing.T) {
	t.Parallel() // waits on slow callbacks: overlaps with the other waiting tests
	a := newStoppedApply(t)
	// Kill the process group once ThingSpace accepted the activate; its callback comes 10 s
	// later, so the apply cannot have finished.
	killGroup := func(apply *exec.Cmd) { _ = syscall.Kill(-apply.Process.Pid, syscall.SIGKILL) }
	output, err := a.run(t, func(apply *exec.Cmd) { apply.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }, killGroup, killGroup)
	if ws, ok := exitStatus(err); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("%s apply: %v, want killed by SIGKILL\n%s", a.w.cli.Name, err, output)
	}

	if text, code := a.w.run("state", "list"); strings.Contains(text, "thingspace_esim_profile") {
		t.Fatalf("state after the kill: exit code %d, %q; want no instance (nothing reached the state file)", code, text)
	}
	a.expectFinished(t, "kill")
	if err := noActionWhileOpen(a.env); err != nil {
		t.Error(err)
	}
}
