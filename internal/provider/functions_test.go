package provider

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/function"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/fleetform/terraform-provider-thingspace/internal/ids"
)

// Identifiers made with internal/ids' generators, and their variants for each rule.
var (
	fnEID    = mustEID("890490320000000000001234567890")
	fnICCID  = mustLuhn("891480000000000012")  // 19 digits
	fnICCID2 = mustLuhn("8914800000000000123") // 20 digits
	fnIMEI   = mustLuhn("35349200012345")      // 15 digits
	fnIMEISV = "3534920001234501"              // 16 digits, no check digit
	fnMDN    = "2025550123"
)

func mustEID(prefix30 string) string {
	s, err := ids.EIDWithCheckDigits(prefix30)
	if err != nil {
		panic(err)
	}
	return s
}

func mustLuhn(payload string) string {
	s, err := ids.LuhnAppend(payload)
	if err != nil {
		panic(err)
	}
	return s
}

// badCheckDigit changes the last digit of s.
func badCheckDigit(s string) string {
	last := s[len(s)-1]
	return s[:len(s)-1] + string('0'+(last-'0'+1)%10)
}

// callFunction runs f as the framework does: the result starts as the unknown value of the
// definition's return type.
func callFunction(t *testing.T, f function.Function, arg attr.Value) (attr.Value, *function.FuncError) {
	t.Helper()
	ctx := context.Background()
	var def function.DefinitionResponse
	f.Definition(ctx, function.DefinitionRequest{}, &def)
	if def.Diagnostics.HasError() {
		t.Fatalf("definition: %v", def.Diagnostics)
	}
	result, ferr := def.Definition.Return.NewResultData(ctx)
	if ferr != nil {
		t.Fatal(ferr)
	}
	resp := function.RunResponse{Result: result}
	f.Run(ctx, function.RunRequest{Arguments: function.NewArgumentsData([]attr.Value{arg})}, &resp)
	return resp.Result.Value(), resp.Error
}

func functionName(f function.Function) string {
	var m function.MetadataResponse
	f.Metadata(context.Background(), function.MetadataRequest{}, &m)
	return m.Name
}

// validatorError is the error the resources' idValidator gives for v ("" when it accepts v).
func validatorError(kind, v string) string {
	var resp validator.StringResponse
	idValidator(kind).ValidateString(context.Background(),
		validator.StringRequest{Path: path.Root(kind), ConfigValue: types.StringValue(v)}, &resp)
	if !resp.Diagnostics.HasError() {
		return ""
	}
	return resp.Diagnostics.Errors()[0].Detail()
}

func TestFunctions_valid(t *testing.T) {
	eidNoCheck := "89049032000000000000000000000000" // 32 digits, mod 97 != 1
	cases := []struct {
		f     function.Function
		value string
		want  bool
		rule  string
	}{
		{NewEIDValidFunction(), fnEID, true, "valid"},
		{NewEIDValidFunction(), eidNoCheck, false, "check digits (lenient mode would accept it)"},
		{NewEIDValidFunction(), badCheckDigit(fnEID), false, "check digits"},
		{NewEIDValidFunction(), fnEID[:31], false, "length: 31 digits"},
		{NewEIDValidFunction(), fnEID + "0", false, "length: 33 digits"},
		{NewEIDValidFunction(), "", false, "empty"},
		{NewEIDValidFunction(), fnEID[:10] + "A" + fnEID[11:], false, "non-digit"},
		{NewEIDValidFunction(), fnEID[:8] + " " + fnEID[8:], false, "separator: space"},
		{NewEIDValidFunction(), fnEID[:8] + "-" + fnEID[8:], false, "separator: dash"},
		{NewEIDValidFunction(), " " + fnEID, false, "leading space"},
		{NewEIDValidFunction(), fnICCID, false, "an ICCID"},

		{NewICCIDValidFunction(), fnICCID, true, "valid, 19 digits"},
		{NewICCIDValidFunction(), fnICCID2, true, "valid, 20 digits"},
		{NewICCIDValidFunction(), mustLuhn("123456789012345678"), true, "valid without the 89 prefix"},
		{NewICCIDValidFunction(), badCheckDigit(fnICCID2), false, "Luhn check digit"},
		{NewICCIDValidFunction(), fnICCID[:18], false, "length: 18 digits"},
		{NewICCIDValidFunction(), mustLuhn(fnICCID2), false, "length: 21 digits"},
		{NewICCIDValidFunction(), "8914800000000000x234", false, "non-digit"},
		{NewICCIDValidFunction(), fnICCID2[:4] + " " + fnICCID2[4:], false, "separator: space"},
		{NewICCIDValidFunction(), fnICCID2[:4] + "-" + fnICCID2[4:], false, "separator: dash"},
		{NewICCIDValidFunction(), "", false, "empty"},

		{NewIMEIValidFunction(), fnIMEI, true, "valid"},
		{NewIMEIValidFunction(), fnIMEISV, true, "valid IMEISV"},
		{NewIMEIValidFunction(), badCheckDigit(fnIMEI), false, "Luhn check digit"},
		{NewIMEIValidFunction(), fnIMEI[:14], false, "length: 14 digits"},
		{NewIMEIValidFunction(), fnIMEISV + "0", false, "length: 17 digits"},
		{NewIMEIValidFunction(), fnIMEI[:2] + "O" + fnIMEI[3:], false, "non-digit (letter O)"},
		{NewIMEIValidFunction(), fnIMEI[:8] + "-" + fnIMEI[8:], false, "separator: dash"},
		{NewIMEIValidFunction(), fnIMEI[:8] + " " + fnIMEI[8:], false, "separator: space"},
		{NewIMEIValidFunction(), "", false, "empty"},
	}
	for _, tc := range cases {
		name := functionName(tc.f)
		t.Run(name+" "+tc.rule, func(t *testing.T) {
			got, ferr := callFunction(t, tc.f, types.StringValue(tc.value))
			if ferr != nil {
				t.Fatalf("%s(%q): error %v", name, tc.value, ferr)
			}
			if !got.Equal(types.BoolValue(tc.want)) {
				t.Fatalf("%s(%q) = %v, want %v", name, tc.value, got, tc.want)
			}
			// One rule: the function says true exactly when the resources' attribute of the
			// same kind accepts the value.
			kind := strings.TrimSuffix(name, "_valid")
			if accepted := validatorError(kind, tc.value) == ""; accepted != tc.want {
				t.Fatalf("the %s attribute validator accepts %q: %v; %s says %v", kind, tc.value, accepted, name, tc.want)
			}
		})
	}
}

