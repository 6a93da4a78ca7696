package provider

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
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
	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
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

// stringCheck is a string validator made of a check: a configured, known value that check
// refuses gets an attribute error with summary, the check's error its detail.
type stringCheck struct {
	description string
	summary     string
	check       func(string) error
}

func (v stringCheck) Description(context.Context) string { return v.description }

func (v stringCheck) MarkdownDescription(context.Context) string { return v.description }

func (v stringCheck) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := v.check(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, v.summary, err.Error())
	}
}

// accountNameValidator checks a ThingSpace account name such as 0000123456-00001.
func accountNameValidator() stringCheck {
	return stringCheck{
		description: "a ThingSpace account name such as 0000123456-00001 (leading zeros kept)",
		summary:     "Invalid account name",
		check:       ids.ValidateAccountName,
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
// has it. Not a stringCheck: its detail is a sentence, which an error's text may not be.
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

// checkEIDStrict checks an EID the provider will act on or keep in state. Its comment is the
// provider's EID policy, written once. An EID is 32 digits whose last two are ISO 7064 MOD
// 97-10 check digits (GSMA SGP.29: the whole number mod 97 is 1). Whether those check digits
// are checked depends on what the provider does with the value:
//
//   - STRICT (checkEIDStrict, checkDeviceID) wherever an EID becomes something the provider
//     acts on or keeps in a resource's state: the resources' schema attributes (idValidator),
//     their import IDs and import identities (an imported EID must pass the same schema
//     validator on the next plan, or the import would adopt a device the next plan refuses),
//     and the provider functions (eid_valid, device_id), which promise the resources' rule.
//     Real eUICCs always carry valid check digits, so a failed check is a typing mistake.
//   - LENIENT (checkDeviceIDForLookup: 32 digits, no check) only where the provider reads
//     what already exists and ThingSpace's own documentation examples, whose EIDs do not
//     carry valid check digits, must pass: the lookups of the data sources (thingspace_device,
//     where a bad check digit is a warning, not an error). Callback parsing
//     (internal/tsapi) and the simulator (internal/sim) take EIDs as ThingSpace sends
//     them and never check them.
//
// In both modes every character is checked as given: a space or a dash is refused, never
// removed.
func checkEIDStrict(eid string) error { return ids.ValidateEID(eid, true) }

// checkDeviceID is the provider's rule for a device identifier of one kind in a configuration:
// internal/ids, with EIDs checked strictly (see the EID policy on checkEIDStrict). The
// resources' identifier attributes (idValidator) and the provider functions both call it.
func checkDeviceID(kind, id string) error {
	return ids.ValidateDeviceID(kind, id, true)
}

// checkDeviceIDForLookup is checkDeviceID for an identifier that is only looked up, by the
// data sources: an EID's check digits are not checked (see the EID policy on checkEIDStrict).
func checkDeviceIDForLookup(kind, id string) error {
	return ids.ValidateDeviceID(kind, id, false)
}

// idValidator checks a device identifier of one kind with checkDeviceID.
func idValidator(kind string) stringCheck {
	return stringCheck{
		description: "a valid " + strings.ToUpper(kind),
		summary:     "Invalid " + strings.ToUpper(kind),
		check:       func(id string) error { return checkDeviceID(kind, id) },
	}
}

// callbackURLValidator checks a callback URL without ever quoting it (its path is a secret):
// an error when it is not an absolute http(s) URL, a warning on a port ThingSpace does not
// document for callbacks.
type callbackURLValidator struct{}

func (callbackURLValidator) Description(context.Context) string {
	return "an absolute http:// or https:// URL with a host and no query or fragment"
}

func (v callbackURLValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (callbackURLValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	u, err := url.Parse(req.ConfigValue.ValueString())
	var problem string
	switch {
	case err != nil:
		problem = "does not parse as a URL"
	case u.Scheme != "http" && u.Scheme != "https":
		problem = "must start with https:// or http://"
	case u.Host == "" || u.Hostname() == "":
		problem = "has no host"
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		problem = "must not have a query or fragment"
	case u.User != nil:
		problem = "must not carry credentials: set `username` and `password` instead"
	}
	if problem != "" {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid callback URL", "The callback URL (not shown: it is sensitive) "+problem+".")
		return
	}
	port := u.Port()
	if port == "" {
		return // 80 or 443
	}
	n, err := strconv.Atoi(port)
	if err != nil || !callbackPortDocumented(n) {
		resp.Diagnostics.AddAttributeWarning(req.Path, "Callback port may be refused",
			fmt.Sprintf("ThingSpace documents only ports 80, 443, 9001-9006, 28200-28220 and 50551-50559 for callback listeners; "+
				"it may refuse port %s. Put the relay behind one of them (a reverse proxy or a port mapping) if it does.", port))
	}
}

// callbackPortDocumented reports whether ThingSpace documents port p for callback listeners.
func callbackPortDocumented(p int) bool {
	return p == 80 || p == 443 || (p >= 9001 && p <= 9006) || (p >= 28200 && p <= 28220) || (p >= 50551 && p <= 50559)
}

// callbackServices are ThingSpace's callback service names.
var callbackServices = strings.Fields(`AlertService CarrierService DevicePRLInformation DeviceProfileService
	DevicePromoUsage DeviceService DeviceSuspensionStatus DeviceUsage DiagnosticsService
	EnhancedConnectivityService ExtendedEnhancedConnectivityService ExternalProvisioningChanges
	IntelligenceService NetworkEventService NiddService PromoChanges PwnService QoS
	ResumeTrackingNotification SMSDeliveryConfirmation StateService SubscriptionNotificationService
	VIPCallbackService`)

// callbackServiceValidator warns about a service name ThingSpace is not known to have; it is
// not an error, so that a service added after this provider was released still works.
type callbackServiceValidator struct{}

func (callbackServiceValidator) Description(context.Context) string {
	return "a ThingSpace callback service name such as " + tsapi.ServiceDeviceProfile
}

func (v callbackServiceValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (callbackServiceValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	s := req.ConfigValue.ValueString()
	for _, name := range callbackServices {
		if name == s {
			return
		}
		if strings.EqualFold(name, s) {
			resp.Diagnostics.AddAttributeWarning(req.Path, "Callback service name case",
				fmt.Sprintf("ThingSpace spells this service %q; %q may be refused.", name, s))
			return
		}
	}
	resp.Diagnostics.AddAttributeWarning(req.Path, "Unknown callback service",
		fmt.Sprintf("%q is not one of ThingSpace's known callback services (%s); registering it may fail.", s, strings.Join(callbackServices, ", ")))
}
