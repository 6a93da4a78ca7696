package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/fleetform/terraform-provider-thingspace/internal/ids"
	"github.com/fleetform/terraform-provider-thingspace/internal/thingspace"
	"github.com/fleetform/terraform-provider-thingspace/internal/wait"
)

var (
	_ resource.Resource                   = &esimProfileResource{}
	_ resource.ResourceWithConfigure      = &esimProfileResource{}
	_ resource.ResourceWithImportState    = &esimProfileResource{}
	_ resource.ResourceWithModifyPlan     = &esimProfileResource{}
	_ resource.ResourceWithValidateConfig = &esimProfileResource{}
)

// NewESIMProfileResource returns the thingspace_esim_profile resource.
func NewESIMProfileResource() resource.Resource { return &esimProfileResource{} }

type esimProfileResource struct {
	cfg *Config
}

// Profile types.
const (
	profileVerizonUS = "verizon_us"
	profileGlobal    = "global"
	profileLocal     = "local"
)

// Default timeouts. Global profiles download over the air to a device that must be online,
// with "warning" callbacks on the way: they get longer.
const (
	defaultCreateTimeout       = 30 * time.Minute
	defaultCreateTimeoutGlobal = 60 * time.Minute
	defaultUpdateTimeout       = 30 * time.Minute
	defaultDeleteTimeout       = 30 * time.Minute
)

// esimProfileModel is the resource's state.
type esimProfileModel struct {
	ID                 types.String   `tfsdk:"id"`
	EID                types.String   `tfsdk:"eid"`
	ICCID              types.String   `tfsdk:"iccid"`
	IMEI               types.String   `tfsdk:"imei"`
	AccountName        types.String   `tfsdk:"account_name"`
	ProfileType        types.String   `tfsdk:"profile_type"`
	ServicePlan        types.String   `tfsdk:"service_plan"`
	GlobalServicePlan  types.String   `tfsdk:"global_service_plan"`
	Download           types.Bool     `tfsdk:"download"`
	Enabled            types.Bool     `tfsdk:"enabled"`
	SmsrOid            types.String   `tfsdk:"smsr_oid"`
	MdnZipCode         types.String   `tfsdk:"mdn_zip_code"`
	PrimaryPlaceOfUse  *placeOfUse    `tfsdk:"primary_place_of_use"`
	Suspended          types.Bool     `tfsdk:"suspended"`
	AdoptExisting      types.Bool     `tfsdk:"adopt_existing"`
	EtfWaiver          types.Bool     `tfsdk:"etf_waiver"`
	ReasonCode         types.String   `tfsdk:"reason_code"`
	DeleteProfile      types.Bool     `tfsdk:"delete_profile"`
	DeletionProtection types.Bool     `tfsdk:"deletion_protection"`
	Timeouts           timeouts.Value `tfsdk:"timeouts"`
	State              types.String   `tfsdk:"state"`
	ProfileStatus      types.String   `tfsdk:"profile_status"`
	ProfileRole        types.String   `tfsdk:"profile_role"`
	MDN                types.String   `tfsdk:"mdn"`
	MSISDN             types.String   `tfsdk:"msisdn"`
	LastRequestID      types.String   `tfsdk:"last_request_id"`
}

type placeOfUse struct {
	CustomerName *customerName `tfsdk:"customer_name"`
	Address      *address      `tfsdk:"address"`
}

type customerName struct {
	FirstName types.String `tfsdk:"first_name"`
	LastName  types.String `tfsdk:"last_name"`
}

type address struct {
	AddressLine1 types.String `tfsdk:"address_line1"`
	AddressLine2 types.String `tfsdk:"address_line2"`
	City         types.String `tfsdk:"city"`
	State        types.String `tfsdk:"state"`
	Zip          types.String `tfsdk:"zip"`
	Country      types.String `tfsdk:"country"`
}

func (r *esimProfileResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_esim_profile"
}

func (r *esimProfileResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	keep := []planmodifier.String{stringplanmodifier.UseStateForUnknown()}
	str := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Optional: true, MarkdownDescription: desc}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "One device's eSIM profile on ThingSpace, from activation to deactivation. Create activates the " +
			"profile (and, for `global` and `local` profiles, downloads and enables it), waits for ThingSpace's callback " +
			"for the device, and confirms the result by reading the device before it writes state. " +
			"See the guide on the waiting model for time-outs and interrupts.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{Computed: true, PlanModifiers: keep, MarkdownDescription: "The EID."},
			"eid": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "The device's EID (32 digits with ISO 7064 MOD 97-10 check digits). Changing it replaces the resource.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
				Validators:          []validator.String{idValidator{kind: "eid"}},
			},
			"iccid": schema.StringAttribute{
				Optional: true, Computed: true,
				MarkdownDescription: "ICCID of the device's lead (Verizon) profile. Read from ThingSpace when not set; " +
					"replaces the resource only when configured and changed.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown(), stringplanmodifier.RequiresReplaceIfConfigured()},
				Validators:    []validator.String{idValidator{kind: "iccid"}},
			},
			"imei": schema.StringAttribute{
				Optional: true, Computed: true,
				MarkdownDescription: "IMEI of the device's module, sent with the activation. A new IMEI (a module swap) is " +
					"an in-place update that sends nothing to ThingSpace.",
				PlanModifiers: keep,
				Validators:    []validator.String{idValidator{kind: "imei"}},
			},
			"account_name": schema.StringAttribute{
				Optional: true, Computed: true,
				MarkdownDescription: "Billing account; defaults to the provider's `account_name` and is kept from state when " +
					"the provider default changes.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown(), stringplanmodifier.RequiresReplaceIfConfigured()},
				Validators:    []validator.String{accountNameValidator{}},
			},
			"profile_type": schema.StringAttribute{
				Optional: true, Computed: true, Default: stringdefault.StaticString(profileVerizonUS),
				MarkdownDescription: "`verizon_us` (default: `activate`), `global` (`activate` with the US `service_plan`, then " +
					"`download_enable` with `global_service_plan`), or `local` (`activate`, then `download_enable` with `smsr_oid`; " +
					"limited release at ThingSpace). Changing it replaces the resource.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
				Validators:    []validator.String{stringvalidator.OneOf(profileVerizonUS, profileGlobal, profileLocal)},
			},
			"service_plan": schema.StringAttribute{
				Required: true,
				MarkdownDescription: "The Verizon (US) service plan code; it must be one of the account's plans " +
					"(see the `thingspace_service_plans` data source). A change sends `serviceplan`.",
				Validators: []validator.String{servicePlanCodeValidator{}},
			},
			"global_service_plan": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "The Global service plan of a `global` profile (required for it). A change sends `serviceplan`.",
				Validators:          []validator.String{servicePlanCodeValidator{}},
			},
			"download": schema.BoolAttribute{
				Optional: true, Computed: true, Default: booldefault.StaticBool(true),
				MarkdownDescription: "`global` only: download the Global profile at create (the device must be powered on and " +
					"connected). `false` stages a device that is not online yet: activation only, no download step.",
			},
			"enabled": schema.BoolAttribute{
				Optional: true, Computed: true, Default: booldefault.StaticBool(true),
				MarkdownDescription: "Whether the downloaded profile is enabled. `false` at create downloads without enabling " +
					"(`download` for `global`, `download_disable` for `local`); a change from `false` to `true` sends `enable`.",
			},
			"smsr_oid":     str("Object ID of the SM-SR system (`local` profiles, required for them). Kept from state, not read back."),
			"mdn_zip_code": str("Billing ZIP code for the MDN assigned at activation. Activation-time input: kept from state, not read back, and a change does not replace the resource."),
			"primary_place_of_use": schema.SingleNestedAttribute{
				Optional:            true,
				MarkdownDescription: "Primary place of use sent with the activation. Activation-time input: kept from state.",
				Attributes: map[string]schema.Attribute{
					"customer_name": schema.SingleNestedAttribute{Required: true, MarkdownDescription: "Customer name.", Attributes: map[string]schema.Attribute{
						"first_name": schema.StringAttribute{Required: true, MarkdownDescription: "First name."},
						"last_name":  schema.StringAttribute{Required: true, MarkdownDescription: "Last name."},
					}},
					"address": schema.SingleNestedAttribute{Required: true, MarkdownDescription: "Postal address.", Attributes: map[string]schema.Attribute{
						"address_line1": schema.StringAttribute{Required: true, MarkdownDescription: "First address line."},
						"address_line2": schema.StringAttribute{Optional: true, MarkdownDescription: "Second address line."},
						"city":          schema.StringAttribute{Required: true, MarkdownDescription: "City."},
						"state":         schema.StringAttribute{Required: true, MarkdownDescription: "State (two letters)."},
						"zip":           schema.StringAttribute{Required: true, MarkdownDescription: "ZIP code."},
						"country":       schema.StringAttribute{Optional: true, MarkdownDescription: "Country (default USA)."},
					}},
				},
			},
			"suspended": schema.BoolAttribute{
				Optional: true, Computed: true, Default: booldefault.StaticBool(false),
				MarkdownDescription: "Suspend the profile: `profile_suspend` for `global`, `device_suspend` for `verizon_us` and " +
					"`local`. `false` resumes it (`profile_resume` for `global`, `device_resume` otherwise).",
			},
			"adopt_existing": schema.BoolAttribute{
				Optional: true, Computed: true, Default: booldefault.StaticBool(false),
				MarkdownDescription: "When Create finds the device already active on another plan: adopt it and change the plan, " +
					"instead of failing with an `import` block to paste.",
			},
			"etf_waiver": schema.BoolAttribute{
				Optional: true, Computed: true, Default: booldefault.StaticBool(false),
				MarkdownDescription: "Early-termination-fee waiver sent, always explicitly, with `deactivate` on destroy.",
			},
			"reason_code": schema.StringAttribute{
				Optional: true, Computed: true, Default: stringdefault.StaticString("FF"),
				MarkdownDescription: "Deactivation reason code (2 to 32 upper-case letters or digits), sent with `deactivate`.",
				Validators:          []validator.String{stringvalidator.RegexMatches(reasonCodeRE, "must be 2 to 32 upper-case letters or digits, such as FF")},
			},
			"delete_profile": schema.BoolAttribute{
				Optional: true, Computed: true, Default: booldefault.StaticBool(false),
				MarkdownDescription: "`global` and `local` only: after `deactivate` is confirmed, `delete` the profile from the device.",
			},
			"deletion_protection": schema.BoolAttribute{
				Optional: true, Computed: true, Default: booldefault.StaticBool(false),
				MarkdownDescription: "Refuse to destroy (deactivate) this profile. To stop managing a device without " +
					"deactivating it, use a `removed` block with `lifecycle { destroy = false }`.",
			},
			"timeouts": timeouts.Attributes(ctx, timeouts.Opts{Create: true, Update: true, Delete: true,
				CreateDescription: "Default 30m (60m for `global`).", UpdateDescription: "Default 30m.", DeleteDescription: "Default 30m."}),
			"state":          schema.StringAttribute{Computed: true, PlanModifiers: keep, MarkdownDescription: "Service state from the last read: `active`, `suspended`, ..."},
			"profile_status": schema.StringAttribute{Computed: true, PlanModifiers: keep, MarkdownDescription: "Profile status from the last callback (the device list does not show it)."},
			"profile_role":   schema.StringAttribute{Computed: true, PlanModifiers: keep, MarkdownDescription: "Profile role (`LEAD`, `LOCAL`) from the last callback."},
			"mdn":            schema.StringAttribute{Computed: true, PlanModifiers: keep, MarkdownDescription: "The line's MDN."},
			"msisdn":         schema.StringAttribute{Computed: true, PlanModifiers: keep, MarkdownDescription: "The line's MSISDN."},
			"last_request_id": schema.StringAttribute{Computed: true, PlanModifiers: keep,
				MarkdownDescription: "Request id of the last action sent for the device (see the `thingspace_request` data source)."},
		},
	}
}

