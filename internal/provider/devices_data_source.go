package provider

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

var (
	_ datasource.DataSource              = &devicesDataSource{}
	_ datasource.DataSourceWithConfigure = &devicesDataSource{}
)

// Bounds of thingspace_devices.max_results. Devices are a list (never a set) and the default
// covers a documented bulk call; the upper bound keeps one plan's state reasonable.
const (
	defaultDevicesMaxResults = 10000
	maxDevicesMaxResults     = 100000
)

// NewDevicesDataSource returns the thingspace_devices data source.
func NewDevicesDataSource() datasource.DataSource { return &devicesDataSource{} }

type devicesDataSource struct {
	dataSourceConfig
}

type devicesDataSourceModel struct {
	ID               types.String           `tfsdk:"id"`
	AccountName      types.String           `tfsdk:"account_name"`
	State            types.String           `tfsdk:"state"`
	ServicePlan      types.String           `tfsdk:"service_plan"`
	GroupName        types.String           `tfsdk:"group_name"`
	IdentifierFilter *identifierFilterModel `tfsdk:"identifier_filter"`
	MaxResults       types.Int64            `tfsdk:"max_results"`
	Truncated        types.Bool             `tfsdk:"truncated"`
	Devices          []deviceModel          `tfsdk:"devices"`
	EIDs             []types.String         `tfsdk:"eids"`
}

type identifierFilterModel struct {
	Kind     types.String `tfsdk:"kind"`
	Contains types.String `tfsdk:"contains"`
}

// v1ListStates maps the state filter's values to the spelling the v1 list's currentState
// takes: the spelling the list itself shows in carrierInformations[].state. Results are also
// checked with tsapi.NormalizeState, so a server that spells states differently cannot
// widen the filter.
var v1ListStates = map[string]string{
	string(tsapi.StateActive):    "active",
	string(tsapi.StateSuspended): "suspend",
	string(tsapi.StateDeactive):  "deactive",
	string(tsapi.StatePreActive): "pre-active",
}

// identifierFilterKinds are the identifier kinds the v1 list filters on.
var identifierFilterKinds = []string{
	tsapi.KindEID, tsapi.KindICCID, tsapi.KindIMEI, tsapi.KindMDN, tsapi.KindMSISDN,
}

// errEnoughDevices stops the paging once one device more than max_results has been seen.
var errEnoughDevices = errors.New("enough devices")

func (d *devicesDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_devices"
}

func (d *devicesDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	states := make([]string, 0, len(v1ListStates))
	for s := range v1ListStates {
		states = append(states, s)
	}
	slices.Sort(states)
	resp.Schema = schema.Schema{
		MarkdownDescription: "The devices of a ThingSpace account, from the synchronous device list " +
			"(`POST /api/m2m/v1/devices/actions/list`), optionally filtered by state, service plan, group or part of an identifier. " +
			"The provider follows the list's pages. The list has no eSIM profile status or role, so neither does this data source.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{Computed: true, MarkdownDescription: "The account name."},
			"account_name": schema.StringAttribute{
				Optional: true, Computed: true,
				MarkdownDescription: "Account to list; defaults to the provider's `account_name`.",
				Validators:          []validator.String{accountNameValidator()},
			},
			"state": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "Only devices whose line is in this state: one of " + backquoteList(states) +
					". Devices with a request in flight (`pending_*`) match none of them.",
				Validators: []validator.String{stringvalidator.OneOf(states...)},
			},
			"service_plan": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "Only devices with this service plan code (see `thingspace_service_plans`).",
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"group_name": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "Only devices in this device group.",
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"identifier_filter": schema.SingleNestedAttribute{
				Optional:            true,
				MarkdownDescription: "Only devices with an identifier of `kind` that contains `contains`, e.g. an ICCID range by its prefix.",
				Attributes: map[string]schema.Attribute{
					"kind": schema.StringAttribute{
						Required:            true,
						MarkdownDescription: "Identifier kind: one of " + backquoteList(identifierFilterKinds) + ".",
						Validators:          []validator.String{stringvalidator.OneOf(identifierFilterKinds...)},
					},
					"contains": schema.StringAttribute{
						Required:            true,
						MarkdownDescription: "Digits the identifier contains.",
						Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
					},
				},
			},
			"max_results": schema.Int64Attribute{
				Optional: true, Computed: true,
				MarkdownDescription: fmt.Sprintf("Most devices to return (default %d, at most %d). When more match, `truncated` is true.",
					defaultDevicesMaxResults, maxDevicesMaxResults),
				Validators: []validator.Int64{int64validator.Between(1, maxDevicesMaxResults)},
			},
			"truncated": schema.BoolAttribute{
				Computed:            true,
				MarkdownDescription: "Whether more devices matched than `max_results`.",
			},
			"eids": schema.ListAttribute{
				Computed: true, ElementType: types.StringType,
				MarkdownDescription: "EIDs of `devices`, in the same order.",
			},
			"devices": schema.ListNestedAttribute{
				Computed:            true,
				MarkdownDescription: "The matching devices, in ThingSpace's order.",
				NestedObject:        schema.NestedAttributeObject{Attributes: deviceAttributes(false)},
			},
		},
	}
}

