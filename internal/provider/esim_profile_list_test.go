package provider

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/querycheck"
	"github.com/hashicorp/terraform-plugin-testing/querycheck/queryfilter"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

// The thingspace_esim_profile list resource, with `terraform query` (Terraform 1.14 and later).

// The filters, the identity, the display name and the resource of a listed device.
func TestAccESIMProfileList_basic(t *testing.T) {
	skipUnlessCLI(t, featureListResources)
	env := newTestEnv(t, envOptions{Relay: true, Devices: 40, Preactivated: 10})
	account := env.Sim.Account()
	dev := env.device(t, 0)
	onPlan := 0
	for _, d := range env.Sim.Devices() {
		if d.State == "active" && d.ServicePlan == dev.ServicePlan {
			onPlan++
		}
	}
	identity := map[string]knownvalue.Check{"account_name": knownvalue.StringExact(account), "eid": knownvalue.StringExact(dev.EID)}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: env.providerBlock()},
			{
				Query: true,
				Config: fmt.Sprintf(`
list "thingspace_esim_profile" "active" {
  provider         = thingspace
  include_resource = true
  config {
    state = "active"
  }
}

list "thingspace_esim_profile" "all" {
  provider = thingspace
}

list "thingspace_esim_profile" "plan" {
  provider = thingspace
  config {
    account_name = %q
    state        = "active"
    service_plan = %q
    profile_type = "verizon_us"
  }
}

list "thingspace_esim_profile" "global" {
  provider = thingspace
  config {
    profile_type = "global"
  }
}
`, account, dev.ServicePlan),
				QueryResultChecks: []querycheck.QueryResultCheck{
					querycheck.ExpectLength("thingspace_esim_profile.active", 10),
					querycheck.ExpectLength("thingspace_esim_profile.all", 40),
					querycheck.ExpectLength("thingspace_esim_profile.plan", onPlan),
					querycheck.ExpectLength("thingspace_esim_profile.global", 0),
					querycheck.ExpectIdentity("thingspace_esim_profile.active", identity),
					querycheck.ExpectResourceDisplayName("thingspace_esim_profile.active", queryfilter.ByResourceIdentity(identity),
						knownvalue.StringExact(fmt.Sprintf("%s (active, %s)", dev.EID, dev.ServicePlan))),
					querycheck.ExpectResourceKnownValues("thingspace_esim_profile.active", queryfilter.ByResourceIdentity(identity),
						[]querycheck.KnownValueCheck{
							{Path: tfjsonpath.New("service_plan"), KnownValue: knownvalue.StringExact(dev.ServicePlan)},
							{Path: tfjsonpath.New("iccid"), KnownValue: knownvalue.StringExact(dev.ICCID)},
							{Path: tfjsonpath.New("state"), KnownValue: knownvalue.StringExact("active")},
							{Path: tfjsonpath.New("profile_type"), KnownValue: knownvalue.StringExact("verizon_us")},
							{Path: tfjsonpath.New("account_name"), KnownValue: knownvalue.StringExact(account)},
						}),
				},
			},
		},
	})
}

// Onboarding with `terraform query -generate-config-out`: over an account of 1,000 devices, 300
// of them active, the query writes a resource and an import block for each active device, and
// the next plan imports the 300 with nothing to add, change or destroy. The query lists the
// account once (one page: the simulator pages at 2,000); the plan reads the 300 devices with
// at most the read coalescer's single reads and one listing.
func TestAccESIMProfileList_generateConfig(t *testing.T) {
	skipUnlessCLI(t, featureListResources)
	env := newTestEnv(t, envOptions{Relay: true, Devices: 1000, Preactivated: 300})
	w := newCLIWorkdir(t, env.providerBlock())
	query := "list \"thingspace_esim_profile\" \"active\" {\n  provider = thingspace\n  limit    = 1000\n  config {\n    state = \"active\"\n  }\n}\n"
	if err := os.WriteFile(filepath.Join(w.dir, "onboarding.tfquery.hcl"), []byte(query), 0o644); err != nil {
		t.Fatal(err)
	}
	pages := 1 // 1,000 devices, 2,000 a page

	before := env.listRequests()
	text, code := w.run("query", "-generate-config-out=generated.tf", "-no-color")
	if code != 0 {
		t.Fatalf("terraform query: exit %d\n%s", code, text)
	}
	queryRequests := env.listRequests() - before
	t.Logf("terraform query: %d device list requests", queryRequests)
	if queryRequests > pages {
		t.Errorf("terraform query sent %d device list requests, want at most %d (the pages of the account)", queryRequests, pages)
	}
	generated, err := os.ReadFile(filepath.Join(w.dir, "generated.tf"))
	if err != nil {
		t.Fatal(err)
	}
	gen := string(generated)
	t.Logf("generated.tf begins:\n%s", head(gen, 1500))
	if n := strings.Count(gen, "import {"); n != 300 {
		t.Errorf("generated.tf has %d import blocks, want 300", n)
	}
	if n := strings.Count(gen, `resource "thingspace_esim_profile"`); n != 300 {
		t.Errorf("generated.tf has %d thingspace_esim_profile resources, want 300", n)
	}

	before = env.listRequests()
	text, code = w.run("plan", "-detailed-exitcode", "-input=false", "-no-color")
	if code != 0 && code != 2 {
		t.Fatalf("terraform plan: exit %d\n%s\ngenerated.tf starts with:\n%s", code, text, head(gen, 3000))
	}
	planRequests := env.listRequests() - before
	t.Logf("terraform plan: %d device list requests", planRequests)
	if !regexp.MustCompile(`Plan: 300 to import, 0 to add, 0 to change, 0 to destroy\.`).MatchString(text) {
		t.Errorf("the plan of the generated configuration is not 300 imports and nothing else:\n%s", tail(text, 4000))
	}
	if planRequests > pages+2 {
		t.Errorf("terraform plan sent %d device list requests, want at most %d (the pages of the account, plus 2)", planRequests, pages+2)
	}
	expectActions(t, env.Sim, nil)
}
