package provider

import (
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// Helpers shared by the thingspace_esim_profile acceptance tests.

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

// waitFor polls cond up to limit (bounded); it reports whether cond became true.
func waitFor(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

// multiConfig renders several esim_profile resources after the provider block.
func multiConfig(env *testEnv, resources ...string) string {
	return env.providerBlock() + strings.Join(resources, "\n")
}