func (r *esimProfileResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.cfg = configFrom(req.ProviderData, &resp.Diagnostics)
}

func (r *esimProfileResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m esimProfileModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() || m.ProfileType.IsUnknown() {
		return
	}
	pt := m.ProfileType.ValueString()
	if pt == "" {
		pt = profileVerizonUS
	}
	known := func(v types.String) bool { return !v.IsNull() && !v.IsUnknown() }
	if pt == profileGlobal && m.GlobalServicePlan.IsNull() {
		resp.Diagnostics.AddAttributeError(path.Root("global_service_plan"), "Missing global_service_plan",
			"A `global` profile is activated with the US `service_plan`, then downloaded with `global_service_plan`: set it.")
	}
	if pt != profileGlobal && known(m.GlobalServicePlan) {
		resp.Diagnostics.AddAttributeError(path.Root("global_service_plan"), "global_service_plan needs profile_type = \"global\"",
			fmt.Sprintf("`global_service_plan` is used only by `global` profiles; this one is %q.", pt))
	}
	if pt == profileLocal && m.SmsrOid.IsNull() {
		resp.Diagnostics.AddAttributeError(path.Root("smsr_oid"), "Missing smsr_oid",
			"A `local` profile is downloaded through the SM-SR system: set `smsr_oid` (e.g. \"1.3.6.1.4.1.31746.1.500.200.101.5\").")
	}
	if known(m.SmsrOid) && !smsrOidRE.MatchString(m.SmsrOid.ValueString()) {
		resp.Diagnostics.AddAttributeError(path.Root("smsr_oid"), "Invalid smsr_oid",
			fmt.Sprintf("%q is not an object id: use digits and dots, 3 to 46 characters.", m.SmsrOid.ValueString()))
	}
	if !m.Download.IsNull() && !m.Download.IsUnknown() && !m.Download.ValueBool() && pt != profileGlobal {
		resp.Diagnostics.AddAttributeError(path.Root("download"), "download = false needs profile_type = \"global\"",
			"Only `global` profiles have a separate download step; `local` profiles always download, `verizon_us` profiles never do.")
	}
	if !m.DeleteProfile.IsNull() && m.DeleteProfile.ValueBool() && pt == profileVerizonUS {
		resp.Diagnostics.AddAttributeError(path.Root("delete_profile"), "delete_profile is for global and local profiles",
			"ThingSpace cannot delete a Verizon US profile; it is deactivated on destroy.")
	}
	if known(m.MdnZipCode) && !zipRE.MatchString(m.MdnZipCode.ValueString()) {
		resp.Diagnostics.AddAttributeError(path.Root("mdn_zip_code"), "Invalid mdn_zip_code",
			fmt.Sprintf("%q is not a 5-digit ZIP code.", m.MdnZipCode.ValueString()))
	}
}

func (r *esimProfileResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		// Destroy: refuse early, at plan time, when the profile is protected.
		var st esimProfileModel
		resp.Diagnostics.Append(req.State.Get(ctx, &st)...)
		if !resp.Diagnostics.HasError() && st.DeletionProtection.ValueBool() {
			resp.Diagnostics.AddError("Deletion protection is on",
				fmt.Sprintf("thingspace_esim_profile for EID %s has deletion_protection = true: destroying it would deactivate the line. "+
					"Set deletion_protection = false first, or stop managing it without deactivating it with a `removed` block "+
					"and `lifecycle { destroy = false }`.", st.EID.ValueString()))
		}
		return
	}
	if r.cfg == nil {
		return
	}
	var plan, state esimProfileModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if !req.State.Raw.IsNull() {
		resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	}
	if resp.Diagnostics.HasError() {
		return
	}
	// The account: configured, else kept from state, else the provider's default, known at plan.
	if plan.AccountName.IsUnknown() {
		if !req.State.Raw.IsNull() && !state.AccountName.IsNull() {
			plan.AccountName = state.AccountName
		} else if r.cfg.AccountName != "" {
			plan.AccountName = types.StringValue(r.cfg.AccountName)
		}
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("account_name"), plan.AccountName)...)
	}
	account := plan.AccountName.ValueString()
	if !plan.EID.IsUnknown() {
		fp := "esim_profile|" + plan.EID.ValueString() + "|" + plan.ServicePlan.ValueString() + "|" + plan.ProfileType.ValueString()
		if err := r.cfg.claims.claim(plan.EID.ValueString(), "thingspace_esim_profile", fp); err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("eid"), "Device claimed twice", err.Error())
		}
	}
	if account != "" && !plan.AccountName.IsUnknown() {
		for _, p := range []struct {
			attr string
			v    types.String
		}{{"service_plan", plan.ServicePlan}, {"global_service_plan", plan.GlobalServicePlan}} {
			if p.v.IsNull() || p.v.IsUnknown() {
				continue
			}
			if err := r.cfg.checkServicePlan(ctx, account, p.v.ValueString()); err != nil {
				resp.Diagnostics.AddAttributeError(path.Root(p.attr), "Unknown service plan", err.Error())
			}
		}
	}
	if !req.State.Raw.IsNull() && carrierChange(&plan, &state) {
		// The update sends actions: their request id, the callback facts and the state change.
		for _, a := range []string{"last_request_id", "profile_status", "profile_role", "state"} {
			resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root(a), types.StringUnknown())...)
		}
	}
	if !req.State.Raw.IsNull() && state.Enabled.ValueBool() && !plan.Enabled.IsUnknown() && !plan.Enabled.ValueBool() &&
		plan.ProfileType.ValueString() != profileLocal {
		resp.Diagnostics.AddAttributeError(path.Root("enabled"), "Cannot disable this profile in place",
			"ThingSpace disables a Verizon US or Global profile only by enabling another one. Only `local` profiles can go "+
				"from enabled = true to false (`disable`).")
	}
}