func TestFunctions_nullAndUnknown(t *testing.T) {
	for _, f := range []function.Function{NewEIDValidFunction(), NewICCIDValidFunction(), NewIMEIValidFunction(), NewDeviceIDFunction()} {
		name := functionName(f)
		t.Run(name, func(t *testing.T) {
			// Terraform refuses a null argument before calling the provider, because the
			// parameter does not allow null, and skips the call for an unknown one.
			var def function.DefinitionResponse
			f.Definition(context.Background(), function.DefinitionRequest{}, &def)
			p, ok := def.Definition.Parameters[0].(function.StringParameter)
			if !ok || p.AllowNullValue || p.AllowUnknownValues || p.Name == "" || p.MarkdownDescription == "" {
				t.Fatalf("parameter = %+v, want a named, described string parameter refusing null and unknown values", def.Definition.Parameters[0])
			}
			// Run answers the same way when it is called directly.
			got, ferr := callFunction(t, f, types.StringNull())
			if ferr == nil || ferr.Text != nullArgument || ferr.FunctionArgument == nil || *ferr.FunctionArgument != 0 {
				t.Fatalf("%s(null) = %v, error %v; want the error %q on argument 0", name, got, ferr, nullArgument)
			}
			got, ferr = callFunction(t, f, types.StringUnknown())
			if ferr != nil || !got.IsUnknown() {
				t.Fatalf("%s(unknown) = %v, error %v; want an unknown result", name, got, ferr)
			}
			if want := def.Definition.Return.GetType(); !got.Type(context.Background()).Equal(want) {
				t.Fatalf("%s(unknown) has type %s, want %s", name, got.Type(context.Background()), want)
			}
		})
	}
}

