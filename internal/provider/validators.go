package provider

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/fleetform/terraform-provider-thingspace/internal/ids"
	"github.com/fleetform/terraform-provider-thingspace/internal/thingspace"
)

// baseURLValidator checks an http(s) URL. With allowPath a path prefix is accepted (a relay
// behind a reverse proxy); without it the value must be scheme://host[:port].
type baseURLValidator struct {
	what      string
	allowPath bool
}

func (v baseURLValidator) Description(context.Context) string {
	if v.allowPath {
		return "must be an http:// or https:// URL"
	}
	return "must be scheme://host[:port] with scheme https (or http)"
}

func (v baseURLValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (v baseURLValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	s := req.ConfigValue.ValueString()
	var err error
	if v.allowPath {
		err = checkURL(s, true)
	} else {
		_, err = thingspace.ParseBaseURL(s)
	}
	if err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid "+v.what, err.Error())
	}
}

// checkURL accepts an absolute http(s) URL with a host and no query or fragment.
func checkURL(s string, allowPath bool) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %v", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q must start with https:// or http://", s)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q must not have a query or fragment", s)
	}
	if !allowPath && strings.Trim(u.Path, "/") != "" {
		return fmt.Errorf("%q must not have a path", s)
	}
	return nil
}

// accountNameValidator checks a ThingSpace account name such as 0000123456-00001.
type accountNameValidator struct{}

func (accountNameValidator) Description(context.Context) string {
	return "a ThingSpace account name such as 0000123456-00001 (leading zeros kept)"
}

func (v accountNameValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (accountNameValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := ids.ValidateAccountName(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid account name", err.Error())
	}
}

// durationValidator checks a Go duration string within [min, max].
type durationValidator struct{ min, max time.Duration }

func (v durationValidator) Description(context.Context) string {
	return fmt.Sprintf("a Go duration such as \"250ms\" or \"10m\", from %s to %s", v.min, v.max)
}

func (v durationValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (v durationValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	d, err := time.ParseDuration(req.ConfigValue.ValueString())
	switch {
	case err != nil:
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid duration",
			fmt.Sprintf("%q is not a duration: use a number with a unit, such as \"250ms\", \"30s\" or \"10m\".", req.ConfigValue.ValueString()))
	case d < v.min || d > v.max:
		resp.Diagnostics.AddAttributeError(req.Path, "Duration out of range",
			fmt.Sprintf("%s is outside the allowed range %s to %s.", d, v.min, v.max))
	}
}

var (
	reasonCodeRE = regexp.MustCompile(`^[0-9A-Z]{2,32}$`)
	smsrOidRE    = regexp.MustCompile(`^[0-9.]{3,46}$`)
	zipRE        = regexp.MustCompile(`^[0-9]{5}$`)
	planCodeRE   = regexp.MustCompile(`^[A-Za-z0-9 ]{3,32}$`)
)

// servicePlanCodeValidator checks the shape of a plan code; ModifyPlan checks that the account
// has it.
type servicePlanCodeValidator struct{}

func (servicePlanCodeValidator) Description(context.Context) string {
	return "a ThingSpace service plan code: 3 to 32 letters, digits or spaces"
}

func (v servicePlanCodeValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (servicePlanCodeValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if !planCodeRE.MatchString(req.ConfigValue.ValueString()) {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid service plan code",
			fmt.Sprintf("%q is not a plan code: ThingSpace plan codes are 3 to 32 letters, digits or spaces.", req.ConfigValue.ValueString()))
	}
}

// checkDeviceID is the provider's rule for a device identifier of one kind in a configuration:
// internal/ids, with EIDs checked strictly (real EIDs always carry valid check digits) and
// every character checked as given (a space or a dash is refused, never removed). The
// resources' identifier attributes (idValidator) and the provider functions both call it.
// reasonCodeAttribute is the deactivation reason code of every resource that deactivates.
func reasonCodeAttribute() schema.StringAttribute {
	return schema.StringAttribute{
		Optional: true, Computed: true, Default: stringdefault.StaticString("FF"),
		MarkdownDescription: "Deactivation reason code (2 to 32 upper-case letters or digits), sent with `deactivate`.",
		Validators:          []validator.String{stringvalidator.RegexMatches(reasonCodeRE, "must be 2 to 32 upper-case letters or digits, such as FF")},
	}
}

// checkZipCode adds a diagnostic when a configured mdn_zip_code is not a 5-digit ZIP code.
func checkZipCode(v types.String, diags *diag.Diagnostics) {
	if !v.IsNull() && !v.IsUnknown() && !zipRE.MatchString(v.ValueString()) {
		diags.AddAttributeError(path.Root("mdn_zip_code"), "Invalid mdn_zip_code",
			fmt.Sprintf("%q is not a 5-digit ZIP code.", v.ValueString()))
	}
}

func checkDeviceID(kind, id string) error {
	return ids.ValidateDeviceID(kind, id, true)
}

// idValidator checks a device identifier of one kind with checkDeviceID.
type idValidator struct{ kind string }

func (v idValidator) Description(context.Context) string { return "a valid " + strings.ToUpper(v.kind) }

func (v idValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (v idValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := checkDeviceID(v.kind, req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid "+strings.ToUpper(v.kind), err.Error())
	}
}