// carrierChange reports whether going from state to plan sends anything to ThingSpace.
func carrierChange(plan, state *esimProfileModel) bool {
	return !plan.ServicePlan.Equal(state.ServicePlan) || !plan.GlobalServicePlan.Equal(state.GlobalServicePlan) ||
		!plan.Enabled.Equal(state.Enabled) || !plan.Suspended.Equal(state.Suspended) || !plan.Download.Equal(state.Download)
}

// timeout resolves one of the timeouts with its default.
func (m *esimProfileModel) timeout(ctx context.Context, op string) (time.Duration, diag.Diagnostics) {
	switch op {
	case "create":
		def := defaultCreateTimeout
		if m.ProfileType.ValueString() == profileGlobal {
			def = defaultCreateTimeoutGlobal
		}
		return m.Timeouts.Create(ctx, def)
	case "update":
		return m.Timeouts.Update(ctx, defaultUpdateTimeout)
	default:
		return m.Timeouts.Delete(ctx, defaultDeleteTimeout)
	}
}

func (r *esimProfileResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan esimProfileModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	d, diags := plan.timeout(ctx, "create")
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()

	account, err := r.cfg.accountOr(plan.AccountName)
	if err != nil {
		resp.Diagnostics.AddError("No ThingSpace account", err.Error())
		return
	}
	plan.AccountName = types.StringValue(account)
	plan.ID = plan.EID
	eid := plan.EID.ValueString()
	ctx = tflog.SetField(ctx, "eid", eid)

	// Announce the coming action before the registration check, which serialises the first
	// calls of a run: instances waiting there are counted, so the batch waits for them.
	part := r.cfg.Coalescer.Begin()
	defer part.Done()
	if err := r.cfg.ensureRegistration(ctx, account); err != nil {
		addPreflightError(&resp.Diagnostics, "The callback registration does not point at the relay", err)
		return
	}

	if err := r.cfg.awaitOpenRequests(ctx, account, plan.deviceIDs()); err != nil {
		addPreflightError(&resp.Diagnostics, "A request for the device is still open", err)
		return
	}
	dev, err := r.cfg.awaitSettled(ctx, account, thingspace.DeviceID{Kind: thingspace.KindEID, ID: eid})
	if err != nil {
		if thingspace.IsDeviceNotFound(err) {
			resp.Diagnostics.AddAttributeError(path.Root("eid"), "Device not found",
				fmt.Sprintf("EID %s is not a device of account %s. Check the EID and account_name.", eid, account))
			return
		}
		resp.Diagnostics.AddError("Cannot read the device", err.Error())
		return
	}
	facts := flattenDevice(*dev)
	if plan.ICCID.IsUnknown() || plan.ICCID.IsNull() {
		plan.ICCID = types.StringValue(facts.ICCID)
	}
	if plan.IMEI.IsUnknown() || plan.IMEI.IsNull() {
		plan.IMEI = types.StringValue(facts.IMEI)
	}
	plan.LastRequestID = types.StringValue("")
	plan.ProfileStatus = types.StringValue("")
	plan.ProfileRole = types.StringValue("")
	op := &profileOp{r: r, account: account, m: &plan, part: part,
		startState: stateOfDevice(*dev, &plan), startPlan: dev.ServicePlan()}

	switch thingspace.NormalizeState(facts.State) {
	case thingspace.StatePreActive, thingspace.StateDeactive:
		err = op.activateAll(ctx)
	case thingspace.StateActive:
		if facts.ServicePlan != plan.ServicePlan.ValueString() {
			if !plan.AdoptExisting.ValueBool() {
				resp.Diagnostics.AddAttributeError(path.Root("service_plan"), "Device already active on another plan",
					fmt.Sprintf("EID %s is already active in account %s on plan %q, not %q. Nothing was sent. To manage it as it is, "+
						"import it:\n\nimport {\n  to = thingspace_esim_profile.<name>\n  id = %q\n}\n\nor set adopt_existing = true "+
						"to adopt it and change its plan to %q.", eid, account, facts.ServicePlan, plan.ServicePlan.ValueString(),
						eid, plan.ServicePlan.ValueString()))
				return
			}
			tflog.Info(ctx, "adopting an active device and changing its plan (adopt_existing)", map[string]any{"from": facts.ServicePlan})
			err = op.changePlan(ctx, plan.ServicePlan.ValueString(), true)
		} else {
			tflog.Info(ctx, "the device is already active on the plan: adopting it without a request")
		}
		if g, ok := globalLine(*dev); err == nil && ok && plan.ProfileType.ValueString() == profileGlobal &&
			g.ServicePlan != plan.GlobalServicePlan.ValueString() {
			if !plan.AdoptExisting.ValueBool() {
				resp.Diagnostics.AddAttributeError(path.Root("global_service_plan"), "Global profile already active on another plan",
					fmt.Sprintf("EID %s already has a Global profile in account %s on plan %q, not %q. Nothing was sent. To manage it as "+
						"it is, import it:\n\nimport {\n  to = thingspace_esim_profile.<name>\n  id = %q\n}\n\nor set adopt_existing = true "+
						"to adopt it and change its Global plan.", eid, account, g.ServicePlan, plan.GlobalServicePlan.ValueString(), eid))
				return
			}
			err = op.changeGlobalPlan(ctx, dev, plan.GlobalServicePlan.ValueString())
		}
		if err == nil {
			err = op.completeAdoption(ctx, *dev)
		}
		if err == nil && plan.Suspended.ValueBool() {
			err = op.suspend(ctx)
		}
	case thingspace.StateSuspended:
		tflog.Info(ctx, "the device is suspended: adopting it")
		if !plan.Suspended.ValueBool() {
			err = op.resume(ctx, *dev)
			if err == nil {
				err = op.completeAdoption(ctx, *dev)
			}
		}
	default:
		resp.Diagnostics.AddError("Device in an unexpected state",
			fmt.Sprintf("EID %s is in state %q; the provider acts only on pre-active, active, suspended or deactive devices. Nothing was sent.", eid, facts.State))
		return
	}
	if err != nil {
		r.failCreate(ctx, op, err, resp)
		return
	}
	// Success is confirmed before state is written.
	if err := op.refresh(ctx); err != nil {
		resp.Diagnostics.AddError("Cannot read the device after creating the profile", err.Error())
		setPrivateConfirmed(ctx, resp.Private, false)
		plan.markUnconfirmed()
		resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
		return
	}
	setPrivateConfirmed(ctx, resp.Private, true)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// failCreate reports a failed Create. When nothing changed at the carrier (the device reads as
// before), no state is returned. When an action was accepted (its outcome pending, or a later
// step failed), the state with the request id is returned with create_confirmed = false:
// Terraform taints the instance, its Delete sends no carrier action, and the replacement
// Create adopts the device. The net effect of "time out, apply again" is no extra action.
func (r *esimProfileResource) failCreate(ctx context.Context, op *profileOp, err error, resp *resource.CreateResponse) {
	if !op.changed && !isPending(err) && op.m.LastRequestID.ValueString() == "" {
		resp.Diagnostics.AddError("Cannot create the eSIM profile", err.Error())
		return
	}
	if !op.changed && !isPending(err) {
		// A failure callback: check that the device is unchanged before dropping it.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), confirmTimeout)
		defer cancel()
		if dev, rerr := r.cfg.Client.GetDevice(withLogger(rctx), op.account, op.eidID()); rerr == nil &&
			stateOfDevice(*dev, op.m) == op.startState && dev.ServicePlan() == op.startPlan {
			resp.Diagnostics.AddError("Cannot create the eSIM profile", err.Error()+"\nThe device is unchanged; nothing is stored in state.")
			return
		}
	}
	msg := err.Error()
	if isPending(err) {
		msg += fmt.Sprintf("\n\nThingSpace accepted the request (last request id %s) and may still complete it. The instance is "+
			"saved as tainted: the next apply waits for that request instead of sending it again, sends no deactivation for "+
			"it, and adopts the device.", op.m.LastRequestID.ValueString())
	}
	resp.Diagnostics.AddError("The eSIM profile was not confirmed", msg)
	setPrivateConfirmed(ctx, resp.Private, false)
	op.m.markUnconfirmed()
	resp.Diagnostics.Append(resp.State.Set(ctx, op.m)...)
}

func (r *esimProfileResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m esimProfileModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	account := m.AccountName.ValueString()
	if account == "" {
		a, err := r.cfg.accountOr(m.AccountName)
		if err != nil {
			resp.Diagnostics.AddError("No ThingSpace account", err.Error())
			return
		}
		account = a
		m.AccountName = types.StringValue(a)
	}
	dev, err := r.cfg.Client.GetDevice(withLogger(ctx), account, thingspace.DeviceID{Kind: thingspace.KindEID, ID: m.EID.ValueString()})
	if thingspace.IsDeviceNotFound(err) {
		tflog.Warn(ctx, "the device is no longer in the account; removing it from state", map[string]any{"eid": m.EID.ValueString()})
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Cannot read the device", err.Error())
		return
	}
	if thingspace.NormalizeState(flattenDevice(*dev).State) == thingspace.StateDeactive {
		// Deactivated outside Terraform: the next plan shows a create (a reactivation).
		tflog.Warn(ctx, "the device was deactivated outside Terraform; removing it from state", map[string]any{"eid": m.EID.ValueString()})
		resp.State.RemoveResource(ctx)
		return
	}
	flatten(*dev, &m)
	if confirmed, ok := privateConfirmed(ctx, req.Private); ok && !confirmed {
		// Keep the unconfirmed-create marker for Delete (see unconfirmedCreate).
		m.State = types.StringNull()
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *esimProfileResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state esimProfileModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	d, diags := plan.timeout(ctx, "update")
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	account := state.AccountName.ValueString()
	plan.AccountName = state.AccountName
	plan.ID = state.ID
	ctx = tflog.SetField(ctx, "eid", plan.EID.ValueString())
	// Carry computed values forward; actions below replace them.
	for _, p := range []struct{ dst, src *types.String }{
		{&plan.ProfileStatus, &state.ProfileStatus}, {&plan.ProfileRole, &state.ProfileRole},
		{&plan.LastRequestID, &state.LastRequestID}, {&plan.MDN, &state.MDN}, {&plan.MSISDN, &state.MSISDN},
		{&plan.State, &state.State},
	} {
		if p.dst.IsUnknown() {
			*p.dst = *p.src
		}
	}
	if plan.ICCID.IsUnknown() {
		plan.ICCID = state.ICCID
	}
	if plan.IMEI.IsUnknown() {
		plan.IMEI = state.IMEI
	}
	if !carrierChange(&plan, &state) {
		// Only local settings changed (imei, etf_waiver, reason_code, deletion_protection, ...).
		resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
		return
	}
	// Announce the coming action before the registration check, which serialises the first
	// calls of a run: instances waiting there are counted, so the batch waits for them.
	part := r.cfg.Coalescer.Begin()
	defer part.Done()
	if err := r.cfg.ensureRegistration(ctx, account); err != nil {
		addPreflightError(&resp.Diagnostics, "The callback registration does not point at the relay", err)
		return
	}
	if err := r.cfg.awaitOpenRequests(ctx, account, plan.deviceIDs()); err != nil {
		addPreflightError(&resp.Diagnostics, "A request for the device is still open", err)
		return
	}
	dev, err := r.cfg.awaitSettled(ctx, account, thingspace.DeviceID{Kind: thingspace.KindEID, ID: plan.EID.ValueString()})
	if err != nil {
		resp.Diagnostics.AddError("Cannot read the device", err.Error())
		return
	}
	op := &profileOp{r: r, account: account, m: &plan, part: part}
	err = op.update(ctx, *dev, &state)
	if err == nil {
		err = op.refresh(ctx)
	}
	if err != nil {
		resp.Diagnostics.AddError("Cannot update the eSIM profile", err.Error())
		// Keep the prior state but remember the request; the next refresh reads the truth.
		state.LastRequestID = plan.LastRequestID
		resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *esimProfileResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var m esimProfileModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	eid := m.EID.ValueString()
	if m.DeletionProtection.ValueBool() {
		resp.Diagnostics.AddError("Deletion protection is on",
			fmt.Sprintf("EID %s has deletion_protection = true; nothing was sent. Set it to false first.", eid))
		return
	}
	d, diags := m.timeout(ctx, "delete")
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	ctx = tflog.SetField(ctx, "eid", eid)
	account := m.AccountName.ValueString()
	op := &profileOp{r: r, account: account, m: &m}

	if unconfirmedCreate(ctx, req.Private, &m) {
		// A Create that was not confirmed: resolve its request and send no carrier action.
		r.deleteUnconfirmed(ctx, op, resp)
		return
	}
	// Announce the coming deactivate before the pre-checks, as Create and Update do, so that
	// the deactivates of many instances destroyed together wait for each other.
	op.part = r.cfg.Coalescer.Begin()
	defer op.part.Done()
	if err := r.cfg.ensureRegistration(ctx, account); err != nil {
		addPreflightError(&resp.Diagnostics, "The callback registration does not point at the relay", err)
		return
	}
	if err := r.cfg.awaitOpenRequests(ctx, account, m.deviceIDs()); err != nil {
		addPreflightError(&resp.Diagnostics, "A request for the device is still open", err)
		return
	}
	dev, err := r.cfg.awaitSettled(ctx, account, op.eidID())
	if thingspace.IsDeviceNotFound(err) {
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Cannot read the device", err.Error())
		return
	}
	if thingspace.NormalizeState(flattenDevice(*dev).State) == thingspace.StateDeactive {
		tflog.Info(ctx, "the device is already deactive; nothing to send")
	} else if err := op.deactivate(ctx); err != nil {
		resp.Diagnostics.AddError("Cannot deactivate the eSIM profile", err.Error())
		return
	}
	if m.DeleteProfile.ValueBool() {
		// The device as read before the deactivation: the profile's own ICCID is still listed.
		if err := op.deleteProfile(ctx, dev); err != nil {
			resp.Diagnostics.AddError("The profile was deactivated but not deleted", err.Error())
			return
		}
	}
}

// deleteUnconfirmed ends an instance whose Create was not confirmed (tainted): it waits for the
// pending request and sends nothing to ThingSpace.
func (r *esimProfileResource) deleteUnconfirmed(ctx context.Context, op *profileOp, resp *resource.DeleteResponse) {
	rid := op.m.LastRequestID.ValueString()
	eid := op.m.EID.ValueString()
	if rid == "" {
		return
	}
	tflog.Info(ctx, "the create of this instance was not confirmed: resolving its request; no carrier action is sent",
		map[string]any{"request_id": rid})
	out, err := r.cfg.waitDevices(ctx, []waitTarget{op.target(rid, "")}, "unconfirmed create")
	if err != nil {
		resp.Diagnostics.AddError("The unconfirmed request is still pending",
			fmt.Sprintf("%v\n\nNo carrier action was sent. Apply again later: the instance stays in state until request %s resolves.", err, rid))
		return
	}
	if out[0].Status == thingspace.StatusSucceeded {
		resp.Diagnostics.AddWarning("The device stays active",
			fmt.Sprintf("Request %s for EID %s succeeded after the earlier apply gave up. This tainted instance is removed "+
				"without deactivating the device: the replacement adopts it.", rid, eid))
	}
}

func (r *esimProfileResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	eid, iccid, _ := strings.Cut(req.ID, "/")
	if err := ids.ValidateEID(eid, false); err != nil {
		resp.Diagnostics.AddError("Invalid import ID", fmt.Sprintf("Expected \"EID\" or \"EID/ICCID\": %v", err))
		return
	}
	if iccid != "" {
		if err := ids.ValidateICCID(iccid); err != nil {
			resp.Diagnostics.AddError("Invalid import ID", fmt.Sprintf("Expected \"EID\" or \"EID/ICCID\": %v", err))
			return
		}
		resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("iccid"), iccid)...)
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), eid)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("eid"), eid)...)
	setPrivateConfirmed(ctx, resp.Private, true)
}

