package provider

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/function"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/fleetform/terraform-provider-thingspace/internal/ids"
	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// The provider-defined functions (Terraform 1.8 and later, OpenTofu 1.7 and later) give module
// authors the provider's own identifier rules at plan time, without a configured provider:
// eid_valid, iccid_valid and imei_valid answer with checkDeviceID, the rule of the resources'
// identifier attributes, and device_id tells which kind of identifier a value is.
//
// Their parameters refuse null (Terraform and OpenTofu answer "argument must not be null"
// before the provider is called) and skip unknown values (the result is unknown). Run handles
// both anyway, the same way, for callers other than Terraform.

var (
	_ function.Function = &idValidFunction{}
	_ function.Function = &deviceIDFunction{}
)

// nullArgument is the text of Terraform's own error for a null argument of a parameter that
// does not allow null; Terraform prefixes it with the parameter's name.
const nullArgument = "argument must not be null"

// NewEIDValidFunction returns provider::thingspace::eid_valid.
func NewEIDValidFunction() function.Function {
	return &idValidFunction{
		kind: tsapi.KindEID,
		rule: "32 digits whose last two are ISO 7064 MOD 97-10 check digits (the whole number mod 97 is 1), " +
			"checked strictly, as the `eid` attributes of `thingspace_esim_profile` and " +
			"`thingspace_service_plan_assignment` check it",
	}
}

// NewICCIDValidFunction returns provider::thingspace::iccid_valid.
func NewICCIDValidFunction() function.Function {
	return &idValidFunction{
		kind: tsapi.KindICCID,
		rule: "19 or 20 digits, the last a Luhn check digit (ITU-T E.118; the `89` prefix is not required), " +
			"as the `iccid` attributes of `thingspace_esim_profile` and `thingspace_service_plan_assignment` check it",
	}
}

// NewIMEIValidFunction returns provider::thingspace::imei_valid.
func NewIMEIValidFunction() function.Function {
	return &idValidFunction{
		kind: tsapi.KindIMEI,
		rule: "15 digits, the last a Luhn check digit, or a 16-digit IMEISV (which has no check digit), " +
			"as the `imei` attributes of `thingspace_esim_profile` and `thingspace_service_plan_assignment` check it",
	}
}

// idValidFunction is <kind>_valid(string) bool: whether checkDeviceID accepts the value.
type idValidFunction struct {
	kind string // tsapi.KindEID, KindICCID or KindIMEI
	rule string // Markdown: what a valid value is
}

func (f *idValidFunction) Metadata(_ context.Context, _ function.MetadataRequest, resp *function.MetadataResponse) {
	resp.Name = f.kind + "_valid"
}

func (f *idValidFunction) Definition(_ context.Context, _ function.DefinitionRequest, resp *function.DefinitionResponse) {
	name := strings.ToUpper(f.kind) // EID, ICCID, IMEI
	resp.Definition = function.Definition{
		Summary: fmt.Sprintf("Whether a string is an %s the provider accepts", name),
		MarkdownDescription: fmt.Sprintf("Returns `true` when the string is a valid %s: %s. "+
			"Otherwise `false`, whatever is wrong (length, a character that is not a digit, a check digit). "+
			"Every character counts: a space or a dash makes the value invalid, as it does in the resources, "+
			"which never remove one. A null argument is an error; an unknown one gives an unknown result.", name, f.rule),
		Parameters: []function.Parameter{
			function.StringParameter{
				Name:                f.kind,
				MarkdownDescription: fmt.Sprintf("The %s to check.", name),
			},
		},
		Return: function.BoolReturn{},
	}
}

func (f *idValidFunction) Run(ctx context.Context, req function.RunRequest, resp *function.RunResponse) {
	var v types.String
	if resp.Error = req.Arguments.Get(ctx, &v); resp.Error != nil {
		return
	}
	switch {
	case v.IsUnknown():
		resp.Error = resp.Result.Set(ctx, types.BoolUnknown())
	case v.IsNull():
		resp.Error = function.NewArgumentFuncError(0, nullArgument)
	default:
		resp.Error = resp.Result.Set(ctx, checkDeviceID(f.kind, v.ValueString()) == nil)
	}
}

// NewDeviceIDFunction returns provider::thingspace::device_id.
func NewDeviceIDFunction() function.Function { return &deviceIDFunction{} }

