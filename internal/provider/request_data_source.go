package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/fleetform/terraform-provider-thingspace/internal/relayapi"
	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

var (
	_ datasource.DataSource              = &requestDataSource{}
	_ datasource.DataSourceWithConfigure = &requestDataSource{}
)

// NewRequestDataSource returns the thingspace_request data source.
func NewRequestDataSource() datasource.DataSource { return &requestDataSource{} }

type requestDataSource struct {
	dataSourceConfig
}

type requestModel struct {
	ID            types.String         `tfsdk:"id"`
	RequestID     types.String         `tfsdk:"request_id"`
	AccountName   types.String         `tfsdk:"account_name"`
	Source        types.String         `tfsdk:"source"`
	Action        types.String         `tfsdk:"action"`
	State         types.String         `tfsdk:"state"`
	Expected      types.Int64          `tfsdk:"expected"`
	TerminalCount types.Int64          `tfsdk:"terminal_count"`
	Devices       []requestDeviceModel `tfsdk:"devices"`
}

type requestDeviceModel struct {
	EID      types.String `tfsdk:"eid"`
	ICCID    types.String `tfsdk:"iccid"`
	IDs      types.Map    `tfsdk:"ids"`
	Status   types.String `tfsdk:"status"`
	Terminal types.Bool   `tfsdk:"terminal"`
}

func (d *requestDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_request"
}

func (d *requestDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "The per-device status of an asynchronous ThingSpace request (for example a profile's " +
			"`last_request_id`): from the relay when `relay_url` is configured and the relay knows the request, else from " +
			"ThingSpace's request-status endpoint (`source` says which).",
		Attributes: map[string]schema.Attribute{
			"id":         schema.StringAttribute{Computed: true, MarkdownDescription: "The request id."},
			"request_id": schema.StringAttribute{Required: true, MarkdownDescription: "The request id ThingSpace answered.", Validators: []validator.String{nonBlank{}}},
			"account_name": schema.StringAttribute{Optional: true, Computed: true,
				MarkdownDescription: "Account of the request; defaults to the provider's.", Validators: []validator.String{accountNameValidator()}},
			"source": schema.StringAttribute{Computed: true, MarkdownDescription: "`relay` or `thingspace` (the request-status endpoint)."},
			"action": schema.StringAttribute{Computed: true, MarkdownDescription: "The action, when the relay knows it."},
			"state": schema.StringAttribute{Computed: true,
				MarkdownDescription: "From the relay: `unknown`, `pending`, `partial` or `terminal`. From ThingSpace: its status (`Pending`, `Success`, `Failed`)."},
			"expected":       schema.Int64Attribute{Computed: true, MarkdownDescription: "Devices registered with the request (relay only)."},
			"terminal_count": schema.Int64Attribute{Computed: true, MarkdownDescription: "Devices with a final result."},
			"devices": schema.ListNestedAttribute{
				Computed:            true,
				MarkdownDescription: "One entry per device of the request.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"eid":      schema.StringAttribute{Computed: true, MarkdownDescription: "The device's EID, when known."},
					"iccid":    schema.StringAttribute{Computed: true, MarkdownDescription: "The device's ICCID, when known."},
					"ids":      schema.MapAttribute{Computed: true, ElementType: types.StringType, MarkdownDescription: "Every identifier, by kind."},
					"status":   schema.StringAttribute{Computed: true, MarkdownDescription: "The device's status (`succeeded`, `failed`, `warning`, `pending`, or ThingSpace's spelling)."},
					"terminal": schema.BoolAttribute{Computed: true, MarkdownDescription: "Whether the status is final."},
				}},
			},
		},
	}
}

func (d *requestDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m requestModel
	account, ok := d.readConfig(ctx, req, resp, &m, &m.AccountName)
	if !ok {
		return
	}
	rid := m.RequestID.ValueString()
	m.ID = types.StringValue(rid)
	m.Devices = []requestDeviceModel{}
	if d.cfg.Relay != nil {
		sum, err := d.cfg.Relay.Request(ctx, rid)
		if err != nil && !errors.Is(err, relayapi.ErrGone) {
			resp.Diagnostics.AddError("Cannot read the request from the relay", err.Error())
			return
		}
		// "unknown" with no devices: the relay never heard of the request (sent outside
		// Terraform, or its callbacks went elsewhere); ThingSpace may still know it.
		if err == nil && (sum.State != "unknown" || len(sum.Devices) > 0) {
			m.Source, m.Action, m.State = types.StringValue("relay"), types.StringValue(sum.Action), types.StringValue(sum.State)
			m.Expected, m.TerminalCount = types.Int64Value(int64(sum.Expected)), types.Int64Value(int64(sum.TerminalCount))
			for _, dev := range sum.Devices {
				m.Devices = append(m.Devices, requestDevice(dev.IDs, dev.Status, dev.Terminal))
			}
			resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
			return
		}
		// Purged by the relay's retention, or never seen by it: ask ThingSpace.
	}
	st, err := d.cfg.Client.RequestStatus(withLogger(ctx), account, rid)
	if err != nil {
		resp.Diagnostics.AddError("Cannot read the request status", fmt.Sprintf("request %s in account %s: %v", rid, account, err))
		return
	}
	m.Source, m.Action, m.State = types.StringValue("thingspace"), types.StringValue(""), types.StringValue(st.Status)
	m.Expected = types.Int64Value(int64(len(st.SubRequests)))
	terminal := 0
	for _, sub := range st.SubRequests {
		t := tsapi.NormalizeStatus(sub.Status).Terminal()
		if t {
			terminal++
		}
		m.Devices = append(m.Devices, requestDevice(sub.IDs, sub.Status, t))
	}
	m.TerminalCount = types.Int64Value(int64(terminal))
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func requestDevice(ids tsapi.DeviceIDs, status string, terminal bool) requestDeviceModel {
	byKind := make(map[string]string, len(ids))
	for _, id := range ids {
		byKind[tsapi.NormalizeKind(id.Kind)] = id.ID
	}
	return requestDeviceModel{
		EID: types.StringValue(ids.Get(tsapi.KindEID)), ICCID: types.StringValue(ids.Get(tsapi.KindICCID)),
		IDs: types.MapValueMust(types.StringType, stringMap(byKind)), Status: types.StringValue(status), Terminal: types.BoolValue(terminal),
	}
}

func stringMap(m map[string]string) map[string]attr.Value {
	out := make(map[string]attr.Value, len(m))
	for k, v := range m {
		out[k] = types.StringValue(v)
	}
	return out
}

// nonBlank rejects an empty or blank string.
type nonBlank struct{}

func (nonBlank) Description(context.Context) string { return "must not be empty" }

func (v nonBlank) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (nonBlank) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if !req.ConfigValue.IsNull() && !req.ConfigValue.IsUnknown() && strings.TrimSpace(req.ConfigValue.ValueString()) == "" {
		resp.Diagnostics.AddAttributeError(req.Path, "Empty value", "The value must not be empty.")
	}
}
