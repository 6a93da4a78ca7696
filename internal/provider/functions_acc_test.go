package provider

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"

	"github.com/fleetform/terraform-provider-thingspace/internal/ids"
)

func messageRE(parts ...string) *regexp.Regexp {
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(regexp.QuoteMeta(p), " ", `\s+`)
	}
	return regexp.MustCompile(`(?s)` + strings.Join(parts, ".*"))
}

// idRow is one value of the identifier table, with the kind device_id must give it ("" for an
// error).
type idRow struct {
	name, value, kind string
}

// identifierTable is the simulator's seeded identifiers (the EID, lead ICCID, IMEI and MDN of
// its first devices), identifiers made with internal/ids' generators, and variants of them that
// break each rule: length, a non-digit, a check digit, a separator.
func identifierTable(t *testing.T, env *testEnv) []idRow {
	t.Helper()
	var rows []idRow
	for i := range 3 {
		d := env.device(t, i)
		rows = append(rows,
			idRow{fmt.Sprintf("sim%d_eid", i), d.EID, "eid"},
			idRow{fmt.Sprintf("sim%d_iccid", i), d.ICCID, "iccid"},
			idRow{fmt.Sprintf("sim%d_imei", i), d.IMEI, "imei"},
		)
		if d.MDN != "" {
			rows = append(rows, idRow{fmt.Sprintf("sim%d_mdn", i), d.MDN, "mdn"})
		}
	}
	eid, iccid, imei := env.device(t, 0).EID, env.device(t, 0).ICCID, env.device(t, 0).IMEI
	rows = append(rows,
		idRow{"generated_eid", fnEID, "eid"},
		idRow{"generated_iccid_19", fnICCID, "iccid"},
		idRow{"imeisv_16", fnIMEISV, "imei"},

		idRow{"eid_check_digits", badCheckDigit(eid), ""},
		idRow{"eid_lenient_only", "89049032000000000000000000000000", ""},
		idRow{"eid_31_digits", eid[:31], ""},
		idRow{"eid_33_digits", eid + "7", ""},
		idRow{"eid_letter", eid[:12] + "O" + eid[12:], ""},
		idRow{"eid_spaces", eid[:8] + " " + eid[8:20] + " " + eid[20:], ""},
		idRow{"eid_dashes", eid[:8] + "-" + eid[8:], ""},
		idRow{"eid_leading_space", " " + eid, ""},
		idRow{"eid_trailing_newline", eid + "\n", ""},
		idRow{"iccid_luhn", badCheckDigit(iccid), ""},
		idRow{"iccid_18_digits", iccid[:18], ""},
		idRow{"iccid_letter", iccid[:6] + "x" + iccid[6:], ""},
		idRow{"iccid_dashes", iccid[:4] + "-" + iccid[4:], ""},
		idRow{"imei_luhn", badCheckDigit(imei), ""},
		idRow{"imei_14_digits", imei[:14], ""},
		idRow{"imei_space", imei[:8] + " " + imei[8:], ""},
		idRow{"mdn_country_code", "1" + fnMDN, ""},
		idRow{"empty", "", ""},
	)
	if len(rows) < 20 {
		t.Fatalf("the table has %d rows", len(rows))
	}
	return rows
}

// testAccFunctionsConfig_identifierLocals writes the rows as `locals { ids = { name = "value", ... } }`.
func testAccFunctionsConfig_identifierLocals(rows []idRow) string {
	var b strings.Builder
	b.WriteString("locals {\n  ids = {\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "    %s = %q\n", r.name, r.value)
	}
	b.WriteString("  }\n}\n")
	return b.String()
}

