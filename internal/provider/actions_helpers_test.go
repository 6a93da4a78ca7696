package provider

// What the simulator received: the carrier actions (activate, serviceplan, deactivate, ...) it
// accepted, counted by request, by device and in order, for the tests' checks.

import (
	"fmt"
	"slices"
	"strings"

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

// expectActions checks the actions the simulator accepted for each EID, in order.
func expectActions(env *testEnv, want map[string][]string) resource.TestCheckFunc {
	return checkSim(func() error {
		var errs []string
		for eid, w := range want {
			if got := env.acceptedFor(eid); !slices.Equal(got, w) {
				errs = append(errs, fmt.Sprintf("actions accepted for EID %s = %v, want %v", eid, got, w))
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("%s", strings.Join(errs, "\n"))
		}
		return nil
	})
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

// actionsOf lists the simulator's accepted requests of an action, with their device counts.
func actionsOf(env *testEnv, action string) []int {
	var out []int
	for _, a := range env.Sim.Stats().Actions {
		if a.Action == action {
			out = append(out, len(a.Devices))
		}
	}
	return out
}

func zeroActions(env *testEnv) error {
	if n := totalActions(env); n != 0 {
		return fmt.Errorf("%d carrier actions accepted, want 0", n)
	}
	return nil
}

// serviceplanSent counts the devices sent with serviceplan, over every request.
func serviceplanSent(env *testEnv) int {
	n := 0
	for _, a := range env.Sim.Stats().Actions {
		if a.Action == "serviceplan" {
			n += len(a.Devices)
		}
	}
	return n
}

// checkSim asserts on the simulator from a test step.
func checkSim(f func() error) resource.TestCheckFunc {
	return func(*terraform.State) error { return f() }
}
