package provider

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/list"
	listschema "github.com/hashicorp/terraform-plugin-framework/list/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

var (
	_ list.ListResource              = &esimProfileListResource{}
	_ list.ListResourceWithConfigure = &esimProfileListResource{}
)

// NewESIMProfileListResource returns the thingspace_esim_profile list resource: the devices of
// an account, for `terraform query` (Terraform 1.14 and later), which can write a resource and
// an `import` block (by identity) for each of them.
func NewESIMProfileListResource() list.ListResource { return &esimProfileListResource{} }

type esimProfileListResource struct {
	cfg *Config
}

// esimProfileListModel is the list block's `config`.
type esimProfileListModel struct {
	AccountName types.String `tfsdk:"account_name"`
	State       types.String `tfsdk:"state"`
	ServicePlan types.String `tfsdk:"service_plan"`
	ProfileType types.String `tfsdk:"profile_type"`
}

func (r *esimProfileListResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_esim_profile"
}

func (r *esimProfileListResource) ListResourceConfigSchema(_ context.Context, _ list.ListResourceSchemaRequest, resp *list.ListResourceSchemaResponse) {
	resp.Schema = listschema.Schema{
		MarkdownDescription: "The eSIM devices of an account, each with its identity (`account_name`, `eid`) and, when " +
			"Terraform asks for it (`include_resource`, `-generate-config-out`), the `thingspace_esim_profile` its import " +
			"would read. Every filter is optional; they combine.",
		Attributes: map[string]listschema.Attribute{
			"account_name": listschema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "The account to list; defaults to the provider's `account_name`.",
				Validators:          []validator.String{accountNameValidator()},
			},
			"state": listschema.StringAttribute{
				Optional: true,
				MarkdownDescription: "Only devices in this state: `active`, `suspended`, `pre-active` or `deactive`. Only " +
					"`active` and `suspended` devices can be imported: a `pre-active` device is activated by applying its " +
					"resource, and a `deactive` one is not a profile Terraform can adopt.",
				Validators: []validator.String{stringvalidator.OneOf(string(tsapi.StateActive), string(tsapi.StateSuspended),
					string(tsapi.StatePreActive), string(tsapi.StateDeactive))},
			},
			"service_plan": listschema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "Only devices on this (Verizon US) service plan code.",
				Validators:          []validator.String{servicePlanCodeValidator{}},
			},
			"profile_type": listschema.StringAttribute{
				Optional: true,
				MarkdownDescription: "Only devices whose profile type, as an import reads it, is this one: `verizon_us`, " +
					"`global` or `local`.",
				Validators: []validator.String{stringvalidator.OneOf(profileVerizonUS, profileGlobal, profileLocal)},
			},
		},
	}
}

func (r *esimProfileListResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.cfg = configFrom(req.ProviderData, &resp.Diagnostics)
}

// nullProfileTimeouts is a null `timeouts` of thingspace_esim_profile (a zero timeouts.Value
// has no attribute types).
var nullProfileTimeouts = timeouts.Value{Object: types.ObjectNull(map[string]attr.Type{
	"create": types.StringType, "update": types.StringType, "delete": types.StringType})}

// errListDone stops the paging once Terraform wants no more results.
var errListDone = errors.New("list done")

// List pages through the account's v1 device list (the state and plan filters go to
// ThingSpace), and streams each device with an EID: its identity, a display name, and, when
// asked, the resource as Read would store it after an import (the same flatten).
func (r *esimProfileListResource) List(ctx context.Context, req list.ListRequest, stream *list.ListResultsStream) {
	var cfg esimProfileListModel
	diags := req.Config.Get(ctx, &cfg)
	if diags.HasError() {
		stream.Results = list.ListResultsStreamDiagnostics(diags)
		return
	}
	if r.cfg == nil {
		stream.Results = list.ListResultsStreamDiagnostics(diag.Diagnostics{diag.NewErrorDiagnostic("Provider not configured",
			"The thingspace provider was not configured before the list; this is a bug in the provider.")})
		return
	}
	account, err := r.cfg.accountOr(cfg.AccountName)
	if err != nil {
		stream.Results = list.ListResultsStreamDiagnostics(diag.Diagnostics{diag.NewErrorDiagnostic("No ThingSpace account", err.Error())})
		return
	}
	listReq := tsapi.DeviceListRequest{AccountName: account, ServicePlan: knownString(cfg.ServicePlan)}
	wantState := knownString(cfg.State)
	if wantState != "" {
		listReq.CurrentState = v1ListStates[wantState]
	}
	wantType := knownString(cfg.ProfileType)
	stream.Results = func(push func(list.ListResult) bool) {
		var sent int64
		err := r.cfg.Client.ListAllDevices(withLogger(ctx), listReq, func(d tsapi.Device) error {
			eid := d.DeviceIDs.Get(tsapi.KindEID)
			if eid == "" {
				return nil // not an eSIM device: no thingspace_esim_profile for it
			}
			// As an import's Read sees it: nothing but the keys known before the device is read.
			m := esimProfileModel{Timeouts: nullProfileTimeouts}
			flatten(d, &m)
			m.AccountName = types.StringValue(account)
			// The server filtered already; these checks keep a differently spelled state (or a
			// Global profile's own suspension) from widening the result.
			if wantState != "" && m.State.ValueString() != wantState ||
				listReq.ServicePlan != "" && m.ServicePlan.ValueString() != listReq.ServicePlan ||
				wantType != "" && m.ProfileType.ValueString() != wantType {
				return nil
			}
			res := req.NewListResult(ctx)
			res.DisplayName = fmt.Sprintf("%s (%s, %s)", eid, m.State.ValueString(), m.ServicePlan.ValueString())
			res.Diagnostics.Append(res.Identity.Set(ctx, profileIdentity(account, eid))...)
			if req.IncludeResource {
				res.Diagnostics.Append(res.Resource.Set(ctx, &m)...)
			}
			if !push(res) {
				return errListDone
			}
			sent++
			if req.Limit > 0 && sent >= req.Limit {
				return errListDone
			}
			return nil
		})
		if err != nil && !errors.Is(err, errListDone) {
			push(list.ListResult{Diagnostics: diag.Diagnostics{diag.NewErrorDiagnostic("Cannot list the devices",
				fmt.Sprintf("Listing the devices of account %s: %v", account, err))}})
		}
	}
}
