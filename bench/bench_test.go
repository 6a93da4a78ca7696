package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary be the provider wrapper, as the command is (wrap.go): the
// harness installs its own executable as the provider.
func TestMain(m *testing.M) {
	if real := os.Getenv(envRealProvider); real != "" {
		os.Exit(wrapProvider(real, os.Getenv(envRusageFile), os.Args[1:]))
	}
	os.Exit(m.Run())
}

// TestBenchSmoke runs the profiles scenario with 100 devices, callback delay 0 and one floor
// repetition, and checks what a user of make bench relies on: every command succeeded, the
// second plan was empty, the table and the JSON were written with the scenario, and the
// requests were counted by kind. Nothing about timings: the machine may be loaded.
func TestBenchSmoke(t *testing.T) {
	if os.Getenv("TF_ACC") == "" {
		t.Skip("an acceptance test: set TF_ACC=1 (make test does) and, optionally, TF_ACC_TERRAFORM_PATH")
	}
	t.Parallel()
	results := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"-scenarios", "profiles", "-n", "100", "-profiles-runs", "10:0s", "-floor-runs", "1",
		"-timeout", "3m", "-results", results}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit code %d\nstderr:\n%s\nstdout:\n%s", code, stderr.String(), stdout.String())
	}
	t.Logf("the harness's progress:\n%s", stderr.String())

	md, err := os.ReadFile(filepath.Join(results, "latest.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## profiles p10-d0s", "| apply |", "| plan |", "| destroy |", "ThingSpace requests by kind"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("latest.md lacks %q:\n%s", want, md)
		}
	}
	if !strings.Contains(stdout.String(), "## profiles p10-d0s") {
		t.Errorf("the table was not printed:\n%s", stdout.String())
	}
	b, err := os.ReadFile(filepath.Join(results, "latest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if stamped, _ := filepath.Glob(filepath.Join(results, "2*.json")); len(stamped) != 1 {
		t.Errorf("timestamped JSON files: %v", stamped)
	}
	if len(rep.Scenarios) != 1 || rep.Scenarios[0].Name != scProfiles || rep.Scenarios[0].Error != "" {
		t.Fatalf("scenarios: %+v", rep.Scenarios)
	}
	sc := rep.Scenarios[0]
	steps := map[string]*Step{}
	for _, st := range sc.Steps {
		steps[st.Name] = st
		// A plan -detailed-exitcode with changes exits 2: exit 0 is the empty plan.
		if st.Exit != 0 {
			t.Errorf("%s: exit code %d", st.Name, st.Exit)
		}
		if st.Floor == nil || len(st.FloorSamples) != 1 {
			t.Errorf("%s: no floor", st.Name)
		}
		if st.ProviderProcesses == 0 || st.ProviderCPU <= 0 || st.ProviderRSSMB <= 0 {
			t.Errorf("%s: provider usage not measured: %d processes, %.2f s, %.0f MB", st.Name, st.ProviderProcesses, st.ProviderCPU, st.ProviderRSSMB)
		}
	}
	for _, name := range []string{"apply", "plan", "destroy"} {
		if steps[name] == nil {
			t.Fatalf("no %s step: %+v", name, sc.Steps)
		}
	}
	if n := steps["apply"].Requests.Actions["activate"]; n <= 0 || steps["apply"].Requests.ActionDevices != 100 {
		t.Errorf("apply: %d activate requests for %d devices, want some for 100", n, steps["apply"].Requests.ActionDevices)
	}
	if n := steps["destroy"].Requests.Actions["deactivate"]; n <= 0 {
		t.Errorf("destroy: %d deactivate requests", n)
	}
	if len(steps["plan"].Requests.Actions) != 0 {
		t.Errorf("the no-change plan sent actions: %v", steps["plan"].Requests.Actions)
	}
	if len(steps["apply"].Targets) != 2 {
		t.Errorf("apply targets: %+v", steps["apply"].Targets)
	}
}

