package provider

// What the simulator received: the carrier actions (activate, serviceplan, deactivate, ...) it
// accepted, counted by request, by device and in order, for the tests' checks.

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/fleetform/terraform-provider-thingspace/internal/sim"
)

// actionCount is how many requests of an action the simulator accepted.
func (e *testEnv) actionCount(action string) int {
	return e.Sim.Stats().ActionCounts[action]
}

// acceptedFor lists the actions accepted for an EID, in order.
func (e *testEnv) acceptedFor(eid string) []string { return simAcceptedFor(e.Sim, eid) }

// simAcceptedFor lists the actions a simulator accepted for an EID, in order.
func simAcceptedFor(s *sim.Simulator, eid string) []string {
	var out []string
	for _, a := range s.Stats().Actions {
		for _, d := range a.Devices {
			if d.EID == eid {
				out = append(out, a.Action)
			}
		}
	}
	return out
}

// checkActions fails unless the simulator accepted exactly the requests in want, counted by
// action: want["activate"] activate requests (a bulk request for many devices counts once),
// and so on, and none of an action want does not name. A nil want means nothing at all.
func checkActions(s *sim.Simulator, want map[string]int) error {
	got := map[string]int{}
	for _, a := range s.Stats().Actions {
		got[a.Action]++
	}
	w := map[string]int{} // want without its zeros: an explicit 0 reads better in some tests
	for action, n := range want {
		if n != 0 {
			w[action] = n
		}
	}
	if maps.Equal(got, w) {
		return nil
	}
	return fmt.Errorf("the simulator accepted %s, want %s", formatActions(got), formatActions(w))
}

// formatActions writes a multiset of actions in a stable order: "{activate: 2, deactivate: 1}".
func formatActions(m map[string]int) string {
	if len(m) == 0 {
		return "no action"
	}
	parts := make([]string, 0, len(m))
	for _, action := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s: %d", action, m[action]))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// checkDeviceActions fails unless, for each EID in want, the simulator accepted exactly the
// actions want lists for it, in order (nil: none). Devices want does not name are not looked at.
func checkDeviceActions(s *sim.Simulator, want map[string][]string) error {
	var errs []string
	for _, eid := range slices.Sorted(maps.Keys(want)) {
		if got := simAcceptedFor(s, eid); !slices.Equal(got, want[eid]) {
			errs = append(errs, fmt.Sprintf("actions accepted for EID %s = %v, want %v", eid, got, want[eid]))
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "\n"))
	}
	return nil
}

// testAccCheckActions is checkActions as a test step's check.
func testAccCheckActions(env *testEnv, want map[string]int) resource.TestCheckFunc {
	return checkSim(func() error { return checkActions(env.Sim, want) })
}

// testAccCheckDeviceActions is checkDeviceActions as a test step's check.
func testAccCheckDeviceActions(env *testEnv, want map[string][]string) resource.TestCheckFunc {
	return checkSim(func() error { return checkDeviceActions(env.Sim, want) })
}

// expectActions is checkActions for a test outside resource.Test's steps.
func expectActions(t *testing.T, s *sim.Simulator, want map[string]int) {
	t.Helper()
	if err := checkActions(s, want); err != nil {
		t.Error(err)
	}
}

// expectDeviceActions is checkDeviceActions for a test outside resource.Test's steps.
func expectDeviceActions(t *testing.T, s *sim.Simulator, want map[string][]string) {
	t.Helper()
	if err := checkDeviceActions(s, want); err != nil {
		t.Error(err)
	}
}

// totalActions is how many profile actions the simulator accepted in all.
func totalActions(env *testEnv) int {
	n := 0
	for _, c := range env.Sim.Stats().ActionCounts {
		n += c
	}
	return n
}

// noActionWhileOpen fails when the simulator accepted an action for a device that already had
// a request in flight, or one whose state was already the action's target.
func noActionWhileOpen(env *testEnv) error {
	for _, a := range env.Sim.Stats().Actions {
		for _, d := range a.Devices {
			if d.OpenRequestBefore {
				return fmt.Errorf("%s %s was accepted for EID %s while another request was open for it", a.Action, a.RequestID, d.EID)
			}
			if a.Action == "activate" && d.StateBefore == "active" {
				return fmt.Errorf("activate %s was accepted for the already active EID %s", a.RequestID, d.EID)
			}
		}
	}
	return nil
}

// requestSizes lists the simulator's accepted requests of an action, with their device counts.
func requestSizes(env *testEnv, action string) []int {
	var out []int
	for _, a := range env.Sim.Stats().Actions {
		if a.Action == action {
			out = append(out, len(a.Devices))
		}
	}
	return out
}

// devicesSent counts the devices sent with an action, over every request.
func devicesSent(env *testEnv, action string) int {
	n := 0
	for _, a := range env.Sim.Stats().Actions {
		if a.Action == action {
			n += len(a.Devices)
		}
	}
	return n
}

// checkSim asserts on the simulator from a test step.
func checkSim(f func() error) resource.TestCheckFunc {
	return func(*terraform.State) error { return f() }
}