// ---- helpers ----

// deviceIDs is every identifier known for the device.
func (m *esimProfileModel) deviceIDs() thingspace.DeviceIDs {
	ids := thingspace.DeviceIDs{{Kind: thingspace.KindEID, ID: m.EID.ValueString()}}
	for _, x := range []struct {
		kind string
		v    types.String
	}{{thingspace.KindICCID, m.ICCID}, {thingspace.KindIMEI, m.IMEI}, {thingspace.KindMDN, m.MDN}} {
		if !x.v.IsNull() && !x.v.IsUnknown() && x.v.ValueString() != "" {
			ids = append(ids, thingspace.DeviceID{Kind: x.kind, ID: x.v.ValueString()})
		}
	}
	return ids
}

// flatten maps a v1 device onto the model; shared by Read, Import and Create/Update's final
// read. Activation-time inputs (mdn_zip_code, primary_place_of_use, smsr_oid) and the callback
// facts (profile_status, profile_role) are kept: the v1 list does not have them.
func flatten(d thingspace.Device, m *esimProfileModel) {
	f := flattenDevice(d)
	m.ID = types.StringValue(f.EID)
	m.EID = types.StringValue(f.EID)
	if m.ICCID.IsNull() || m.ICCID.IsUnknown() || m.ICCID.ValueString() == "" {
		m.ICCID = types.StringValue(f.ICCID)
	}
	if m.IMEI.IsNull() || m.IMEI.IsUnknown() || m.IMEI.ValueString() == "" {
		m.IMEI = types.StringValue(f.IMEI)
	}
	m.AccountName = types.StringValue(d.AccountName)
	m.MDN = types.StringValue(f.MDN)
	m.MSISDN = types.StringValue(f.MSISDN)
	m.ServicePlan = types.StringValue(f.ServicePlan)
	if m.ProfileType.IsNull() || m.ProfileType.IsUnknown() {
		// Import: the profile type is the one the device has (a local profile too, or the
		// imported instance of a `local` configuration would be planned for replacement).
		m.ProfileType = types.StringValue(profileVerizonUS)
		if _, ok := globalLine(d); ok {
			m.ProfileType = types.StringValue(profileGlobal)
		} else if _, ok := localLine(d); ok {
			m.ProfileType = types.StringValue(profileLocal)
		}
	}
	state := thingspace.NormalizeState(f.State)
	if m.ProfileType.ValueString() == profileGlobal {
		if g, ok := globalLine(d); ok {
			m.GlobalServicePlan = types.StringValue(g.ServicePlan)
			if gs := thingspace.NormalizeState(g.State); gs == thingspace.StateSuspended {
				state = gs
			}
		}
	}
	m.State = types.StringValue(string(state))
	m.Suspended = types.BoolValue(state == thingspace.StateSuspended)
	for _, b := range []*types.Bool{&m.Download, &m.Enabled} {
		if b.IsNull() || b.IsUnknown() {
			*b = types.BoolValue(true)
		}
	}
	for _, b := range []*types.Bool{&m.AdoptExisting, &m.EtfWaiver, &m.DeleteProfile, &m.DeletionProtection} {
		if b.IsNull() || b.IsUnknown() {
			*b = types.BoolValue(false)
		}
	}
	if m.ReasonCode.IsNull() || m.ReasonCode.IsUnknown() {
		m.ReasonCode = types.StringValue("FF")
	}
	for _, s := range []*types.String{&m.ProfileStatus, &m.ProfileRole, &m.LastRequestID} {
		if s.IsNull() || s.IsUnknown() {
			*s = types.StringValue("")
		}
	}
	if m.Timeouts.IsNull() || m.Timeouts.IsUnknown() {
		m.Timeouts = timeouts.Value{Object: types.ObjectNull(m.Timeouts.Object.AttributeTypes(context.Background()))}
	}
}

