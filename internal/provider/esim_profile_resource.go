package provider

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
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
	"github.com/fleetform/terraform-provider-thingspace/internal/reconcile"
	"github.com/fleetform/terraform-provider-thingspace/internal/thingspace"
	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
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
	LastAction         types.String   `tfsdk:"last_action"`
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
				Validators:          []validator.String{idValidator("eid")},
			},
			"iccid": schema.StringAttribute{
				Optional: true, Computed: true,
				MarkdownDescription: "ICCID of the device's lead (Verizon) profile. Read from ThingSpace when not set; " +
					"replaces the resource only when configured and changed.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown(), stringplanmodifier.RequiresReplaceIfConfigured()},
				Validators:    []validator.String{idValidator("iccid")},
			},
			"imei": schema.StringAttribute{
				Optional: true, Computed: true,
				MarkdownDescription: "IMEI of the device's module, sent with the activation. A new IMEI (a module swap) is " +
					"an in-place update that sends nothing to ThingSpace.",
				PlanModifiers: keep,
				Validators:    []validator.String{idValidator("imei")},
			},
			"account_name": schema.StringAttribute{
				Optional: true, Computed: true,
				MarkdownDescription: "Billing account; defaults to the provider's `account_name` and is kept from state when " +
					"the provider default changes.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown(), stringplanmodifier.RequiresReplaceIfConfigured()},
				Validators:    []validator.String{accountNameValidator()},
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
			"reason_code": reasonCodeAttribute(),
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
			"last_action": schema.StringAttribute{Computed: true, PlanModifiers: keep,
				MarkdownDescription: "The carrier action of `last_request_id` (for example `activate` or `download_enable`). " +
					"Without a relay, it is what lets the next apply read that request's outcome after a failed create."},
		},
	}
}

func (r *esimProfileResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.cfg = configFrom(req.ProviderData, &resp.Diagnostics)
}