func TestRequestsBetween(t *testing.T) {
	before := simStats{
		Requests:     map[string]int{routeAction: 1, routeListV1: 2, "POST /api/ts/v1/oauth2/token": 1, "GET /sim/v1/stats": 5},
		ActionCounts: map[string]int{"activate": 1},
		Actions:      []simAction{{Action: "activate", Devices: make([]simActionDevice, 3)}},
	}
	after := simStats{
		Requests: map[string]int{routeAction: 4, routeListV1: 7, routeListV2: 1, "POST /api/ts/v1/oauth2/token": 2,
			"GET /api/m2m/v2/accounts/{account}/requests/{requestId}/status": 2, "GET /sim/v1/stats": 6, "GET /sim/v1/devices": 1},
		ActionCounts: map[string]int{"activate": 2, "deactivate": 1},
		Actions: []simAction{{Action: "activate", Devices: make([]simActionDevice, 3)},
			{Action: "activate", Devices: make([]simActionDevice, 10)}, {Action: "deactivate", Devices: make([]simActionDevice, 6)}},
	}
	r := requestsBetween(before, after)
	want := Requests{Actions: map[string]int{"activate": 1, "deactivate": 1}, ActionDevices: 16, ActionNotAccepted: 1,
		ListV1: 5, ListV2: 1, Status: 2, Other: 1, Total: 12}
	if r.String() != want.String() || r.ActionDevices != want.ActionDevices || r.meanBatch() != 8 {
		t.Errorf("got %+v (%s), want %+v (%s)", r, r, want, want)
	}
	if got := r.String(); got != "activate 1 · deactivate 1 · refused action 1 · list 5 · list v2 1 · status 2 · other 1 = 12" {
		t.Errorf("String() = %q", got)
	}
}

func TestAuditActions(t *testing.T) {
	a := auditActions([]simAction{
		{RequestID: "r1", Action: "activate", Devices: []simActionDevice{{EID: "A", ProfileStateBefore: "pre-active"}, {EID: "B", ProfileStateBefore: "pre-active"}}},
		{RequestID: "r2", Action: "activate", Devices: []simActionDevice{{EID: "A", ProfileStateBefore: "pre-active"}, {EID: "C", ProfileStateBefore: "active"}}},
		{RequestID: "r3", Action: "deactivate", Devices: []simActionDevice{{EID: "B", ProfileStateBefore: "active", OpenRequestBefore: true}}},
	})
	if len(a.Repeated["activate"]) != 1 || a.Repeated["activate"][0] != "A" || len(a.AlreadyDone) != 1 || len(a.OpenRequest) != 1 {
		t.Errorf("%+v", a)
	}
	c := auditCheck(a, map[string]bool{"A": true})
	if c.Pass || !strings.Contains(c.Got, "1 already done, 1 with a request open; activate repeated for 1 EIDs (0 of them") {
		t.Errorf("%+v", c)
	}
}

func TestHCL(t *testing.T) {
	if got := hclString(`a"${x}%{y}`); got != `"a\"$${x}%%{y}"` {
		t.Errorf("hclString: %s", got)
	}
	devs := []device{{"89049032000000000000000000000011", "89148000000000000001", "350000000000001"}}
	fleet := fleetHCL(devs, "M2M4GB")
	for _, want := range []string{`resource "thingspace_esim_fleet" "bench" {`, `service_plan        = "M2M4GB"`, `deletion_protection = false`,
		`"89049032000000000000000000000011" = { iccid = "89148000000000000001", imei = "350000000000001" }`} {
		if !strings.Contains(fleet, want) {
			t.Errorf("fleet HCL lacks %q:\n%s", want, fleet)
		}
	}
	if f := floorHCL(devs); !strings.Contains(f, `resource "terraform_data" "floor"`) || strings.Contains(f, "thingspace") {
		t.Errorf("floor HCL:\n%s", f)
	}
}

func TestParseFlags(t *testing.T) {
	var errb bytes.Buffer
	opt, err := parseFlags([]string{"-scenarios", "profiles,fleet", "-profiles-runs", "10:0s, 50:1s"}, &errb)
	if err != nil || !opt.scenarios[scProfiles] || !opt.scenarios[scFleet] || opt.scenarios[scLarge] ||
		len(opt.profilesRuns) != 2 || opt.profilesRuns[1] != (profilesRun{50, time.Second}) {
		t.Errorf("%+v %v", opt, err)
	}
	for _, bad := range [][]string{{"-scenarios", "nope"}, {"-profiles-runs", "10"}, {"-n", "0"}, {"-account", "10", "-large-n", "20"}, {"extra"}} {
		if _, err := parseFlags(bad, &errb); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}