// globalLine returns the carrier information of the device's Global profile, if it has one.
func globalLine(d thingspace.Device) (thingspace.CarrierInformation, bool) {
	for i, ci := range d.CarrierInformations {
		if i > 0 && strings.Contains(strings.ToLower(ci.CarrierName), "global") {
			return ci, true
		}
	}
	return thingspace.CarrierInformation{}, false
}

// localLine returns the carrier information of the device's local (SM-SR) profile, if it has
// one: a carrier line after the Verizon one that is not the Global profile's.
func localLine(d thingspace.Device) (thingspace.CarrierInformation, bool) {
	for i, ci := range d.CarrierInformations {
		if i > 0 && !strings.Contains(strings.ToLower(ci.CarrierName), "global") {
			return ci, true
		}
	}
	return thingspace.CarrierInformation{}, false
}

// profileICCID is the own ICCID of the device's Global (profileType global) or local profile,
// or "" when the device shows no such profile. The v1 list gives a carrier line per profile
// (the lead first) and the device's ICCIDs, but documents no link between the two; the
// simulator, and the examples we have, list one ICCID per carrier line in the same order, the
// lead's first. That pairing is trusted only when the counts agree: otherwise the profile's
// ICCID cannot be told apart from another profile's, and acting on a guess could suspend or
// delete the wrong profile, so it is an error and nothing is sent.
func profileICCID(d thingspace.Device, profileType string) (string, error) {
	line := -1
	for i, ci := range d.CarrierInformations {
		if i == 0 {
			continue
		}
		global := strings.Contains(strings.ToLower(ci.CarrierName), "global")
		if (profileType == profileGlobal && global) || (profileType == profileLocal && !global) {
			line = i
			break
		}
	}
	if line < 0 {
		return "", nil
	}
	var iccids []string
	for _, id := range d.DeviceIDs {
		if thingspace.NormalizeKind(id.Kind) == thingspace.KindICCID {
			iccids = append(iccids, id.ID)
		}
	}
	if len(iccids) != len(d.CarrierInformations) {
		return "", fmt.Errorf("cannot tell the ICCID of the device's %s profile: ThingSpace lists %d ICCIDs for %d carrier lines "+
			"(one per profile was expected), so no action was sent to a profile that might be another one", profileType,
			len(iccids), len(d.CarrierInformations))
	}
	return iccids[line], nil
}

// stateOfDevice is the state that matters for the model's profile type.
func stateOfDevice(d thingspace.Device, m *esimProfileModel) thingspace.DeviceState {
	s := thingspace.NormalizeState(flattenDevice(d).State)
	if m.ProfileType.ValueString() == profileGlobal {
		if g, ok := globalLine(d); ok && thingspace.NormalizeState(g.State) == thingspace.StateSuspended {
			return thingspace.StateSuspended
		}
	}
	return s
}

// Private state: whether Create was confirmed.
const privateCreateKey = "create"

type privateSetter interface {
	SetKey(ctx context.Context, key string, value []byte) diag.Diagnostics
}

type privateGetter interface {
	GetKey(ctx context.Context, key string) ([]byte, diag.Diagnostics)
}

func setPrivateConfirmed(ctx context.Context, p privateSetter, confirmed bool) {
	b, _ := json.Marshal(map[string]bool{"confirmed": confirmed})
	_ = p.SetKey(ctx, privateCreateKey, b)
}

// privateConfirmed returns the recorded confirmation; ok is false when none was recorded.
func privateConfirmed(ctx context.Context, p privateGetter) (confirmed, ok bool) {
	b, diags := p.GetKey(ctx, privateCreateKey)
	if diags.HasError() || len(b) == 0 {
		return false, false
	}
	var v map[string]bool
	if err := json.Unmarshal(b, &v); err != nil {
		return false, false
	}
	c, ok := v["confirmed"]
	return c, ok
}

