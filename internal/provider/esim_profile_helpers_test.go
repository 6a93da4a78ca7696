package provider

import (
	"context"
	"fmt"
	"math/big"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/fleetform/terraform-provider-thingspace/internal/sim"
)

// Helpers shared by the thingspace_esim_profile acceptance tests.

// otherEID returns a valid EID (ISO 7064 MOD 97-10 check digits) that is not in the
// simulator's inventory.
func otherEID(t *testing.T, env *testEnv) string {
	t.Helper()
	for i := range 100 {
		prefix := fmt.Sprintf("890490320000000000000%09d", 777000+i)
		n, _ := new(big.Int).SetString(prefix+"00", 10)
		check := 98 - new(big.Int).Mod(n, big.NewInt(97)).Int64()
		eid := fmt.Sprintf("%s%02d", prefix, check)
		if _, ok := env.Sim.Device(eid); !ok {
			return eid
		}
	}
	t.Fatal("no free EID")
	return ""
}

// badCheckDigits returns eid with wrong check digits.
func badCheckDigits(eid string) string {
	last := eid[len(eid)-1]
	d := byte('0')
	if last == '0' {
		d = '1'
	}
	return eid[:len(eid)-1] + string(d)
}

// testAccESIMProfileConfig_many renders several esim_profile resources after the provider block.
func testAccESIMProfileConfig_many(env *testEnv, resources ...string) string {
	return env.providerBlock() + strings.Join(resources, "\n")
}

func testAccESIMProfileConfig_basic(env *testEnv, name, eid, plan string, extra ...string) string {
	body := ""
	for _, l := range extra {
		body += "  " + l + "\n"
	}
	return fmt.Sprintf(`
resource "thingspace_esim_profile" %q {
  eid          = %q
  service_plan = %q
%s}
`, name, eid, plan, body)
}

// testAccESIMProfileConfig_global is testAccESIMProfileConfig_basic for a global profile on
// globalPlan.
func testAccESIMProfileConfig_global(env *testEnv, name, eid, plan, globalPlan string, extra ...string) string {
	return testAccESIMProfileConfig_basic(env, name, eid, plan,
		append([]string{`profile_type = "global"`, fmt.Sprintf("global_service_plan = %q", globalPlan)}, extra...)...)
}

// testAccESIMProfileConfig_fleet is n instances over devices 0..n-1, optionally with import blocks with for_each
// for each of them. The resource uses count, not for_each: terraform-plugin-testing's legacy
// state shim (run at destroy even without Check functions) rejects string instance keys
// ("for_each is not supported"); the import blocks do use for_each.
func testAccESIMProfileConfig_fleet(env *testEnv, n int, plan string, withImport bool) string {
	var b strings.Builder
	b.WriteString(env.providerBlock())
	b.WriteString("locals {\n  devices = [\n")
	for i := range n {
		fmt.Fprintf(&b, "    %q,\n", env.Sim.Devices()[i].EID)
	}
	b.WriteString("  ]\n}\n")
	if withImport {
		b.WriteString(`
import {
  for_each = local.devices
  to       = thingspace_esim_profile.d[each.key]
  id       = each.value
}
`)
	}
	fmt.Fprintf(&b, `
resource "thingspace_esim_profile" "d" {
  count        = length(local.devices)
  eid          = local.devices[count.index]
  service_plan = %q
}
`, plan)
	return b.String()
}

// untaintedAfterInterruptedCreate creates a profile (on the simulator's first US plan) whose
// create is interrupted (Ctrl-C) right after ThingSpace answered the activate, which leaves a
// tainted, unconfirmed instance, and then runs `terraform untaint` on it. Callbacks take 3 s,
// so that the device is still PENDING_ACTIVATION when the create ends. It skips the test with
// -short.
func untaintedAfterInterruptedCreate(t *testing.T) (env *chaosEnv, core *protoCore, eid string, us []string) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a simulator and a relay")
	}
	env = newChaosEnv(t, 1, true, func(o *sim.Options) { o.CallbackDelayMin, o.CallbackDelayMax = 3*time.Second, 3*time.Second })
	us = simPlansOfType(env.Sim, "US")
	for _, d := range env.Sim.Devices() {
		if d.State == "pre-active" {
			eid = d.EID
			break
		}
	}
	core = newProtoCore("thingspace_esim_profile", chaosProviderConfig(env, true))
	env.proxy.arm(core, map[int]string{1: "interrupt"})
	res := core.apply(context.Background(), map[string]coreConfig{"p": {"eid": eid, "service_plan": us[0]}}, applyHooks{})
	in := core.state["p"]
	if len(res.Errs) == 0 || in == nil || !in.tainted {
		t.Fatalf("premise: the interrupted create should leave a tainted instance; errors %v, instance saved: %v", res.Errs, in != nil)
	}
	in.tainted = false // terraform untaint
	env.proxy.arm(core, nil)
	return env, core, eid, us
}

// listRequestsAtMost is a plan check: the v1 list requests since *since are at most limit.
type listRequestsAtMost struct {
	t     *testing.T
	env   *testEnv
	since *int
	limit int
	what  string
}