func TestFunctions_deviceID(t *testing.T) {
	valid := []struct{ value, kind string }{
		{fnEID, "eid"},
		{fnICCID, "iccid"},
		{fnICCID2, "iccid"},
		{fnIMEI, "imei"},
		{fnIMEISV, "imei"},
		{fnMDN, "mdn"},
	}
	for _, tc := range valid {
		t.Run(tc.kind+" "+tc.value, func(t *testing.T) {
			got, ferr := callFunction(t, NewDeviceIDFunction(), types.StringValue(tc.value))
			if ferr != nil {
				t.Fatalf("device_id(%q): %v", tc.value, ferr)
			}
			want := types.ObjectValueMust(deviceIDAttrTypes, map[string]attr.Value{
				"kind": types.StringValue(tc.kind), "value": types.StringValue(tc.value)})
			if !got.Equal(want) {
				t.Fatalf("device_id(%q) = %v, want %v", tc.value, got, want)
			}
		})
	}

	invalid := []struct {
		rule, value, want string
	}{
		// Separators: the error of the kind with that many digits, which is the resource
		// attribute's error word for word (checked below).
		{"EID with spaces", fnEID[:8] + " " + fnEID[8:], `EID "` + fnEID[:8] + ` ` + fnEID[8:] + `" contains a space " " at position 9; an EID has 32 digits`},
		{"ICCID with dashes", fnICCID2[:4] + "-" + fnICCID2[4:], `ICCID "` + fnICCID2[:4] + `-` + fnICCID2[4:] + `" contains a non-digit "-" at position 5; an ICCID has 19 or 20 digits`},
		{"IMEI with a dash", fnIMEI[:8] + "-" + fnIMEI[8:], `IMEI "` + fnIMEI[:8] + `-` + fnIMEI[8:] + `" contains a non-digit "-" at position 9`},
		{"MDN with dashes", "202-555-0123", `MDN "202-555-0123" contains a non-digit "-" at position 4; an MDN has 10 digits`},
		// Check digits.
		{"EID check digits", badCheckDigit(fnEID), `EID "` + badCheckDigit(fnEID) + `" fails its check digits (ISO 7064 MOD 97-10`},
		{"EID check digits the lenient mode accepts", "89049032000000000000000000000000", `EID "89049032000000000000000000000000" fails its check digits`},
		{"ICCID Luhn", badCheckDigit(fnICCID2), `ICCID "` + badCheckDigit(fnICCID2) + `" fails its Luhn check digit (expected ` + fnICCID2[19:] + `)`},
		{"IMEI Luhn", badCheckDigit(fnIMEI), `IMEI "` + badCheckDigit(fnIMEI) + `" fails its Luhn check digit (expected ` + fnIMEI[14:] + `)`},
		// Non-digits.
		{"EID with a letter among its digits", fnEID[:10] + "O" + fnEID[10:], `EID "` + fnEID[:10] + `O` + fnEID[10:] + `" contains a non-digit "O" at position 11`},
		{"EID with a letter for a digit", fnEID[:31] + "O", `device ID "` + fnEID[:31] + `O" has 31 digits and 1 other character; a device ID is`},
		// MDN rules.
		{"MDN with the country code", "1" + fnMDN, `MDN "1` + fnMDN + `" has 11 digits; an MDN has 10, without the country code 1 (` + fnMDN + `)`},
		{"MDN with +1", "+1" + fnMDN, `MDN "+1` + fnMDN + `" starts with "+"; an MDN has 10 digits without the country code`},
		{"MDN area code", "1025550123", `MDN "1025550123" has area code 102; a US area code starts with 2 to 9`},
		// Lengths no kind has.
		{"17 digits", fnIMEISV + "0", `device ID "` + fnIMEISV + `0" has 17 digits; a device ID is an EID (32 digits), an ICCID (19 or 20), an IMEI (15, or 16 for an IMEISV) or an MDN (10)`},
		{"14 digits", fnIMEI[:14], `device ID "` + fnIMEI[:14] + `" has 14 digits; a device ID is`},
		{"31 digits", fnEID[:31], `device ID "` + fnEID[:31] + `" has 31 digits; a device ID is`},
		{"11 digits not starting with 1", "2" + fnMDN, `device ID "2` + fnMDN + `" has 11 digits; a device ID is`},
		{"letters and digits", "EID-1234", `device ID "EID-1234" has 4 digits and 4 other characters; a device ID is`},
		{"no digits", "none", `device ID "none" has no digits; a device ID is`},
		{"empty", "", `device ID is empty; a device ID is`},
	}
	for _, tc := range invalid {
		t.Run(tc.rule, func(t *testing.T) {
			got, ferr := callFunction(t, NewDeviceIDFunction(), types.StringValue(tc.value))
			if ferr == nil {
				t.Fatalf("device_id(%q) = %v, want an error", tc.value, got)
			}
			if !strings.HasPrefix(ferr.Text, tc.want) {
				t.Fatalf("device_id(%q) error:\n%s\nwant it to start with:\n%s", tc.value, ferr.Text, tc.want)
			}
			if ferr.FunctionArgument == nil || *ferr.FunctionArgument != 0 {
				t.Fatalf("device_id(%q): the error is not about the argument: %v", tc.value, ferr)
			}
		})
	}

	// The error of a value with a separator is the one the resource attribute gives.
	for _, tc := range []struct{ kind, value string }{
		{"eid", fnEID[:8] + " " + fnEID[8:]},
		{"iccid", fnICCID2[:4] + "-" + fnICCID2[4:]},
		{"imei", fnIMEI[:8] + "-" + fnIMEI[8:]},
	} {
		_, ferr := callFunction(t, NewDeviceIDFunction(), types.StringValue(tc.value))
		if want := validatorError(tc.kind, tc.value); ferr == nil || want == "" || ferr.Text != want {
			t.Errorf("device_id(%q) error %v; the %s attribute's error is %q", tc.value, ferr, tc.kind, want)
		}
	}
}