// markUnconfirmed prepares the state of an unconfirmed Create. A null state is the marker in
// the state value itself: Terraform does not hand a tainted object's private state to the plan
// of its replacement, so the Delete of the tainted instance cannot see create_confirmed =
// false (see unconfirmedCreate). Values only a read fills in are still unknown, and Terraform
// refuses unknown values after apply ("Provider returned invalid result object").
func (m *esimProfileModel) markUnconfirmed() {
	m.State = types.StringNull()
	for _, v := range []*types.String{&m.MDN, &m.MSISDN} {
		if v.IsUnknown() {
			*v = types.StringNull()
		}
	}
}

// unconfirmedCreate reports whether the instance being deleted comes from a Create that was
// not confirmed. Private state says so while it reaches Delete, but Terraform plans the
// replacement of a tainted object as a create from nothing and drops its private state, so the
// Delete of a tainted instance gets none: there, the null `state` that failCreate writes (and
// Read keeps) is the marker. A confirmed or imported instance always has a state read from
// ThingSpace, so one tainted by `terraform taint` is still deactivated.
func unconfirmedCreate(ctx context.Context, p privateGetter, m *esimProfileModel) bool {
	if confirmed, ok := privateConfirmed(ctx, p); ok {
		return !confirmed
	}
	return m.State.IsNull()
}

var errUnconfirmed = errors.New("the result could not be confirmed by reading the device")

// waitTarget is one device of one request to wait for.
type waitTarget = wait.Target

// profileOp runs the carrier actions of one Create, Update or Delete, each confirmed before
// the model is changed.
type profileOp struct {
	r       *esimProfileResource
	account string
	m       *esimProfileModel
	// part is the coalescer announcement of the operation's first action.
	part *thingspace.Participant
	// changed: an action of this operation succeeded, so the device is no longer as it was.
	changed bool
	// startState and startPlan are the device as Create found it: a failure that leaves it so
	// writes no state.
	startState thingspace.DeviceState
	startPlan  string
}

func (op *profileOp) eidID() thingspace.DeviceID {
	return thingspace.DeviceID{Kind: thingspace.KindEID, ID: op.m.EID.ValueString()}
}

func (op *profileOp) target(rid string, action thingspace.Action) waitTarget {
	return waitTarget{Account: op.account, RequestID: rid, Action: action, Device: op.m.deviceIDs()}
}

// entry builds the device entry of a request with the given identifier kinds.
func (op *profileOp) entry(kinds ...string) []thingspace.DeviceEntry {
	all := op.m.deviceIDs()
	var ids thingspace.DeviceIDs
	for _, k := range kinds {
		if v := all.Get(k); v != "" {
			ids = append(ids, thingspace.DeviceID{Kind: k, ID: v})
		}
	}
	return thingspace.Devices(ids)
}

// run sends one action for the device and waits for its outcome; a failure callback is an
// *errFailed. The request id goes into the model as soon as ThingSpace accepts it.
func (op *profileOp) run(ctx context.Context, action thingspace.Action, body thingspace.ProfileRequest) (thingspace.DeviceOutcome, error) {
	p := op.part
	op.part = nil
	body.AccountName = op.account
	device := op.m.deviceIDs()
	for _, e := range body.Devices {
		// A Global or local profile's own ICCID is not in the model: its callback matches it.
		for _, id := range e.DeviceIDs {
			if !slices.ContainsFunc(device, func(x thingspace.DeviceID) bool { return strings.EqualFold(x.Kind, id.Kind) && x.ID == id.ID }) {
				device = append(device, id)
			}
		}
	}
	res, err := op.r.cfg.act(ctx, p, action, body, device, func(rid string) {
		op.m.LastRequestID = types.StringValue(rid)
	})
	if err != nil {
		return res.Outcome, err
	}
	if res.Outcome.Status == thingspace.StatusFailed {
		return res.Outcome, &errFailed{action: action, device: device, req: res.RequestID, cbErr: res.Outcome.Err}
	}
	if cb := res.Outcome.Callback; cb != nil {
		if prof := cb.Profile(); prof != nil {
			if prof.ProfileStatus != "" {
				op.m.ProfileStatus = types.StringValue(string(thingspace.NormalizeProfileStatus(prof.ProfileStatus)))
			}
			if prof.ProfileRole != "" {
				op.m.ProfileRole = types.StringValue(strings.ToUpper(prof.ProfileRole))
			}
		}
	}
	return res.Outcome, nil
}

// profileEntry is the device entry of an action on the downloaded Global or local profile
// itself (suspend, resume, its plan, enable, disable, delete). ThingSpace finds that profile by
// its own ICCID (seed 004: "based on ICCID and contracted service plan"), not by the lead
// profile's ICCID that `iccid` holds; the lead ICCID is sent only when the device, as read,
// does not show the profile's own (nothing is downloaded yet). dev is the device as last read.
func (op *profileOp) profileEntry(dev *thingspace.Device, kinds ...string) ([]thingspace.DeviceEntry, error) {
	entry := op.entry(kinds...)
	if dev == nil {
		return entry, nil
	}
	iccid, err := profileICCID(*dev, op.m.ProfileType.ValueString())
	if err != nil {
		return nil, fmt.Errorf("EID %s: %w", op.m.EID.ValueString(), err)
	}
	if iccid != "" {
		for i, id := range entry[0].DeviceIDs {
			if id.Kind == thingspace.KindICCID {
				entry[0].DeviceIDs[i].ID = iccid
			}
		}
	}
	return entry, nil
}

// confirmRead reads the device until check accepts it (a few tries: the read may lag the
// callback by a moment), so that a stray or forged callback can never make state lie.
func (op *profileOp) confirmRead(ctx context.Context, what string, check func(thingspace.Device) bool) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), confirmTimeout)
	defer cancel()
	var last thingspace.Device
	for attempt := 0; attempt < 5; attempt++ {
		d, err := op.r.cfg.Client.GetDevice(withLogger(rctx), op.account, op.eidID())
		if err == nil {
			if check(*d) {
				return nil
			}
			last = *d
		}
		if sleepErr := sleepCtx(rctx, time.Duration(attempt+1)*500*time.Millisecond); sleepErr != nil {
			break
		}
	}
	f := flattenDevice(last)
	return fmt.Errorf("%w: ThingSpace reported success (request %s), but the device reads as state %q, plan %q instead of %s",
		errUnconfirmed, op.m.LastRequestID.ValueString(), f.State, f.ServicePlan, what)
}

// confirmStatus checks the device's entry of the v2 request status: the only confirmation of
// download and enable steps, which the v1 device list cannot see.
func (op *profileOp) confirmStatus(ctx context.Context, rid string) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), confirmTimeout)
	defer cancel()
	var last string
	for attempt := 0; attempt < 5; attempt++ {
		st, err := op.r.cfg.Client.RequestStatus(withLogger(rctx), op.account, rid)
		if err == nil {
			for _, sub := range st.SubRequests {
				if sub.IDs.Matches(op.m.deviceIDs()) {
					last = sub.Status
					if thingspace.NormalizeStatus(sub.Status) == thingspace.StatusSucceeded {
						return nil
					}
				}
			}
		}
		if sleepErr := sleepCtx(rctx, time.Duration(attempt+1)*500*time.Millisecond); sleepErr != nil {
			break
		}
	}
	return fmt.Errorf("%w: ThingSpace's request status for %s shows %q for the device, not Success", errUnconfirmed, rid, last)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// activateAll runs Create's actions for a pre-active or deactive device, per profile type.