// Terraform evaluates every function as internal/ids does, with the provider configured for
// the simulator, over the simulator's seeded identifiers and variants breaking each rule.
func TestAccFunctions_identifierTable(t *testing.T) {
	skipUnlessCLI(t, featureFunctions)
	env := newTestEnv(t, envOptions{Devices: 4, Preactivated: 2})
	rows := identifierTable(t, env)
	cfg := env.providerBlock() + testAccFunctionsConfig_identifierLocals(rows) + `
output "eid_valid" {
  value = { for name, id in local.ids : name => provider::thingspace::eid_valid(id) }
}

output "iccid_valid" {
  value = { for name, id in local.ids : name => provider::thingspace::iccid_valid(id) }
}

output "imei_valid" {
  value = { for name, id in local.ids : name => provider::thingspace::imei_valid(id) }
}

output "device_id" {
  value = { for name, id in local.ids : name => try(provider::thingspace::device_id(id), null) }
}
`
	eidWant, iccidWant, imeiWant, deviceWant := map[string]knownvalue.Check{}, map[string]knownvalue.Check{},
		map[string]knownvalue.Check{}, map[string]knownvalue.Check{}
	for _, r := range rows {
		// The expectations come from internal/ids itself, in the resources' strict EID mode.
		eidWant[r.name] = knownvalue.Bool(ids.ValidateEID(r.value, true) == nil)
		iccidWant[r.name] = knownvalue.Bool(ids.ValidateICCID(r.value) == nil)
		imeiWant[r.name] = knownvalue.Bool(ids.ValidateIMEI(r.value) == nil)
		if r.kind == "" {
			deviceWant[r.name] = knownvalue.Null()
			continue
		}
		if err := ids.ValidateDeviceID(r.kind, r.value, true); err != nil {
			t.Fatalf("table row %s: %v", r.name, err)
		}
		deviceWant[r.name] = knownvalue.ObjectExact(map[string]knownvalue.Check{
			"kind": knownvalue.StringExact(r.kind), "value": knownvalue.StringExact(r.value)})
	}
	// The table holds both answers for every function.
	for name, want := range map[string]map[string]knownvalue.Check{"eid_valid": eidWant, "iccid_valid": iccidWant, "imei_valid": imeiWant} {
		var trues int
		for _, c := range want {
			if c.CheckValue(true) == nil {
				trues++
			}
		}
		if trues == 0 || trues == len(want) {
			t.Fatalf("%s is %d times true in %d rows", name, trues, len(want))
		}
	}

	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: cfg,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownOutputValue("eid_valid", knownvalue.ObjectExact(eidWant)),
				statecheck.ExpectKnownOutputValue("iccid_valid", knownvalue.ObjectExact(iccidWant)),
				statecheck.ExpectKnownOutputValue("imei_valid", knownvalue.ObjectExact(imeiWant)),
				statecheck.ExpectKnownOutputValue("device_id", knownvalue.ObjectExact(deviceWant)),
			},
		}},
	})
}

// A null argument is an error that says so, from every function; it is not false.
func TestAccFunctions_nullArgument(t *testing.T) {
	skipUnlessCLI(t, featureFunctions)
	for fn, param := range map[string]string{"eid_valid": "eid", "iccid_valid": "iccid", "imei_valid": "imei", "device_id": "id"} {
		t.Run(fn, func(t *testing.T) {
			resource.UnitTest(t, resource.TestCase{
				ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
				Steps: []resource.TestStep{{
					Config: fmt.Sprintf(`
variable "value" {
  type    = string
  default = null
}

output "result" {
  value = provider::thingspace::%s(var.value)
}
`, fn),
					ExpectError: messageRE("Invalid function argument", `Invalid value for "`+param+`" parameter: argument must not be null.`),
				}},
			})
		})
	}
}

// An argument known only after apply gives a result known only after apply; then the answer.
func TestAccFunctions_unknownArgument(t *testing.T) {
	skipUnlessCLI(t, featureFunctions)
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: fmt.Sprintf(`
resource "terraform_data" "eid" {
  input = %q
}

output "eid_valid" {
  value = provider::thingspace::eid_valid(terraform_data.eid.output)
}

output "device_id" {
  value = provider::thingspace::device_id(terraform_data.eid.output)
}
`, fnEID),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectUnknownOutputValue("eid_valid"),
				plancheck.ExpectUnknownOutputValue("device_id"),
			}},
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownOutputValue("eid_valid", knownvalue.Bool(true)),
				statecheck.ExpectKnownOutputValue("device_id", knownvalue.ObjectExact(map[string]knownvalue.Check{
					"kind": knownvalue.StringExact("eid"), "value": knownvalue.StringExact(fnEID)})),
			},
		}},
	})
}

