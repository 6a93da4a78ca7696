package provider

// Helpers shared by the thingspace_esim_fleet acceptance tests.

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

const fleetAddr = "thingspace_esim_fleet.f"

// fleetSpec is one configuration of a test fleet.
type fleetSpec struct {
	plan       string
	suspended  bool
	protection bool
	// devices by simulator inventory index; the value is the entry's body ("" for {}).
	devices map[int]string
}

// testAccESIMFleetConfig_basic writes the configuration of one thingspace_esim_fleet over simulator devices.
func testAccESIMFleetConfig_basic(t *testing.T, env *testEnv, s fleetSpec) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(env.providerBlock())
	fmt.Fprintf(&b, "resource \"thingspace_esim_fleet\" \"f\" {\n  service_plan        = %q\n  suspended           = %t\n"+
		"  deletion_protection = %t\n  devices = {\n", s.plan, s.suspended, s.protection)
	idx := make([]int, 0, len(s.devices))
	for i := range s.devices {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	for _, i := range idx {
		d := env.device(t, i)
		fmt.Fprintf(&b, "    %q = { iccid = %q, imei = %q %s }\n", d.EID, d.ICCID, d.IMEI, s.devices[i])
	}
	b.WriteString("  }\n}\n")
	return b.String()
}

// fleetOf is the devices i..j-1 with the fleet's settings.
func fleetOf(i, j int) map[int]string {
	m := map[int]string{}
	for k := i; k < j; k++ {
		m[k] = ""
	}
	return m
}

// statusPath is the path of one device's status in the fleet.
func statusPath(eid string) tfjsonpath.Path {
	return tfjsonpath.New("device_status").AtMapKey(eid)
}

// expectDevices checks the simulator's state and plan of devices by inventory index.
func expectDevices(t *testing.T, env *testEnv, state, plan string, idx ...int) resource.TestCheckFunc {
	return checkSim(func() error {
		for _, i := range idx {
			d := env.deviceByEID(t, env.device(t, i).EID)
			if d.State != state || (plan != "" && d.ServicePlan != plan) {
				return fmt.Errorf("device %d (EID %s) is %s on %q, want %s on %q", i, d.EID, d.State, d.ServicePlan, state, plan)
			}
		}
		return nil
	})
}