func (op *profileOp) activateAll(ctx context.Context) error {
	m := op.m
	body := thingspace.ActivateRequest{
		Devices: op.entry(thingspace.KindEID, thingspace.KindICCID, thingspace.KindIMEI), ServicePlan: m.ServicePlan.ValueString(),
		MdnZipCode: m.MdnZipCode.ValueString(), PrimaryPlaceOfUse: m.PrimaryPlaceOfUse.wire(),
	}.Body()
	if _, err := op.run(ctx, thingspace.ActionActivate, body); err != nil {
		return err
	}
	plan := m.ServicePlan.ValueString()
	var after thingspace.Device
	if err := op.confirmRead(ctx, "active on "+plan, func(d thingspace.Device) bool {
		after = d
		return thingspace.NormalizeState(flattenDevice(d).State) == thingspace.StateActive && d.ServicePlan() == plan
	}); err != nil {
		return err
	}
	op.changed = true
	switch m.ProfileType.ValueString() {
	case profileGlobal:
		_, downloaded := globalLine(after)
		switch {
		case !m.Download.ValueBool():
			// Staged: the Global profile is left as it is.
		case downloaded:
			// A reactivated line whose Global profile was never deleted: it is still on the
			// device, and ThingSpace refuses a second download (Profile.AlreadyDownloaded).
			if err := op.reactivateGlobal(ctx, &after); err != nil {
				return err
			}
		default:
			if err := op.download(ctx); err != nil {
				return err
			}
		}
	case profileLocal:
		if err := op.downloadLocal(ctx); err != nil {
			return err
		}
	}
	if m.Suspended.ValueBool() {
		return op.suspend(ctx)
	}
	return nil
}

// reactivateGlobal brings a Global profile that is still on a reactivated line (destroyed
// without delete_profile) to the configuration: ThingSpace refuses to download it again
// (Profile.AlreadyDownloaded), and its deactivation outlives the line's reactivation. It is
// activated by its own ICCID with global_service_plan (or only moved to that plan if it is
// active), then enabled when `enabled` is true; after the line's activate the lead profile is
// the enabled one.
func (op *profileOp) reactivateGlobal(ctx context.Context, dev *thingspace.Device) error {
	m := op.m
	want := m.GlobalServicePlan.ValueString()
	g, _ := globalLine(*dev)
	tflog.Info(ctx, "the reactivated device still has its Global profile: activating and enabling it instead of downloading it again",
		map[string]any{"eid": m.EID.ValueString(), "global_state": g.State, "global_service_plan": g.ServicePlan})
	switch {
	case thingspace.NormalizeState(g.State) == thingspace.StateDeactive:
		entry, err := op.profileEntry(dev, thingspace.KindEID, thingspace.KindICCID, thingspace.KindIMEI)
		if err != nil {
			return err
		}
		if _, err := op.run(ctx, thingspace.ActionActivate, thingspace.ActivateRequest{
			Devices:     entry,
			ServicePlan: want, MdnZipCode: m.MdnZipCode.ValueString(), PrimaryPlaceOfUse: m.PrimaryPlaceOfUse.wire(),
		}.Body()); err != nil {
			return err
		}
		if err := op.confirmRead(ctx, "the Global profile active on "+want, func(d thingspace.Device) bool {
			g, ok := globalLine(d)
			return ok && thingspace.NormalizeState(g.State) == thingspace.StateActive && g.ServicePlan == want
		}); err != nil {
			return err
		}
	case g.ServicePlan != want:
		if err := op.changeGlobalPlan(ctx, dev, want); err != nil {
			return err
		}
	}
	if !m.Enabled.ValueBool() {
		return nil
	}
	entry, err := op.profileEntry(dev, thingspace.KindEID, thingspace.KindICCID)
	if err != nil {
		return err
	}
	return op.enable(ctx, thingspace.ProfileRequest{Devices: entry, ServicePlan: want})
}

// enable sends enable for the profile. ThingSpace's answer that the profile is enabled already
// (enabled outside Terraform, or by the carrier itself) is the target state, not a failure:
// an update failing on it would fail again at every apply, and a create failing on it would be
// tainted, and its replacement would deactivate a working line.
func (op *profileOp) enable(ctx context.Context, body thingspace.ProfileRequest) error {
	err := op.statusStep(ctx, thingspace.ActionEnable, body)
	if !isAlreadyEnabled(err) {
		return err
	}
	tflog.Info(ctx, "ThingSpace reports the profile enabled already: nothing else to do",
		map[string]any{"eid": op.m.EID.ValueString(), "request_id": op.m.LastRequestID.ValueString()})
	op.m.ProfileStatus = types.StringValue(string(thingspace.NormalizeProfileStatus("ENABLE")))
	return nil
}

// codeAlreadyEnabled is ThingSpace's answer to enable for a profile that is enabled.
const codeAlreadyEnabled = "Profile.AlreadyEnabled"

// isAlreadyEnabled reports whether err is ThingSpace's Profile.AlreadyEnabled, synchronous or
// in the device's failure callback.
func isAlreadyEnabled(err error) bool {
	var f *errFailed
	if errors.As(err, &f) && f.cbErr != nil {
		code := strings.ToLower(f.cbErr.Code)
		return strings.HasSuffix(code, "."+strings.ToLower(codeAlreadyEnabled))
	}
	return thingspace.IsCode(err, codeAlreadyEnabled)
}

// completeAdoption runs the download step of a global or local profile whose line Create
// adopted (active, or suspended and resumed) but whose profile the device does not show yet:
// adopting the line alone would leave state claiming a profile that is not there. The v1 list
// has a carrier line for each Global or local profile that is downloaded or active.
func (op *profileOp) completeAdoption(ctx context.Context, dev thingspace.Device) error {
	m := op.m
	switch m.ProfileType.ValueString() {
	case profileGlobal:
		if _, ok := globalLine(dev); !ok && m.Download.ValueBool() {
			tflog.Info(ctx, "the adopted device has no Global profile yet: downloading it")
			return op.download(ctx)
		}
	case profileLocal:
		if _, ok := localLine(dev); !ok {
			tflog.Info(ctx, "the adopted device has no local profile yet: downloading it")
			return op.downloadLocal(ctx)
		}
	}
	return nil
}

// downloadLocal downloads the local profile through the SM-SR: download_enable, or
// download_disable when enabled = false (`download` is never used for local profiles).
func (op *profileOp) downloadLocal(ctx context.Context) error {
	action := thingspace.ActionDownloadEnable
	if !op.m.Enabled.ValueBool() {
		action = thingspace.ActionDownloadDisable
	}
	return op.statusStep(ctx, action, thingspace.ProfileRequest{
		Devices: op.entry(thingspace.KindEID, thingspace.KindICCID), SmsrOid: op.m.SmsrOid.ValueString()})
}

// download downloads the Global profile: download_enable, or download when enabled = false.
func (op *profileOp) download(ctx context.Context) error {
	action := thingspace.ActionDownloadEnable
	if !op.m.Enabled.ValueBool() {
		action = thingspace.ActionDownload
	}
	return op.statusStep(ctx, action, thingspace.ProfileRequest{
		Devices: op.entry(thingspace.KindEID, thingspace.KindICCID), ServicePlan: op.m.GlobalServicePlan.ValueString()})
}

// statusStep runs an action that only the v2 request status can confirm.
func (op *profileOp) statusStep(ctx context.Context, action thingspace.Action, body thingspace.ProfileRequest) error {
	if _, err := op.run(ctx, action, body); err != nil {
		return err
	}
	if err := op.confirmStatus(ctx, op.m.LastRequestID.ValueString()); err != nil {
		return err
	}
	op.changed = true
	return nil
}

// changePlan sends serviceplan for the US line and confirms the new plan by a read.
func (op *profileOp) changePlan(ctx context.Context, plan string, _ bool) error {
	if _, err := op.run(ctx, thingspace.ActionServicePlan, thingspace.ProfileRequest{
		Devices: op.entry(thingspace.KindEID, thingspace.KindICCID), ServicePlan: plan}); err != nil {
		return err
	}
	if err := op.confirmRead(ctx, "plan "+plan, func(d thingspace.Device) bool { return d.ServicePlan() == plan }); err != nil {
		return err
	}
	op.changed = true
	return nil
}

// changeGlobalPlan sends serviceplan with the Global plan and confirms it on the Global line.
func (op *profileOp) changeGlobalPlan(ctx context.Context, dev *thingspace.Device, plan string) error {
	entry, err := op.profileEntry(dev, thingspace.KindEID, thingspace.KindICCID)
	if err != nil {
		return err
	}
	if _, err := op.run(ctx, thingspace.ActionServicePlan, thingspace.ProfileRequest{Devices: entry, ServicePlan: plan}); err != nil {
		return err
	}
	if err := op.confirmRead(ctx, "Global plan "+plan, func(d thingspace.Device) bool {
		g, ok := globalLine(d)
		return ok && g.ServicePlan == plan
	}); err != nil {
		return err
	}
	op.changed = true
	return nil
}

