package provider

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"testing"
)

// The module of examples/modules/esim-fleet, applied as a user applies it (the real CLI, the
// module installed by get) against the simulator and a relay: every device of the map is
// activated by one bulk activate and reported active by name; applying again plans nothing and
// sends nothing; renaming a device changes only the outputs; removing a device deactivates that
// one only; destroy deactivates the rest.
func TestAccExampleModule_esimFleet(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true, Devices: 4})
	plan := env.plansOfType("US")[0]
	devices := map[string]string{"gateway": env.device(t, 0).EID, "tracker": env.device(t, 1).EID, "sensor": env.device(t, 2).EID}
	config := func(names ...string) string {
		var b strings.Builder
		for _, n := range names {
			fmt.Fprintf(&b, "    %s = %q\n", n, devices[n])
		}
		return env.providerBlock() + fmt.Sprintf(`
module "fleet" {
  source       = %q
  service_plan = %q
  devices = {
%s  }
}

output "status" {
  value = module.fleet.status
}

output "devices" {
  value = module.fleet.devices
}
`, examplePath(t, "modules", "esim-fleet"), plan, b.String())
	}
	w := newCLIWorkdir(t, config("gateway", "tracker", "sensor"))
	run := func(what string, args ...string) string {
		t.Helper()
		text, code := w.run(args...)
		if code != 0 {
			t.Fatalf("%s: exit code %d:\n%s", what, code, text)
		}
		return text
	}
	// get, not init: it installs the module, while init would also look the provider up in the
	// registry, which dev_overrides serves locally (and a test machine may be offline).
	run("get", "get", "-no-color")
	run("apply", "apply", "-auto-approve", "-input=false", "-no-color")
	var status map[string]string
	if err := json.Unmarshal([]byte(run("output", "output", "-json", "status")), &status); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"gateway": "active", "tracker": "active", "sensor": "active"}; !maps.Equal(status, want) {
		t.Fatalf("status output %v, want %v", status, want)
	}
	var devs map[string]struct {
		EID, ICCID, State string
		LastAction        string `json:"last_action"`
	}
	if err := json.Unmarshal([]byte(run("output", "output", "-json", "devices")), &devs); err != nil {
		t.Fatal(err)
	}
	for name, eid := range devices {
		d := env.deviceByEID(t, eid)
		if d.State != "active" || d.ServicePlan != plan {
			t.Errorf("%s in the simulator: %s on %s, want active on %s", name, d.State, d.ServicePlan, plan)
		}
		if o := devs[name]; o.EID != eid || o.ICCID == "" || o.LastAction != "activate" {
			t.Errorf("devices[%s] output %+v, want EID %s, its ICCID and last_action activate", name, o, eid)
		}
	}
	sent := totalActions(env)
	if err := checkActions(env.Sim, map[string]int{"activate": 1}); err != nil {
		t.Fatalf("want one bulk activate for the 3 devices (the fleet is one resource): %v", err)
	}

	// Re-applied as is: nothing to do, and nothing sent.
	if text, code := w.run("plan", "-detailed-exitcode", "-input=false", "-no-color"); code != 0 {
		t.Fatalf("plan after the apply: exit code %d, want 0 (no changes):\n%s", code, text)
	}
	if text := run("re-apply", "apply", "-auto-approve", "-input=false", "-no-color"); !strings.Contains(text, "0 added, 0 changed, 0 destroyed") {
		t.Fatalf("re-apply did something:\n%s", text)
	}
	if n := totalActions(env); n != sent {
		t.Fatalf("the re-apply sent %d actions", n-sent)
	}

	// A device renamed: the fleet is keyed by EID, so only the outputs change.
	devices["beacon"] = devices["tracker"]
	w.writeMain(config("gateway", "beacon", "sensor"))
	if text := run("apply after the rename", "apply", "-auto-approve", "-input=false", "-no-color"); !strings.Contains(text, "0 added, 0 changed, 0 destroyed") {
		t.Fatalf("the rename changed a resource:\n%s", text)
	}
	status = nil
	if err := json.Unmarshal([]byte(run("output", "output", "-json", "status")), &status); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"gateway": "active", "beacon": "active", "sensor": "active"}; !maps.Equal(status, want) {
		t.Fatalf("status output after the rename %v, want %v", status, want)
	}
	if n := totalActions(env); n != sent {
		t.Fatalf("the rename sent %d actions", n-sent)
	}
	delete(devices, "tracker")

	// A device removed from the map: that one is deactivated, the others are left alone.
	w.writeMain(config("gateway", "beacon"))
	run("apply without sensor", "apply", "-auto-approve", "-input=false", "-no-color")
	expectDeviceActions(t, env.Sim, map[string][]string{
		devices["sensor"]:  {"activate", "deactivate"},                    // removed from the map
		devices["gateway"]: {"activate"}, devices["beacon"]: {"activate"}, // still in it
	})
	run("destroy", "destroy", "-auto-approve", "-input=false", "-no-color")
	destroyed := map[string][]string{}
	for _, eid := range devices {
		destroyed[eid] = []string{"activate", "deactivate"}
	}
	expectDeviceActions(t, env.Sim, destroyed)
	if err := noActionWhileOpen(env); err != nil {
		t.Error(err)
	}
}
