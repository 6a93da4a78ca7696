package provider

import (
	"context"
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/fleetform/terraform-provider-thingspace/internal/thingspace"
	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

const requestDataSourceConfig = `
data "thingspace_request" "last" {
  request_id = thingspace_esim_profile.p.last_request_id
}
`

func TestAccRequestDataSource_basic(t *testing.T) {
	for _, withRelay := range []bool{true, false} {
		name, source := "relay", "relay"
		if !withRelay {
			name, source = "polling", "thingspace"
		}
		t.Run(name, func(t *testing.T) {
			env := newTestEnv(t, envOptions{Relay: withRelay})
			dev := env.device(t, 0)
			cfg := env.providerBlock() + testAccESIMProfileConfig_basic(env, "p", dev.EID, env.plansOfType("US")[0]) + requestDataSourceConfig
			ds := "data.thingspace_request.last"
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
				Steps: []resource.TestStep{
					{
						Config: cfg,
						ConfigStateChecks: []statecheck.StateCheck{
							statecheck.ExpectKnownValue(ds, tfjsonpath.New("source"), knownvalue.StringExact(source)),
							statecheck.ExpectKnownValue(ds, tfjsonpath.New("terminal_count"), knownvalue.Int64Exact(1)),
							statecheck.ExpectKnownValue(ds, tfjsonpath.New("devices").AtSliceIndex(0).AtMapKey("eid"), knownvalue.StringExact(dev.EID)),
							statecheck.ExpectKnownValue(ds, tfjsonpath.New("devices").AtSliceIndex(0).AtMapKey("terminal"), knownvalue.Bool(true)),
						},
					},
					emptyPlanStep(cfg),
				},
			})
		})
	}
}

// A request the relay never heard of (sent outside Terraform, its callbacks going elsewhere)
// is looked up at ThingSpace instead of being shown as an empty "unknown" request.
func TestAccRequestDataSource_unknownToRelay(t *testing.T) {
	env := newTestEnv(t, envOptions{Relay: true})
	// The callbacks go to a listener that is not the relay.
	env.register(t, "http://127.0.0.1:1/callbacks/elsewhere")
	dev := env.device(t, 0)
	client := env.simClient(t)
	res, err := client.Activate(context.Background(), tsapi.ActivateRequest{AccountName: env.Sim.Account(),
		ServicePlan: env.plansOfType("US")[0], Devices: thingspace.Devices(activateIDs(dev))})
	if err != nil {
		t.Fatal(err)
	}
	cfg := env.providerBlock() + fmt.Sprintf(`
data "thingspace_request" "outside" {
  request_id = %q
}
`, res.Requests[0].RequestID)
	ds := "data.thingspace_request.outside"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: cfg,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(ds, tfjsonpath.New("source"), knownvalue.StringExact("thingspace")),
					statecheck.ExpectKnownValue(ds, tfjsonpath.New("devices"), knownvalue.ListSizeExact(1)),
					statecheck.ExpectKnownValue(ds, tfjsonpath.New("devices").AtSliceIndex(0).AtMapKey("eid"), knownvalue.StringExact(dev.EID)),
				},
			},
			emptyPlanStep(cfg),
		},
	})
}
