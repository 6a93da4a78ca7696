package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-validators/datasourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/fleetform/terraform-provider-thingspace/internal/ids"
	"github.com/fleetform/terraform-provider-thingspace/internal/thingspace"
	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

var (
	_ datasource.DataSource                     = &deviceDataSource{}
	_ datasource.DataSourceWithConfigure        = &deviceDataSource{}
	_ datasource.DataSourceWithConfigValidators = &deviceDataSource{}
)

// NewDeviceDataSource returns the thingspace_device data source.
func NewDeviceDataSource() datasource.DataSource { return &deviceDataSource{} }

type deviceDataSource struct {
	dataSourceConfig
}

// deviceDataSourceModel is thingspace_device: the lookup key (one identifier, the account)
// and the device's facts.
type deviceDataSourceModel struct {
	ID          types.String `tfsdk:"id"`
	AccountName types.String `tfsdk:"account_name"`
	deviceModel
}

// deviceModel is one device as the device data sources show it: deviceFacts in Terraform
// types. Facts ThingSpace leaves empty (an MDN before activation, a date) are null.
type deviceModel struct {
	EID                types.String   `tfsdk:"eid"`
	ICCID              types.String   `tfsdk:"iccid"`
	IMEI               types.String   `tfsdk:"imei"`
	MDN                types.String   `tfsdk:"mdn"`
	MSISDN             types.String   `tfsdk:"msisdn"`
	State              types.String   `tfsdk:"state"`
	ServicePlan        types.String   `tfsdk:"service_plan"`
	CarrierName        types.String   `tfsdk:"carrier_name"`
	Connected          types.Bool     `tfsdk:"connected"`
	IPAddress          types.String   `tfsdk:"ip_address"`
	GroupNames         []types.String `tfsdk:"group_names"`
	LastActivationDate types.String   `tfsdk:"last_activation_date"`
	CreatedAt          types.String   `tfsdk:"created_at"`
}

// deviceLookupKinds are the identifiers thingspace_device can look a device up by, in the
// order the schema and messages list them.
var deviceLookupKinds = []string{tsapi.KindEID, tsapi.KindICCID, tsapi.KindIMEI, tsapi.KindMDN}

func (d *deviceDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_device"
}

func (d *deviceDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	attrs := deviceAttributes(true)
	attrs["id"] = schema.StringAttribute{Computed: true, MarkdownDescription: "The device's EID."}
	attrs["account_name"] = schema.StringAttribute{
		Optional: true, Computed: true,
		MarkdownDescription: "Account the device belongs to; defaults to the provider's `account_name`.",
		Validators:          []validator.String{accountNameValidator()},
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "One device of a ThingSpace account, looked up by exactly one of `eid`, `iccid`, `imei` or `mdn` in the " +
			"synchronous device list (`POST /api/m2m/v1/devices/actions/list`). The list shows the line's state, service plan and " +
			"identifiers; it has no eSIM profile status or role, so neither does this data source. A device that is not in the " +
			"account is an error.",
		Attributes: attrs,
	}
}

// deviceAttributes returns the schema of deviceModel. With lookup, eid, iccid, imei and mdn
// are optional inputs (exactly one set) and validated; otherwise everything is computed.
func deviceAttributes(lookup bool) map[string]schema.Attribute {
	computed := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Computed: true, MarkdownDescription: desc}
	}
	idAttr := func(kind, desc string) schema.StringAttribute {
		a := computed(desc)
		if lookup {
			a.Optional = true
			a.MarkdownDescription = desc + " Set exactly one of `eid`, `iccid`, `imei` and `mdn` to look the device up."
			a.Validators = []validator.String{deviceIDValidator{kind: kind}}
		}
		return a
	}
	return map[string]schema.Attribute{
		"eid":    idAttr(tsapi.KindEID, "EID of the device's eUICC (32 digits)."),
		"iccid":  idAttr(tsapi.KindICCID, "ICCID of the profile the device list shows (the enabled one)."),
		"imei":   idAttr(tsapi.KindIMEI, "IMEI of the device's module."),
		"mdn":    idAttr(tsapi.KindMDN, "MDN (10-digit US number) of the line; null before the line is activated."),
		"msisdn": computed("MSISDN (E.164 without `+`) of the line; null before the line is activated."),
		"state": computed("The line's state in lower case, whatever spelling ThingSpace used: `active`, `suspended`, `deactive`, " +
			"`pre-active`, a `pending_*` state while a request is in flight, or `unknown`."),
		"service_plan": computed("Service plan code of the line."),
		"carrier_name": computed("Carrier of the line, e.g. `Verizon Wireless`."),
		"connected":    schema.BoolAttribute{Computed: true, MarkdownDescription: "Whether the device is connected to the network now."},
		"ip_address":   computed("IP address of the device, when ThingSpace says."),
		"group_names": schema.ListAttribute{
			Computed: true, ElementType: types.StringType,
			MarkdownDescription: "Device groups the device belongs to.",
		},
		"last_activation_date": computed("When the line was last activated, as ThingSpace spells it (e.g. `2026-01-05T10:42:15-05:00`)."),
		"created_at":           computed("When the device was added to the account, as ThingSpace spells it."),
	}
}