// A variable validation that calls device_id fails the plan with the function's own message,
// which names the EID and the rule it breaks, as the resource's eid attribute would.
func TestAccFunctions_variableValidationFailsWithTheFunctionMessage(t *testing.T) {
	skipUnlessCLI(t, featureFunctions)
	spaced := fnEID[:8] + " " + fnEID[8:]
	cfg := `
variable "eid" {
  type = string

  validation {
    condition     = provider::thingspace::device_id(var.eid).kind == "eid"
    error_message = "Not an EID."
  }
}

output "eid" {
  value = var.eid
}
`
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:          cfg,
				ConfigVariables: config.Variables{"eid": config.StringVariable(spaced)},
				PlanOnly:        true,
				ExpectError:     messageRE(`Invalid value for "id" parameter: EID "` + spaced + `" contains a space " " at position 9; an EID has 32 digits.`),
			},
			{
				Config:          cfg,
				ConfigVariables: config.Variables{"eid": config.StringVariable(badCheckDigit(fnEID))},
				PlanOnly:        true,
				ExpectError:     messageRE(`Invalid value for "id" parameter: EID "` + badCheckDigit(fnEID) + `" fails its check digits (ISO 7064 MOD 97-10`),
			},
			{
				// An IMEI is a valid identifier, but not an EID: the module's own message.
				Config:          cfg,
				ConfigVariables: config.Variables{"eid": config.StringVariable(fnIMEI)},
				PlanOnly:        true,
				ExpectError:     messageRE("Invalid value for variable", "Not an EID."),
			},
			{
				Config:          cfg,
				ConfigVariables: config.Variables{"eid": config.StringVariable(fnEID)},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownOutputValue("eid", knownvalue.StringExact(fnEID)),
				},
			},
		},
	})
}

// examplePath is the absolute path of a folder or file under examples/.
func examplePath(t *testing.T, elem ...string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join(append([]string{"..", "..", "examples"}, elem...)...))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// useRegistryNamespace makes the in-process provider answer for fleetform/thingspace, the
// source address the examples declare in required_providers.
func useRegistryNamespace(t *testing.T) {
	t.Setenv("TF_ACC_PROVIDER_NAMESPACE", "fleetform")
}

const requiredProvidersBlock = `
terraform {
  required_providers {
    thingspace = {
      source = "fleetform/thingspace"
    }
  }
}
`

// The example module refuses a map with a bad EID at plan time, naming each bad EID and its
// device, and plans the profiles of the simulator's devices.
func TestAccFunctions_exampleModuleValidation(t *testing.T) {
	skipUnlessCLI(t, featureFunctions)
	env := newTestEnv(t, envOptions{Devices: 4})
	useRegistryNamespace(t)
	// A root module in a folder of its own: the test runs `terraform init` with the step's
	// configuration (which installs the module) only for a ConfigDirectory.
	root := t.TempDir()
	main := requiredProvidersBlock + env.providerBlock() + fmt.Sprintf(`
variable "eids" {
  type = map(string)
}

module "fleet" {
  source       = %q
  service_plan = "M2M4GB"
  eids         = var.eids
}
`, examplePath(t, "functions", "module-validation"))
	if err := os.WriteFile(filepath.Join(root, "main.tf"), []byte(main), 0o600); err != nil {
		t.Fatal(err)
	}
	eids := func(m map[string]string) config.Variables {
		vars := map[string]config.Variable{}
		for k, v := range m {
			vars[k] = config.StringVariable(v)
		}
		return config.Variables{"eids": config.MapVariable(vars)}
	}
	good1, good2 := env.device(t, 0).EID, env.device(t, 1).EID
	tracker, sensor := badCheckDigit(good2), good1[:8]+"-"+good1[8:]
	// The folder has a provider block, so the providers are the steps' (the test refuses both).
	resource.UnitTest(t, resource.TestCase{
		Steps: []resource.TestStep{
			{
				ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
				ConfigDirectory:          config.StaticDirectory(root),
				ConfigVariables:          eids(map[string]string{"gateway": good1, "sensor": sensor, "tracker": tracker}),
				PlanOnly:                 true,
				ExpectError:              messageRE("Invalid value for variable", `Not an EID: sensor = "`+sensor+`", tracker = "`+tracker+`".`),
			},
			{
				// The simulator's seeded EIDs pass, and the plan reaches the resources.
				ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
				ConfigDirectory:          config.StaticDirectory(root),
				ConfigVariables:          eids(map[string]string{"gateway": good1, "tracker": good2}),
				PlanOnly:                 true,
				ExpectNonEmptyPlan:       true,
			},
		},
	})
}

