//go:build unix

package provider

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// SIGKILL of the CLI under test and of the provider it runs (their process group, as when a CI
// runner or a machine dies) right after ThingSpace accepted the activate: nothing reaches the
// state file, so the next apply plans a plain create. What it finds at the relay (the intent
// written before the POST, the request registered after it, or the callback that arrives for
// the device) makes it wait for the activate already sent and adopt the device. One activate in
// all; the plan after is empty.
func TestAccESIMProfile_killedApply(t *testing.T) {
	t.Parallel() // waits on slow callbacks: overlaps with the other waiting tests
	env := newTestEnv(t, envOptions{Relay: true, CallbackDelay: 10 * time.Second})
	us := env.plansOfType("US")
	dev := env.device(t, 0)
	w := newCLIWorkdir(t, env.providerBlock()+testAccESIMProfileConfig_basic(env, "p", dev.EID, us[0]))

	var out syncBuffer
	apply := w.command(&out, "apply", "-auto-approve", "-input=false", "-no-color")
	apply.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := apply.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- apply.Wait() }()
	killGroup := func() { _ = syscall.Kill(-apply.Process.Pid, syscall.SIGKILL) }
	// Kill once ThingSpace accepted the activate (bounded wait); its callback comes 10 s later,
	// so the apply cannot have finished.
	if !waitFor(2*time.Minute, func() bool { return env.actionCount("activate") > 0 || len(exited) > 0 }) {
		killGroup()
		<-exited
		t.Fatalf("no activate within 2 minutes:\n%s", out.String())
	}
	if len(exited) > 0 {
		t.Fatalf("%s apply ended before ThingSpace accepted the activate: %v\n%s", w.cli.Name, <-exited, out.String())
	}
	killGroup()
	err := <-exited
	if ws, ok := exitStatus(err); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("%s apply: %v, want killed by SIGKILL\n%s", w.cli.Name, err, out.String())
	}

	if text, code := w.run("state", "list"); strings.Contains(text, "thingspace_esim_profile") {
		t.Fatalf("state after the kill: exit code %d, %q; want no instance (nothing reached the state file)", code, text)
	}
	if text, code := w.run("apply", "-auto-approve", "-input=false", "-no-color"); code != 0 {
		t.Fatalf("apply after the kill: exit code %d:\n%s", code, text)
	}
	expectDeviceActions(t, env.Sim, map[string][]string{dev.EID: {"activate"}}) // only the activate sent before the kill
	if err := noActionWhileOpen(env); err != nil {
		t.Error(err)
	}
	if d := env.deviceByEID(t, dev.EID); d.State != "active" || d.ServicePlan != us[0] {
		t.Errorf("device after the second apply: %s on %s, want active on %s", d.State, d.ServicePlan, us[0])
	}
	if text, code := w.run("plan", "-detailed-exitcode", "-input=false", "-no-color"); code != 0 {
		t.Errorf("plan after the second apply: exit code %d, want 0 (no changes):\n%s", code, text)
	}
}