// deviceIDFunction is device_id(string) object({kind = string, value = string}).
type deviceIDFunction struct{}

// deviceIDModel is device_id's result.
type deviceIDModel struct {
	Kind  types.String `tfsdk:"kind"`
	Value types.String `tfsdk:"value"`
}

var deviceIDAttrTypes = map[string]attr.Type{"kind": types.StringType, "value": types.StringType}

func (f *deviceIDFunction) Metadata(_ context.Context, _ function.MetadataRequest, resp *function.MetadataResponse) {
	resp.Name = "device_id"
}

func (f *deviceIDFunction) Definition(_ context.Context, _ function.DefinitionRequest, resp *function.DefinitionResponse) {
	resp.Definition = function.Definition{
		Summary: "Parses a device identifier: an EID, ICCID, IMEI or MDN",
		MarkdownDescription: "Returns `{ kind, value }` for an EID, ICCID, IMEI or MDN: the kind as ThingSpace spells it " +
			"in requests (`eid`, `iccid`, `imei` or `mdn`), chosen by the number of digits in the value (32, 19 or 20, " +
			"15 or 16, 10), and the value the provider sends. A value of none of these lengths, or one that breaks the rule " +
			"of its kind (the rule of the resources' attributes: EID check digits checked strictly, separators refused), " +
			"is an error that names the value and the rule. A null argument is an error; an unknown one gives an unknown result.",
		Parameters: []function.Parameter{
			function.StringParameter{
				Name:                "id",
				MarkdownDescription: "An EID, ICCID, IMEI or MDN.",
			},
		},
		Return: function.ObjectReturn{AttributeTypes: deviceIDAttrTypes},
	}
}

func (f *deviceIDFunction) Run(ctx context.Context, req function.RunRequest, resp *function.RunResponse) {
	var v types.String
	if resp.Error = req.Arguments.Get(ctx, &v); resp.Error != nil {
		return
	}
	switch {
	case v.IsUnknown():
		resp.Error = resp.Result.Set(ctx, types.ObjectUnknown(deviceIDAttrTypes))
	case v.IsNull():
		resp.Error = function.NewArgumentFuncError(0, nullArgument)
	default:
		kind, err := parseDeviceID(v.ValueString())
		if err != nil {
			resp.Error = function.NewArgumentFuncError(0, err.Error())
			return
		}
		resp.Error = resp.Result.Set(ctx, deviceIDModel{Kind: types.StringValue(kind), Value: v})
	}
}

// deviceIDKinds is how device_id describes the kinds it knows, in its errors.
const deviceIDKinds = "a device ID is an EID (32 digits), an ICCID (19 or 20), an IMEI (15, or 16 for an IMEISV) or an MDN (10)"

// parseDeviceID returns the kind of s (tsapi.KindEID, KindICCID, KindIMEI or KindMDN)
// when checkDeviceID accepts s as that kind. The kind is chosen by the number of ASCII digits
// in s, other characters left out, so that a value with a separator gets the error of the
// kind it was meant to be.
func parseDeviceID(s string) (string, error) {
	digits, others := 0, 0
	var first rune
	for _, c := range s {
		if c < '0' || c > '9' {
			others++
			continue
		}
		if digits == 0 {
			first = c
		}
		digits++
	}
	var kind string
	switch {
	case digits == ids.EIDLength:
		kind = tsapi.KindEID
	case digits == ids.ICCIDMinLength || digits == ids.ICCIDMaxLength:
		kind = tsapi.KindICCID
	case digits == ids.IMEILength || digits == ids.IMEISVLength:
		kind = tsapi.KindIMEI
	case digits == ids.MDNLength, digits == ids.MDNLength+1 && first == '1':
		kind = tsapi.KindMDN
	default:
		reason := "has " + countOf(digits, "digit")
		switch {
		case s == "":
			reason = "is empty"
		case digits == 0:
			reason = "has no digits"
		case others > 0:
			reason += " and " + countOf(others, "other character")
		}
		return "", &ids.Error{Kind: "device ID", Value: s, Reason: reason + "; " + deviceIDKinds}
	}
	if err := checkDeviceID(kind, s); err != nil {
		return "", err
	}
	return kind, nil
}

// countOf returns "1 digit" or "n digits".
func countOf(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