// The documentation's examples run, and return what their comments say.
func TestAccFunctions_documentationExamples(t *testing.T) {
	skipUnlessCLI(t, featureFunctions)
	useRegistryNamespace(t)
	obj := func(m map[string]bool) knownvalue.Check {
		checks := map[string]knownvalue.Check{}
		for k, v := range m {
			checks[k] = knownvalue.Bool(v)
		}
		return knownvalue.ObjectExact(checks)
	}
	str := knownvalue.StringExact
	device := func(kind, value string) knownvalue.Check {
		return knownvalue.ObjectExact(map[string]knownvalue.Check{"kind": str(kind), "value": str(value)})
	}
	cases := []struct {
		name  string
		vars  config.Variables
		check []statecheck.StateCheck
		bad   config.Variables // a value the example's variable validation refuses
		want  []string         // the parts of the validation's message
	}{
		{
			name: "eid_valid",
			vars: config.Variables{"eid": config.StringVariable("89049032995470350104029245072940")},
			check: []statecheck.StateCheck{statecheck.ExpectKnownOutputValue("eid_checks", obj(map[string]bool{
				"valid": true, "wrong_check_digit": false, "too_short": false, "with_spaces": false}))},
			bad:  config.Variables{"eid": config.StringVariable("89049032995470350104029245072941")},
			want: []string{`eid = "89049032995470350104029245072941" is not an EID`},
		},
		{
			name: "iccid_valid",
			check: []statecheck.StateCheck{statecheck.ExpectKnownOutputValue("iccid_checks", obj(map[string]bool{
				"valid_20_digits": true, "wrong_luhn_digit": false, "with_dashes": false}))},
			bad:  config.Variables{"iccid": config.StringVariable("8914 8000 0012 3456 7898")},
			want: []string{`iccid = "8914 8000 0012 3456 7898" is not an ICCID`},
		},
		{
			name: "imei_valid",
			check: []statecheck.StateCheck{statecheck.ExpectKnownOutputValue("imei_checks", obj(map[string]bool{
				"valid": true, "imeisv": true, "wrong_luhn_digit": false, "fourteen_digits": false}))},
			bad: config.Variables{"imeis": config.MapVariable(map[string]config.Variable{
				"a": config.StringVariable("353492001234568"), "b": config.StringVariable("353492001234567")})},
			want: []string{"Not an IMEI", `: "353492001234567".`},
		},
		{
			name: "device_id",
			check: []statecheck.StateCheck{
				statecheck.ExpectKnownOutputValue("devices", knownvalue.ListExact([]knownvalue.Check{
					device("eid", "89049032995470350104029245072940"), device("iccid", "89148000001234567898"),
					device("imei", "353492001234568"), device("mdn", "2025550123")})),
				statecheck.ExpectKnownOutputValue("eids", knownvalue.ListExact([]knownvalue.Check{str("89049032995470350104029245072940")})),
				statecheck.ExpectKnownOutputValue("not_identifiers", knownvalue.ListExact([]knownvalue.Check{
					str("202-555-0123"), str("12025550123")})),
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := config.StaticFile(examplePath(t, "functions", tc.name, "function.tf"))
			steps := []resource.TestStep{}
			if tc.bad != nil {
				steps = append(steps, resource.TestStep{
					ConfigFile: file, ConfigVariables: tc.bad, PlanOnly: true,
					ExpectError: messageRE(append([]string{"Invalid value for variable"}, tc.want...)...),
				})
			}
			steps = append(steps, resource.TestStep{ConfigFile: file, ConfigVariables: tc.vars, ConfigStateChecks: tc.check})
			resource.UnitTest(t, resource.TestCase{
				ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
				Steps:                    steps,
			})
		})
	}
}
