package provider

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// testAccProtoV6ProviderFactories runs the provider in-process for the Terraform CLI.
var testAccProtoV6ProviderFactories = map[string]func() (tfprotov6.ProviderServer, error){
	"thingspace": providerserver.NewProtocol6WithError(New("test")()),
}

// The decision engine looks at a device it waits on every 2 s and up; the tests' simulator
// answers in milliseconds.
func init() { enginePoll = 100 * time.Millisecond }

// clearProviderEnv keeps the developer's own THINGSPACE_* variables out of a test.
func clearProviderEnv(t *testing.T) {
	for _, attr := range providerEnvAttrs {
		t.Setenv(envName(attr), "")
	}
}

// providerEnvAttrs are the provider arguments with a THINGSPACE_* variable. TestMain removes
// them all from the test process, so that a developer's own settings never reach a test, and
// tests that do not set them can run in parallel (t.Setenv forbids it).
var providerEnvAttrs = []string{"base_url", "client_id", "client_secret", "username", "password", "account_name",
	"relay_url", "relay_token", "requests_per_second", "bulk_size", "batch_window", "status_poll_after", "outcome_horizon"}

const plansDataSource = `
data "thingspace_service_plans" "all" {}
`

func TestAccProvider_configErrors(t *testing.T) {
	clearProviderEnv(t)
	full := `base_url = "http://127.0.0.1:1"
  client_id = "id"
  client_secret = "secret"
  username = "user"
  password = "pass"
  account_name = "0000123456-00001"`
	cases := []struct {
		name   string
		config string
		want   string
	}{
		{"missing secret names attribute and variable", `provider "thingspace" {
  client_id = "id"
  username = "user"
  password = "pass"
}`, `(?s)client_secret.*THINGSPACE_CLIENT_SECRET`},
		{"base_url with a path", `provider "thingspace" {
  ` + full + `
  base_url = "https://thingspace.verizon.com/api/m2m"
}`, `scheme://host\[:port\] only`},
		{"base_url not http", `provider "thingspace" {
  ` + full + `
  base_url = "ftp://thingspace.verizon.com"
}`, `must start with https://`},
		{"bad account name", `provider "thingspace" {
  ` + full + `
  account_name = "acct one"
}`, `Invalid account name`},
		{"non-positive rate", `provider "thingspace" {
  ` + full + `
  requests_per_second = 0
}`, `requests_per_second`},
		{"bulk size above the documented limit", `provider "thingspace" {
  ` + full + `
  bulk_size = 20000
}`, `bulk_size`},
		{"bad duration", `provider "thingspace" {
  ` + full + `
  batch_window = "soon"
}`, `not a duration`},
		{"relay without token", `provider "thingspace" {
  ` + full + `
  relay_url = "http://127.0.0.1:9090"
}`, `(?s)relay_token.*THINGSPACE_RELAY_TOKEN`},
		{"empty username", `provider "thingspace" {
  ` + full + `
  username = ""
}`, `username`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Duplicate attributes are an HCL error, so the overriding cases drop the default line.
			cfg := dedupe(tc.config)
			resource.UnitTest(t, resource.TestCase{
				ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
				Steps: []resource.TestStep{{
					Config:      cfg + plansDataSource,
					ExpectError: regexp.MustCompile(tc.want),
				}},
			})
		})
	}
}

func TestAccProvider_environmentValuesAreValidated(t *testing.T) {
	clearProviderEnv(t)
	t.Setenv("THINGSPACE_CLIENT_ID", "id")
	t.Setenv("THINGSPACE_CLIENT_SECRET", "secret")
	t.Setenv("THINGSPACE_USERNAME", "user")
	t.Setenv("THINGSPACE_PASSWORD", "pass")
	t.Setenv("THINGSPACE_BASE_URL", "thingspace.verizon.com")
	t.Setenv("THINGSPACE_BULK_SIZE", "many")
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config:      `provider "thingspace" {}` + plansDataSource,
			ExpectError: regexp.MustCompile(`(?s)Invalid ThingSpace base URL.*THINGSPACE_BULK_SIZE="many"`),
		}},
	})
}

// dedupe keeps the last assignment of each attribute in a provider block, so a case can
// override one line of the full configuration.
func dedupe(cfg string) string {
	lines := regexp.MustCompile(`\n`).Split(cfg, -1)
	last := map[string]int{}
	key := regexp.MustCompile(`^\s*([a-z_]+)\s*=`)
	for i, l := range lines {
		if m := key.FindStringSubmatch(l); m != nil {
			last[m[1]] = i
		}
	}
	out := ""
	for i, l := range lines {
		if m := key.FindStringSubmatch(l); m != nil && last[m[1]] != i {
			continue
		}
		out += l + "\n"
	}
	return out
}

func TestEnvName(t *testing.T) {
	if got := envName("client_secret"); got != "THINGSPACE_CLIENT_SECRET" {
		t.Fatal(got)
	}
}

// The provider's docs page (docs/index.md, generated from templates/index.md.tmpl) lists every
// THINGSPACE_* variable: a new argument's variable must not go unmentioned there.
func TestIndexTemplate_listsEveryEnvVar(t *testing.T) {
	var resp provider.SchemaResponse
	New("test")().Schema(context.Background(), provider.SchemaRequest{}, &resp)
	tmpl, err := os.ReadFile("../../templates/index.md.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Schema.Attributes) == 0 {
		t.Fatal("the provider schema has no attributes")
	}
	for attr := range resp.Schema.Attributes {
		if env := envName(attr); !strings.Contains(string(tmpl), "`"+env+"`") {
			t.Errorf("templates/index.md.tmpl does not list %s (the variable of %q)", env, attr)
		}
	}
}