func (c listRequestsAtMost) CheckPlan(_ context.Context, _ plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	n := c.env.listRequests() - *c.since
	c.t.Logf("%s: %d v1 device list requests (at most %d allowed)", c.what, n, c.limit)
	if n > c.limit {
		resp.Error = fmt.Errorf("%s made %d v1 device list requests, want at most %d", c.what, n, c.limit)
	}
}

// oneProfile is the configuration (with the provider block) of the one profile most tests
// create: "p", on device 0 with plan, the first US plan.
func oneProfile(t *testing.T, env *testEnv) (config string, dev sim.DeviceView, plan string) {
	t.Helper()
	plan, dev = env.plansOfType("US")[0], env.device(t, 0)
	return env.providerBlock() + testAccESIMProfileConfig_basic(env, "p", dev.EID, plan), dev, plan
}

// usAndGlobalProfiles configures two profiles: "us" on device a with a US plan, and "gl", a
// global profile on device b with globalPlan.
type usAndGlobalProfiles struct {
	config     string
	a, b       sim.DeviceView
	globalPlan string
}

func newUSAndGlobalProfiles(t *testing.T, env *testEnv) usAndGlobalProfiles {
	t.Helper()
	us, gl := env.plansOfType("US"), env.plansOfType("Global")
	p := usAndGlobalProfiles{a: env.device(t, 0), b: env.device(t, 1), globalPlan: gl[0]}
	p.config = testAccESIMProfileConfig_many(env, testAccESIMProfileConfig_basic(env, "us", p.a.EID, us[0]),
		testAccESIMProfileConfig_global(env, "gl", p.b.EID, us[0], gl[0]))
	return p
}

// createSteps create both: "us" ends active, device a gets activate and device b activate then
// download_enable, and glCheck and simCheck hold; then planning again changes nothing.
func (p usAndGlobalProfiles) createSteps(env *testEnv, glCheck statecheck.StateCheck, simCheck func() error) []resource.TestStep {
	return []resource.TestStep{
		{
			Config: p.config,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("thingspace_esim_profile.us", tfjsonpath.New("state"), knownvalue.StringExact("active")),
				glCheck,
			},
			Check: resource.ComposeTestCheckFunc(
				testAccCheckDeviceActions(env, map[string][]string{p.a.EID: {"activate"}, p.b.EID: {"activate", "download_enable"}}),
				checkSim(simCheck),
			),
		},
		emptyPlanStep(p.config),
	}
}

// stoppedApply is the CLI under test applying one profile (device 0, the first US plan) while
// callbacks come 10 s late, so that the apply can be stopped after ThingSpace accepted the
// activate and before its callback.
type stoppedApply struct {
	env  *testEnv
	dev  sim.DeviceView
	plan string
	w    *cliWorkdir
}

func newStoppedApply(t *testing.T) *stoppedApply {
	t.Helper()
	a := &stoppedApply{env: newTestEnv(t, envOptions{Relay: true, CallbackDelay: 10 * time.Second})}
	var config string
	config, a.dev, a.plan = oneProfile(t, a.env)
	a.w = newCLIWorkdir(t, config)
	return a
}

// run starts the apply (prepare, when not nil, adjusts the command first) and calls stop once
// ThingSpace accepted the activate (bounded wait); kill ends an apply that sends none. It
// returns what the apply printed and how it ended.
func (a *stoppedApply) run(t *testing.T, prepare, stop, kill func(*exec.Cmd)) (string, error) {
	t.Helper()
	var out syncBuffer
	apply := a.w.command(&out, "apply", "-auto-approve", "-input=false", "-no-color")
	if prepare != nil {
		prepare(apply)
	}
	if err := apply.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- apply.Wait() }()
	if !waitFor(2*time.Minute, func() bool { return a.env.actionCount("activate") > 0 || len(exited) > 0 }) {
		kill(apply)
		<-exited
		t.Fatalf("no activate within 2 minutes:\n%s", out.String())
	}
	if len(exited) > 0 {
		t.Fatalf("%s apply ended before ThingSpace accepted the activate: %v\n%s", a.w.cli.Name, <-exited, out.String())
	}
	stop(apply)
	err := <-exited
	return out.String(), err
}

// expectFinished applies again after the stopped apply (what stopped it named in messages):
// the activate sent before the stop stays the only one, the device ends active on the plan, and
// a plan after that shows no change.
func (a *stoppedApply) expectFinished(t *testing.T, stopped string) {
	t.Helper()
	if text, code := a.w.run("apply", "-auto-approve", "-input=false", "-no-color"); code != 0 {
		t.Fatalf("apply after the %s: exit code %d:\n%s", stopped, code, text)
	}
	expectDeviceActions(t, a.env.Sim, map[string][]string{a.dev.EID: {"activate"}})
	if d := a.env.deviceByEID(t, a.dev.EID); d.State != "active" || d.ServicePlan != a.plan {
		t.Errorf("device after the second apply: %s on %s, want active on %s", d.State, d.ServicePlan, a.plan)
	}
	if text, code := a.w.run("plan", "-detailed-exitcode", "-input=false", "-no-color"); code != 0 {
		t.Errorf("plan after the second apply: exit code %d, want 0 (no changes):\n%s", code, text)
	}
}