func (d *deviceDataSource) ConfigValidators(context.Context) []datasource.ConfigValidator {
	roots := make([]path.Expression, 0, len(deviceLookupKinds))
	for _, k := range deviceLookupKinds {
		roots = append(roots, path.MatchRoot(k))
	}
	return []datasource.ConfigValidator{datasourcevalidator.ExactlyOneOf(roots...)}
}

func (d *deviceDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m deviceDataSourceModel
	account, ok := d.readConfig(ctx, req, resp, &m, &m.AccountName)
	if !ok {
		return
	}
	var id tsapi.DeviceID
	for kind, v := range map[string]types.String{
		tsapi.KindEID: m.EID, tsapi.KindICCID: m.ICCID, tsapi.KindIMEI: m.IMEI, tsapi.KindMDN: m.MDN,
	} {
		if !v.IsNull() && !v.IsUnknown() {
			id = tsapi.DeviceID{Kind: kind, ID: v.ValueString()}
		}
	}
	if id.ID == "" {
		// ExactlyOneOf has run: only an identifier unknown until apply gets here.
		resp.Diagnostics.AddError("No device identifier", "Set exactly one of `eid`, `iccid`, `imei` and `mdn`.")
		return
	}
	dev, err := d.cfg.Client.GetDevice(withLogger(ctx), account, id)
	if err != nil {
		if thingspace.IsDeviceNotFound(err) {
			resp.Diagnostics.AddAttributeError(path.Root(id.Kind), "Device not found",
				fmt.Sprintf("Account %s has no device with %s %s. Check the identifier and `account_name` (the provider's "+
					"account unless set here).", account, strings.ToUpper(id.Kind), id.ID))
			return
		}
		resp.Diagnostics.AddError("Cannot read the device",
			fmt.Sprintf("Reading %s %s in account %s: %v", strings.ToUpper(id.Kind), id.ID, account, err))
		return
	}
	facts := flattenDevice(*dev)
	tflog.Debug(ctx, "read device", map[string]any{"account": account, "kind": id.Kind, "eid": facts.EID, "state": facts.State})
	m.deviceModel = deviceModelOf(facts)
	m.ID = m.EID
	if m.ID.IsNull() {
		m.ID = types.StringValue(id.Kind + ":" + id.ID)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// deviceModelOf maps deviceFacts onto deviceModel.
func deviceModelOf(f deviceFacts) deviceModel {
	groups := make([]types.String, 0, len(f.GroupNames))
	for _, g := range f.GroupNames {
		groups = append(groups, types.StringValue(g))
	}
	return deviceModel{
		EID: stringOrNull(f.EID), ICCID: stringOrNull(f.ICCID), IMEI: stringOrNull(f.IMEI),
		MDN: stringOrNull(f.MDN), MSISDN: stringOrNull(f.MSISDN), State: types.StringValue(f.State),
		ServicePlan: stringOrNull(f.ServicePlan), CarrierName: stringOrNull(f.CarrierName),
		Connected: types.BoolValue(f.Connected), IPAddress: stringOrNull(f.IPAddress), GroupNames: groups,
		LastActivationDate: stringOrNull(f.LastActivationDate), CreatedAt: stringOrNull(f.CreatedAt),
	}
}

// stringOrNull is null for "", so a fact ThingSpace does not give reads as unknown rather
// than as an empty value.
func stringOrNull(s string) types.String {
	if s == "" {
		return types.StringNull()
	}
	return types.StringValue(s)
}

// deviceIDValidator checks a device identifier of one kind with internal/ids at plan time.
// A wrong format is an error; a wrong check digit only a warning, because ICCIDs without a
// valid Luhn digit exist in the field and the lookup itself will say whether the device is there.
type deviceIDValidator struct {
	kind string
}

func (v deviceIDValidator) Description(context.Context) string {
	switch v.kind {
	case tsapi.KindEID:
		return "an EID: 32 digits"
	case tsapi.KindICCID:
		return "an ICCID: 19 or 20 digits"
	case tsapi.KindIMEI:
		return "an IMEI: 15 digits (16 for an IMEISV)"
	case tsapi.KindMDN:
		return "an MDN: a 10-digit US number without the country code"
	}
	return "a device identifier"
}

func (v deviceIDValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (v deviceIDValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	// Lenient about an EID's check digits: a lookup only reads (the EID policy on checkEIDStrict).
	err := checkDeviceIDForLookup(v.kind, req.ConfigValue.ValueString())
	switch {
	case err == nil:
	case errors.Is(err, ids.ErrCheckDigit):
		resp.Diagnostics.AddAttributeWarning(req.Path, "Suspicious "+strings.ToUpper(v.kind), err.Error()+".")
	default:
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid "+strings.ToUpper(v.kind), err.Error()+".")
	}
}