func (r *esimProfileResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan esimProfileModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := timeoutContext(ctx, plan.Timeouts.Create, plan.createTimeoutDefault(), &resp.Diagnostics)
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

	// Announce the coming action before the engine's first observation, so that the batch of
	// instances created together waits for this one.
	w := r.cfg.newWorld(r.cfg.Coalescer.Begin())
	defer w.done()
	res := r.cfg.run(ctx, w, plan.desired(reconcile.GoalCreate, account))
	addWarnings(&resp.Diagnostics, res)
	resp.Diagnostics.Append(setPrivateJournal(ctx, resp.Private, w.journalFor(eid))...)
	plan.LastRequestID = types.StringValue(res.LastRequestID())
	plan.LastAction = types.StringValue(string(res.LastAction()))
	if res.UnknownAction != "" && res.Err != nil {
		// The last answer never came: last_action names that action with no request id, so
		// that, without a relay, the tainted instance's Delete still knows to wait for it.
		plan.LastRequestID, plan.LastAction = types.StringValue(""), types.StringValue(string(res.UnknownAction))
	}
	plan.ProfileStatus = types.StringValue(res.ProfileStatus)
	plan.ProfileRole = types.StringValue(res.ProfileRole)
	if res.Err != nil {
		r.failCreate(ctx, &plan, res, resp)
		return
	}
	// The engine found the device as configured on this read: success is confirmed before
	// state is written.
	flatten(*res.Last, &plan)
	setPrivateConfirmed(ctx, resp.Private, true)
	resp.Diagnostics.Append(setIdentity(ctx, resp.Identity, profileIdentity(account, eid))...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
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
	// Also when the device is gone: the framework wants an identity after every Read.
	resp.Diagnostics.Append(setIdentity(ctx, resp.Identity, profileIdentity(account, m.EID.ValueString()))...)
	// Within the TTL of a listing that read the account for other instances (see refreshBound).
	dev, err := r.cfg.findDeviceByEID(ctx, account, m.EID.ValueString(), r.cfg.refreshBound())
	if thingspace.IsDeviceNotFound(err) {
		tflog.Warn(ctx, "the device is no longer in the account; removing it from state", map[string]any{"eid": m.EID.ValueString()})
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Cannot read the device", err.Error())
		return
	}
	if reconcile.LineState(*dev) == tsapi.StateDeactive {
		// Deactivated outside Terraform: the next plan shows a create (a reactivation).
		tflog.Warn(ctx, "the device was deactivated outside Terraform; removing it from state", map[string]any{"eid": m.EID.ValueString()})
		resp.State.RemoveResource(ctx)
		return
	}
	asked := m
	flatten(*dev, &m)
	if confirmed, ok := privateConfirmed(ctx, req.Private); ok && !confirmed {
		// Keep the unconfirmed-create marker for Delete (see unconfirmedCreate), and the plans
		// the create asked for: Delete settles that request, and a plan the device does not
		// show yet is how it tells the request still has to land. (The instance is tainted:
		// its replacement is planned from the configuration, not from these.)
		m.State = types.StringNull()
		m.ServicePlan, m.GlobalServicePlan = asked.ServicePlan, asked.GlobalServicePlan
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
	ctx, cancel := timeoutContext(ctx, plan.Timeouts.Update, defaultUpdateTimeout, &resp.Diagnostics)
	defer cancel()
	account := state.AccountName.ValueString()
	eid := plan.EID.ValueString()
	plan.AccountName = state.AccountName
	plan.ID = state.ID
	ctx = tflog.SetField(ctx, "eid", eid)
	resp.Diagnostics.Append(setIdentity(ctx, resp.Identity, profileIdentity(account, eid))...)
	// Carry computed values forward; a run below replaces them.
	for _, p := range []struct{ dst, src *types.String }{
		{&plan.ProfileStatus, &state.ProfileStatus}, {&plan.ProfileRole, &state.ProfileRole},
		{&plan.LastRequestID, &state.LastRequestID}, {&plan.LastAction, &state.LastAction}, {&plan.MDN, &state.MDN}, {&plan.MSISDN, &state.MSISDN},
		{&plan.State, &state.State}, {&plan.ICCID, &state.ICCID}, {&plan.IMEI, &state.IMEI},
	} {
		if p.dst.IsUnknown() {
			*p.dst = *p.src
		}
	}
	untainted := state.State.IsNull() // an unconfirmed create kept by `terraform untaint`
	if !carrierChange(&plan, &state) && !untainted {
		// Only settings that ThingSpace does not hold changed (imei, etf_waiver, reason_code,
		// deletion_protection, ...): the plan promised no carrier action.
		resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
		return
	}
	w := r.cfg.newWorld(r.cfg.Coalescer.Begin())
	defer w.done()
	w.carry(eid, privateJournal(ctx, req.Private))
	want := plan.desired(reconcile.GoalUpdate, account)
	if untainted {
		// Decided as a create that adopts whatever plan the line has, as an update would: it
		// adopts the device if the earlier request took (and then sets the configured plan),
		// waits for it if it is still open, and activates the device if it did not take.
		want.Goal, want.AdoptExisting = reconcile.GoalCreate, true
	}
	res := r.cfg.run(ctx, w, want)
	addWarnings(&resp.Diagnostics, res)
	resp.Diagnostics.Append(setPrivateJournal(ctx, resp.Private, w.journalFor(eid))...)
	if rid := res.LastRequestID(); rid != "" {
		plan.LastRequestID, plan.LastAction = types.StringValue(rid), types.StringValue(string(res.LastAction()))
	}
	if res.ProfileStatus != "" || res.ProfileRole != "" {
		plan.ProfileStatus, plan.ProfileRole = types.StringValue(res.ProfileStatus), types.StringValue(res.ProfileRole)
	}
	if res.Err != nil {
		addRunError(&resp.Diagnostics, "Cannot update the eSIM profile", res.Err)
		// Keep the prior settings, so that the next plan shows the change again and the next
		// apply decides it afresh from the device and the relay; remember the request.
		state.LastRequestID, state.LastAction = plan.LastRequestID, plan.LastAction
		resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
		return
	}
	flatten(*res.Last, &plan)
	// A successful update confirms the instance, also one whose create was not confirmed and
	// that was untainted since: its destroy deactivates the line again.
	setPrivateConfirmed(ctx, resp.Private, true)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *esimProfileResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var m esimProfileModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	eid := m.EID.ValueString()
	// The destroy of an unconfirmed create deactivates nothing (below), so protection does not
	// stop it: the tainted instance is replaced and its device adopted.
	if m.DeletionProtection.ValueBool() && !unconfirmedCreate(ctx, req.Private, &m) {
		resp.Diagnostics.AddError("Deletion protection is on",
			fmt.Sprintf("EID %s has deletion_protection = true; nothing was sent. Set it to false first.", eid))
		return
	}
	ctx, cancel := timeoutContext(ctx, m.Timeouts.Delete, defaultDeleteTimeout, &resp.Diagnostics)
	defer cancel()
	ctx = tflog.SetField(ctx, "eid", eid)
	account := m.AccountName.ValueString()

	if unconfirmedCreate(ctx, req.Private, &m) {
		// A Create that was not confirmed: settle what is in flight and send no carrier action;
		// the replacement adopts the device.
		w := r.cfg.newWorld(nil)
		w.carry(eid, carriedJournal(ctx, req.Private, &m))
		tflog.Info(ctx, "the create of this instance was not confirmed: settling its request; no carrier action is sent",
			map[string]any{"request_id": m.LastRequestID.ValueString()})
		res := r.cfg.run(ctx, w, m.desired(reconcile.GoalSettle, account))
		if res.Err != nil {
			addRunError(&resp.Diagnostics, "The unconfirmed request is still pending", fmt.Errorf("%w\n\nNo carrier action was sent. "+
				"Apply again later: the instance stays in state until its request settles", res.Err))
			return
		}
		if res.Last != nil {
			if s := reconcile.LineState(*res.Last); reconcile.InService(s) {
				resp.Diagnostics.AddWarning("The device stays active",
					fmt.Sprintf("EID %s is %s after request %s, which the earlier apply did not see complete. This tainted "+
						"instance is removed without deactivating the device: the replacement adopts it.", eid, s,
						orDash(m.LastRequestID.ValueString())))
			}
		}
		return
	}
	w := r.cfg.newWorld(r.cfg.Coalescer.Begin())
	defer w.done()
	w.carry(eid, privateJournal(ctx, req.Private))
	res := r.cfg.run(ctx, w, m.desired(reconcile.GoalDestroy, account))
	addWarnings(&resp.Diagnostics, res)
	if res.Err != nil {
		title := "Cannot deactivate the eSIM profile"
		if slices.Contains(res.Actions, tsapi.ActionDeactivate) || (res.First != nil && reconcile.LineState(*res.First) == tsapi.StateDeactive) {
			title = "The profile was deactivated but not deleted"
		}
		addRunError(&resp.Diagnostics, title, res.Err)
		resp.Diagnostics.Append(setPrivateJournal(ctx, resp.Private, w.journalFor(eid))...)
	}
}

// ImportState takes an import id, `EID` or `EID/ICCID`, or (Terraform 1.12 and later) an
// identity: `eid`, and `account_name` unless it is the provider's.
func (r *esimProfileResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	var ident esimProfileIdentity
	if importIdentity(ctx, req, &ident, &resp.Diagnostics) {
		if resp.Diagnostics.HasError() {
			return
		}
		eid := knownString(ident.EID)
		if err := checkEIDStrict(eid); err != nil {
			resp.Diagnostics.AddError("Invalid import identity", fmt.Sprintf("eid: %v", err))
			return
		}
		account := identityAccount(r.cfg, ident.AccountName, "thingspace_esim_profile", &resp.Diagnostics)
		if resp.Diagnostics.HasError() {
			return
		}
		resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), eid)...)
		resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("eid"), eid)...)
		resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("account_name"), account)...)
		resp.Diagnostics.Append(setIdentity(ctx, resp.Identity, profileIdentity(account, eid))...)
		setPrivateConfirmed(ctx, resp.Private, true)
		return
	}
	eid, iccid, _ := strings.Cut(req.ID, "/")
	if err := checkEIDStrict(eid); err != nil {
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

// failCreate reports a failed Create. When nothing changed at the carrier (nothing accepted,
// or a failure callback and the device reads as before), no state is returned. When an action
// was accepted (its outcome pending or unknown, or a later step failed), the state with the
// request id is returned with create_confirmed = false: Terraform taints the instance, its
// Delete sends no carrier action, and the replacement Create adopts the device. The net effect
// of "time out, apply again" is no extra action.
func (r *esimProfileResource) failCreate(ctx context.Context, m *esimProfileModel, res reconcile.Result, resp *resource.CreateResponse) {
	title := "Cannot create the eSIM profile"
	if !res.Changed && !res.Pending() {
		if len(res.RequestIDs) == 0 {
			addRunError(&resp.Diagnostics, title, res.Err)
			return
		}
		// A failure callback: check that the device is unchanged before dropping it.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), confirmTimeout)
		defer cancel()
		t := reconcile.ProfileType(m.ProfileType.ValueString())
		dev, err := r.cfg.Client.GetDevice(withLogger(rctx), m.AccountName.ValueString(),
			tsapi.DeviceID{Kind: tsapi.KindEID, ID: m.EID.ValueString()})
		if err == nil && res.First != nil && reconcile.StateFor(*dev, t) == reconcile.StateFor(*res.First, t) &&
			dev.ServicePlan() == res.First.ServicePlan() {
			resp.Diagnostics.AddError(title, res.Err.Error()+"\nThe device is unchanged; nothing is stored in state.")
			return
		}
	}
	msg := res.Err.Error()
	if res.Pending() && len(res.RequestIDs) > 0 {
		msg += fmt.Sprintf("\n\nThingSpace accepted the request (last request id %s) and may still complete it. The instance is "+
			"saved as tainted: the next apply waits for that request instead of sending it again, sends no deactivation for "+
			"it, and adopts the device.", res.LastRequestID())
	} else if res.Pending() {
		msg += "\n\nThe instance is saved as tainted: the next apply waits for the outcome instead of sending the action " +
			"again, sends no deactivation for it, and adopts the device."
	}
	resp.Diagnostics.AddError("The eSIM profile was not confirmed", msg)
	setPrivateConfirmed(ctx, resp.Private, false)
	if seen := res.Seen(); seen != nil {
		f := flattenDevice(*seen)
		if m.ICCID.IsUnknown() || m.ICCID.IsNull() {
			m.ICCID = types.StringValue(f.ICCID)
		}
		if m.IMEI.IsUnknown() || m.IMEI.IsNull() {
			m.IMEI = types.StringValue(f.IMEI)
		}
	}
	m.markUnconfirmed()
	resp.Diagnostics.Append(setIdentity(ctx, resp.Identity, profileIdentity(m.AccountName.ValueString(), m.EID.ValueString()))...)
	resp.Diagnostics.Append(resp.State.Set(ctx, m)...)
}

// createTimeoutDefault is the create timeout when the configuration sets none (longer for a
// Global profile: see defaultCreateTimeoutGlobal).
func (m *esimProfileModel) createTimeoutDefault() time.Duration {
	if m.ProfileType.ValueString() == profileGlobal {
		return defaultCreateTimeoutGlobal
	}
	return defaultCreateTimeout
}

// desired translates the model into the engine's terms. ICCID and IMEI are the configured (or
// last known) ones; everything about what is already sent or enabled comes from the engine's
// own observations, never from here.
func (m *esimProfileModel) desired(goal reconcile.Goal, account string) reconcile.Desired {
	return reconcile.Desired{
		Goal: goal, Account: account, EID: m.EID.ValueString(), ICCID: knownString(m.ICCID), IMEI: knownString(m.IMEI),
		Type: reconcile.ProfileType(m.ProfileType.ValueString()), ServicePlan: m.ServicePlan.ValueString(),
		GlobalServicePlan: m.GlobalServicePlan.ValueString(), Download: m.Download.ValueBool(), Enabled: m.Enabled.ValueBool(),
		Suspended: m.Suspended.ValueBool(), SmsrOid: m.SmsrOid.ValueString(), MdnZipCode: m.MdnZipCode.ValueString(),
		PlaceOfUse: m.PrimaryPlaceOfUse.wire(), AdoptExisting: m.AdoptExisting.ValueBool(), EtfWaiver: m.EtfWaiver.ValueBool(),
		ReasonCode: m.ReasonCode.ValueString(), DeleteProfile: m.DeleteProfile.ValueBool(),
	}
}

// flatten maps a v1 device onto the model; shared by Read, Import and Create/Update's final
// read. Activation-time inputs (mdn_zip_code, primary_place_of_use, smsr_oid) and the callback
// facts (profile_status, profile_role) are kept: the v1 list does not have them.
func flatten(d tsapi.Device, m *esimProfileModel) {
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
		if _, ok := reconcile.GlobalLine(d); ok {
			m.ProfileType = types.StringValue(profileGlobal)
		} else if _, ok := reconcile.LocalLine(d); ok {
			m.ProfileType = types.StringValue(profileLocal)
		}
	}
	// The Global line's plan is the profile's only when the profile is managed as downloaded:
	// with download = false the engine leaves a Global profile it finds alone (a previous
	// owner's, say), so showing that profile's plan would be a difference no apply removes.
	managesGlobal := m.Download.IsNull() || m.Download.IsUnknown() || m.Download.ValueBool()
	if m.ProfileType.ValueString() == profileGlobal && managesGlobal {
		if g, ok := reconcile.GlobalLine(d); ok {
			m.GlobalServicePlan = types.StringValue(g.ServicePlan)
		}
	}
	state := reconcile.StateFor(d, reconcile.ProfileType(m.ProfileType.ValueString()))
	m.State = types.StringValue(string(state))
	m.Suspended = types.BoolValue(reconcile.ShowsSuspended(state))
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
	for _, s := range []*types.String{&m.ProfileStatus, &m.ProfileRole, &m.LastRequestID, &m.LastAction} {
		if s.IsNull() || s.IsUnknown() {
			*s = types.StringValue("")
		}
	}
	nullTimeoutsIfUnset(&m.Timeouts)
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

// wire converts the place of use for the activate body.
func (p *placeOfUse) wire() *tsapi.PlaceOfUse {
	if p == nil || p.CustomerName == nil || p.Address == nil {
		return nil
	}
	country := p.Address.Country.ValueString()
	if country == "" {
		country = "USA"
	}
	return &tsapi.PlaceOfUse{
		CustomerName: tsapi.CustomerName{FirstName: p.CustomerName.FirstName.ValueString(), LastName: p.CustomerName.LastName.ValueString()},
		Address: tsapi.Address{AddressLine1: p.Address.AddressLine1.ValueString(), AddressLine2: p.Address.AddressLine2.ValueString(),
			City: p.Address.City.ValueString(), State: p.Address.State.ValueString(), Zip: p.Address.Zip.ValueString(), Country: country},
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