func (d *devicesDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m devicesDataSourceModel
	account, ok := d.readConfig(ctx, req, resp, &m, &m.AccountName)
	if !ok {
		return
	}
	limit := int64(defaultDevicesMaxResults)
	if !m.MaxResults.IsNull() && !m.MaxResults.IsUnknown() {
		limit = m.MaxResults.ValueInt64()
	}

	listReq := tsapi.DeviceListRequest{AccountName: account}
	var wantState tsapi.DeviceState
	if s := m.State.ValueString(); s != "" {
		listReq.CurrentState = v1ListStates[s]
		wantState = tsapi.DeviceState(s)
	}
	listReq.ServicePlan = m.ServicePlan.ValueString()
	listReq.GroupName = m.GroupName.ValueString()
	if f := m.IdentifierFilter; f != nil {
		listReq.Filter = &tsapi.ListFilter{DeviceIdentifierFilters: []tsapi.DeviceIdentifierFilter{{
			Kind: f.Kind.ValueString(), Contains: f.Contains.ValueString(),
		}}}
	}

	devices := make([]deviceModel, 0)
	eids := make([]types.String, 0)
	truncated := false
	err := d.cfg.Client.ListAllDevices(withLogger(ctx), listReq, func(dev tsapi.Device) error {
		facts := flattenDevice(dev)
		// The server filtered already; these checks only keep a differently-spelled state or an
		// ignored group filter from widening the result.
		if wantState != "" && facts.State != string(wantState) {
			return nil
		}
		if listReq.GroupName != "" && !slices.Contains(facts.GroupNames, listReq.GroupName) {
			return nil
		}
		if int64(len(devices)) == limit {
			truncated = true
			return errEnoughDevices
		}
		devices = append(devices, deviceModelOf(facts))
		eids = append(eids, stringOrNull(facts.EID))
		if len(devices)%2000 == 0 {
			tflog.Debug(ctx, "listing devices", map[string]any{"account": account, "so_far": len(devices)})
		}
		return nil
	})
	if err != nil && !errors.Is(err, errEnoughDevices) {
		resp.Diagnostics.AddError("Cannot list devices", fmt.Sprintf("account %s: %v", account, err))
		return
	}
	if truncated && m.MaxResults.IsNull() {
		resp.Diagnostics.AddWarning("More devices than max_results",
			fmt.Sprintf("More than %d devices of account %s match; only the first %d are returned. Narrow the filters, or set "+
				"`max_results` (up to %d) to return more or to silence this warning.", limit, account, limit, maxDevicesMaxResults))
	}
	tflog.Debug(ctx, "listed devices", map[string]any{"account": account, "count": len(devices), "truncated": truncated})

	m.ID = types.StringValue(account)
	m.MaxResults = types.Int64Value(limit)
	m.Truncated = types.BoolValue(truncated)
	m.Devices = devices
	m.EIDs = eids
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// backquoteList renders values as "`a`, `b` or `c`" for descriptions.
func backquoteList(values []string) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = "`" + v + "`"
	}
	if len(q) < 2 {
		return strings.Join(q, "")
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}
