package provider

import (
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

const requestDataSourceConfig = `
data "thingspace_request" "last" {
  request_id = thingspace_esim_profile.p.last_request_id
}
`

func TestAccRequestDataSource(t *testing.T) {
	for _, withRelay := range []bool{true, false} {
		name, source := "relay", "relay"
		if !withRelay {
			name, source = "polling", "thingspace"
		}
		t.Run(name, func(t *testing.T) {
			env := newTestEnv(t, envOptions{Relay: withRelay})
			dev := env.device(t, 0)
			cfg := env.providerBlock() + profileConfig(env, "p", dev.EID, env.plansOfType("US")[0]) + requestDataSourceConfig
			ds := "data.thingspace_request.last"
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
				Steps: []resource.TestStep{{
					Config: cfg,
					ConfigStateChecks: []statecheck.StateCheck{
						statecheck.ExpectKnownValue(ds, tfjsonpath.New("source"), knownvalue.StringExact(source)),
						statecheck.ExpectKnownValue(ds, tfjsonpath.New("terminal_count"), knownvalue.Int64Exact(1)),
						statecheck.ExpectKnownValue(ds, tfjsonpath.New("devices").AtSliceIndex(0).AtMapKey("eid"), knownvalue.StringExact(dev.EID)),
						statecheck.ExpectKnownValue(ds, tfjsonpath.New("devices").AtSliceIndex(0).AtMapKey("terminal"), knownvalue.Bool(true)),
					},
				}},
			})
		})
	}
}
