package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"
)

var (
	_ datasource.DataSource              = &servicePlansDataSource{}
	_ datasource.DataSourceWithConfigure = &servicePlansDataSource{}
)

// NewServicePlansDataSource returns the thingspace_service_plans data source.
func NewServicePlansDataSource() datasource.DataSource { return &servicePlansDataSource{} }

type servicePlansDataSource struct {
	dataSourceConfig
}

type servicePlansModel struct {
	ID          types.String       `tfsdk:"id"`
	AccountName types.String       `tfsdk:"account_name"`
	Plans       []servicePlanModel `tfsdk:"plans"`
	Codes       []types.String     `tfsdk:"codes"`
}

type servicePlanModel struct {
	Name        types.String `tfsdk:"name"`
	Code        types.String `tfsdk:"code"`
	CarrierName types.String `tfsdk:"carrier_name"`
	SizeKb      types.Int64  `tfsdk:"size_kb"`
}

func (d *servicePlansDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_service_plans"
}

func (d *servicePlansDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "The service plans of a ThingSpace account (`GET /api/m2m/v1/plans/{account}`). " +
			"A profile's `service_plan` must be one of their codes.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{Computed: true, MarkdownDescription: "The account name."},
			"account_name": schema.StringAttribute{
				Optional: true, Computed: true,
				MarkdownDescription: "Account to list; defaults to the provider's `account_name`.",
				Validators:          []validator.String{accountNameValidator()},
			},
			"codes": schema.ListAttribute{
				Computed: true, ElementType: types.StringType,
				MarkdownDescription: "The plan codes, in ThingSpace's order.",
			},
			"plans": schema.ListNestedAttribute{
				Computed:            true,
				MarkdownDescription: "The plans, in ThingSpace's order.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"name":         schema.StringAttribute{Computed: true, MarkdownDescription: "Plan name."},
					"code":         schema.StringAttribute{Computed: true, MarkdownDescription: "Plan code, the value `service_plan` takes."},
					"carrier_name": schema.StringAttribute{Computed: true, MarkdownDescription: "Carrier of the plan, when ThingSpace says."},
					"size_kb":      schema.Int64Attribute{Computed: true, MarkdownDescription: "Data allowance in kilobytes, when ThingSpace says."},
				}},
			},
		},
	}
}

func (d *servicePlansDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m servicePlansModel
	account, ok := d.readConfig(ctx, req, resp, &m, &m.AccountName)
	if !ok {
		return
	}
	plans, err := d.cfg.Client.ServicePlans(withLogger(ctx), account)
	if err != nil {
		resp.Diagnostics.AddError("Cannot list service plans", fmt.Sprintf("account %s: %v", account, err))
		return
	}
	tflog.Debug(ctx, "listed service plans", map[string]any{"account": account, "count": len(plans)})
	m.ID = types.StringValue(account)
	m.Plans = make([]servicePlanModel, 0, len(plans))
	m.Codes = make([]types.String, 0, len(plans))
	for _, p := range plans {
		code := p.Code
		if code == "" {
			code = p.Name
		}
		m.Plans = append(m.Plans, servicePlanModel{
			Name: types.StringValue(p.Name), Code: types.StringValue(code),
			CarrierName: types.StringValue(p.CarrierName), SizeKb: types.Int64Value(p.SizeKb),
		})
		m.Codes = append(m.Codes, types.StringValue(code))
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