// suspend: profile_suspend for a Global profile, device_suspend (by EID) otherwise.
func (op *profileOp) suspend(ctx context.Context) error {
	var err error
	if op.m.ProfileType.ValueString() == profileGlobal {
		// A fresh read: the profile may have been downloaded since the device was last read.
		// Without it the action would name the lead profile's ICCID: nothing is sent then.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), confirmTimeout)
		dev, rerr := op.r.cfg.Client.GetDevice(withLogger(rctx), op.account, op.eidID())
		cancel()
		if rerr != nil {
			return fmt.Errorf("no profile_suspend was sent: reading EID %s for its Global profile's own ICCID, "+
				"which profile_suspend names, failed: %w", op.m.EID.ValueString(), rerr)
		}
		entry, eerr := op.profileEntry(dev, thingspace.KindICCID)
		if eerr != nil {
			return eerr
		}
		_, err = op.run(ctx, thingspace.ActionProfileSuspend, thingspace.ProfileRequest{
			Devices: entry, ServicePlan: op.m.GlobalServicePlan.ValueString()})
	} else {
		_, err = op.run(ctx, thingspace.ActionDeviceSuspend, thingspace.ProfileRequest{Devices: op.entry(thingspace.KindEID)})
	}
	if err != nil {
		return err
	}
	if err := op.confirmRead(ctx, "suspended", func(d thingspace.Device) bool {
		return stateOfDevice(d, op.m) == thingspace.StateSuspended
	}); err != nil {
		return err
	}
	op.changed = true
	return nil
}

// resume: profile_resume for a Global profile that is itself suspended (seed 004), and
// device_resume where the device as a whole was suspended: verizon_us and local profiles are
// suspended with device_suspend, and a global one may have been suspended that way outside
// Terraform (its Global line then reads active under a suspended line, and profile_resume
// would fail with Profile.AlreadyResumed). dev is the device as last read.
func (op *profileOp) resume(ctx context.Context, dev thingspace.Device) error {
	if op.m.ProfileType.ValueString() == profileGlobal {
		if g, ok := globalLine(dev); ok && thingspace.NormalizeState(g.State) == thingspace.StateSuspended {
			entry, err := op.profileEntry(&dev, thingspace.KindICCID)
			if err != nil {
				return err
			}
			if _, err := op.run(ctx, thingspace.ActionProfileResume, thingspace.ProfileRequest{
				Devices: entry, ServicePlan: op.m.GlobalServicePlan.ValueString()}); err != nil {
				return err
			}
			var after thingspace.Device
			if err := op.confirmRead(ctx, "the Global profile resumed", func(d thingspace.Device) bool {
				after = d
				g, ok := globalLine(d)
				return ok && thingspace.NormalizeState(g.State) != thingspace.StateSuspended
			}); err != nil {
				return err
			}
			op.changed = true
			if stateOfDevice(after, op.m) != thingspace.StateSuspended {
				return nil
			}
			// The line is suspended too (device_suspend suspends every profile): resume it.
		}
	}
	if _, err := op.run(ctx, thingspace.ActionDeviceResume, thingspace.ProfileRequest{Devices: op.entry(thingspace.KindEID)}); err != nil {
		return err
	}
	if err := op.confirmRead(ctx, "active (resumed)", func(d thingspace.Device) bool {
		return stateOfDevice(d, op.m) == thingspace.StateActive
	}); err != nil {
		return err
	}
	op.changed = true
	return nil
}

// update sends what the plan changes, skipping what the device already shows: an action is
// never sent for a device already in the target state.
func (op *profileOp) update(ctx context.Context, dev thingspace.Device, prior *esimProfileModel) error {
	m := op.m
	if want := m.ServicePlan.ValueString(); dev.ServicePlan() != want {
		if err := op.changePlan(ctx, want, true); err != nil {
			return err
		}
	}
	if m.ProfileType.ValueString() == profileGlobal && !m.GlobalServicePlan.Equal(prior.GlobalServicePlan) {
		if g, ok := globalLine(dev); ok && g.ServicePlan != m.GlobalServicePlan.ValueString() {
			if err := op.changeGlobalPlan(ctx, &dev, m.GlobalServicePlan.ValueString()); err != nil {
				return err
			}
		}
	}
	if m.ProfileType.ValueString() == profileGlobal && m.Download.ValueBool() && !prior.Download.ValueBool() {
		if err := op.download(ctx); err != nil {
			return err
		}
	} else if m.Enabled.ValueBool() && !prior.Enabled.ValueBool() {
		entry, err := op.profileEntry(&dev, thingspace.KindEID, thingspace.KindICCID)
		if err != nil {
			return err
		}
		body := thingspace.ProfileRequest{Devices: entry}
		if m.ProfileType.ValueString() == profileLocal {
			body.SmsrOid = m.SmsrOid.ValueString()
		} else {
			body.ServicePlan = m.GlobalServicePlan.ValueString()
		}
		if err := op.enable(ctx, body); err != nil {
			return err
		}
	} else if !m.Enabled.ValueBool() && prior.Enabled.ValueBool() && m.ProfileType.ValueString() == profileLocal {
		entry, err := op.profileEntry(&dev, thingspace.KindEID, thingspace.KindICCID)
		if err != nil {
			return err
		}
		if err := op.statusStep(ctx, thingspace.ActionDisable, thingspace.ProfileRequest{
			Devices: entry, SmsrOid: m.SmsrOid.ValueString()}); err != nil {
			return err
		}
	}
	current := stateOfDevice(dev, m)
	switch {
	case m.Suspended.ValueBool() && current != thingspace.StateSuspended:
		return op.suspend(ctx)
	case !m.Suspended.ValueBool() && current == thingspace.StateSuspended:
		return op.resume(ctx, dev)
	}
	return nil
}

// deactivate sends deactivate with the explicit ETF waiver and reason code, and confirms it.
func (op *profileOp) deactivate(ctx context.Context) error {
	m := op.m
	body := thingspace.DeactivateRequest{Devices: op.entry(thingspace.KindEID, thingspace.KindICCID),
		EtfWaiver: m.EtfWaiver.ValueBool(), ReasonCode: m.ReasonCode.ValueString()}.Body()
	if _, err := op.run(ctx, thingspace.ActionDeactivate, body); err != nil {
		return err
	}
	return op.confirmRead(ctx, "deactive", func(d thingspace.Device) bool {
		return thingspace.NormalizeState(flattenDevice(d).State) == thingspace.StateDeactive
	})
}

// deleteProfile deletes a Global or local profile after its deactivation was confirmed.
func (op *profileOp) deleteProfile(ctx context.Context, dev *thingspace.Device) error {
	entry, err := op.profileEntry(dev, thingspace.KindEID, thingspace.KindICCID)
	if err != nil {
		return err
	}
	body := thingspace.ProfileRequest{Devices: entry}
	if op.m.ProfileType.ValueString() == profileLocal {
		body.SmsrOid = op.m.SmsrOid.ValueString()
	} else {
		body.ServicePlan = op.m.GlobalServicePlan.ValueString()
	}
	return op.statusStep(ctx, thingspace.ActionDelete, body)
}

// refresh reads the device into the model after the actions were confirmed.
func (op *profileOp) refresh(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), confirmTimeout)
	defer cancel()
	d, err := op.r.cfg.Client.GetDevice(withLogger(rctx), op.account, op.eidID())
	if err != nil {
		return err
	}
	flatten(*d, op.m)
	return nil
}

// wire converts the place of use for the activate body.
func (p *placeOfUse) wire() *thingspace.PlaceOfUse {
	if p == nil || p.CustomerName == nil || p.Address == nil {
		return nil
	}
	country := p.Address.Country.ValueString()
	if country == "" {
		country = "USA"
	}
	return &thingspace.PlaceOfUse{
		CustomerName: thingspace.CustomerName{FirstName: p.CustomerName.FirstName.ValueString(), LastName: p.CustomerName.LastName.ValueString()},
		Address: thingspace.Address{AddressLine1: p.Address.AddressLine1.ValueString(), AddressLine2: p.Address.AddressLine2.ValueString(),
			City: p.Address.City.ValueString(), State: p.Address.State.ValueString(), Zip: p.Address.Zip.ValueString(), Country: country},
	}
}
