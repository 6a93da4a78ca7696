package provider

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/mapvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/fleetform/terraform-provider-thingspace/internal/reconcile"
	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

var (
	_ resource.Resource                   = &esimFleetResource{}
	_ resource.ResourceWithConfigure      = &esimFleetResource{}
	_ resource.ResourceWithImportState    = &esimFleetResource{}
	_ resource.ResourceWithModifyPlan     = &esimFleetResource{}
	_ resource.ResourceWithValidateConfig = &esimFleetResource{}
)

// NewESIMFleetResource returns the thingspace_esim_fleet resource.
func NewESIMFleetResource() resource.Resource { return &esimFleetResource{} }

// esimFleetResource owns many devices' profiles in one resource: Terraform itself needs
// minutes per thousand instances of any resource, so a fleet of ten thousand devices is one
// instance whose devices are a map keyed by EID. Every device is decided by the same engine as
// a thingspace_esim_profile, in one run, so actions go out in bulk and reads list the account.
type esimFleetResource struct {
	cfg *Config
}

// Default timeouts of a fleet: a bulk action over thousands of devices is answered by
// thousands of callbacks, spread over minutes at ThingSpace's pace.
const defaultFleetTimeout = 60 * time.Minute

type esimFleetModel struct {
	ID                 types.String   `tfsdk:"id"`
	AccountName        types.String   `tfsdk:"account_name"`
	ProfileType        types.String   `tfsdk:"profile_type"`
	ServicePlan        types.String   `tfsdk:"service_plan"`
	GlobalServicePlan  types.String   `tfsdk:"global_service_plan"`
	MdnZipCode         types.String   `tfsdk:"mdn_zip_code"`
	Suspended          types.Bool     `tfsdk:"suspended"`
	EtfWaiver          types.Bool     `tfsdk:"etf_waiver"`
	ReasonCode         types.String   `tfsdk:"reason_code"`
	DeletionProtection types.Bool     `tfsdk:"deletion_protection"`
	Timeouts           timeouts.Value `tfsdk:"timeouts"`
	Devices            types.Map      `tfsdk:"devices"`
	DeviceStatus       types.Map      `tfsdk:"device_status"`
	CreateConfirmed    types.Bool     `tfsdk:"create_confirmed"`
}

// fleetDevice is one entry of `devices`: identifiers and the settings that override the
// fleet's for this device.
type fleetDevice struct {
	ICCID       types.String `tfsdk:"iccid"`
	IMEI        types.String `tfsdk:"imei"`
	ServicePlan types.String `tfsdk:"service_plan"`
	Suspended   types.Bool   `tfsdk:"suspended"`
}

// fleetStatus is one entry of `device_status`: what the last apply or refresh found.
type fleetStatus struct {
	State         types.String `tfsdk:"state"`
	ServicePlan   types.String `tfsdk:"service_plan"`
	LastRequestID types.String `tfsdk:"last_request_id"`
	LastAction    types.String `tfsdk:"last_action"`
	Error         types.String `tfsdk:"error"`
}

var (
	fleetDeviceType = types.ObjectType{AttrTypes: map[string]attr.Type{
		"iccid": types.StringType, "imei": types.StringType, "service_plan": types.StringType, "suspended": types.BoolType,
	}}
	fleetStatusType = types.ObjectType{AttrTypes: map[string]attr.Type{
		"state": types.StringType, "service_plan": types.StringType, "last_request_id": types.StringType,
		"last_action": types.StringType, "error": types.StringType,
	}}
)

func (r *esimFleetResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_esim_fleet"
}

func (r *esimFleetResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Many devices' eSIM profiles in one resource: a map of devices keyed by EID, for fleets of thousands " +
			"of devices (Terraform itself needs minutes per thousand resource instances). Each device is brought to the " +
			"fleet's settings (or its own overrides) exactly as a `thingspace_esim_profile` would be, deciding from the device's " +
			"state at ThingSpace and the relay's record, with bulk requests and paged reads. A change touches only the devices " +
			"whose settings changed; devices removed from the map are deactivated (unless `deletion_protection`). When some " +
			"devices fail, the others are kept and `device_status` says what happened to each.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{Computed: true, PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
				MarkdownDescription: "The account name: a fleet has no identifier of its own at ThingSpace."},
			"account_name": schema.StringAttribute{
				Optional: true, Computed: true,
				MarkdownDescription: "Billing account; defaults to the provider's `account_name` and is kept from state when the " +
					"provider default changes. Changing it replaces the fleet.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown(), stringplanmodifier.RequiresReplaceIfConfigured()},
				Validators:    []validator.String{accountNameValidator()},
			},
			"profile_type": schema.StringAttribute{
				Optional: true, Computed: true, Default: stringdefault.StaticString(profileVerizonUS),
				MarkdownDescription: "`verizon_us` (default: `activate`) or `global` (`activate` with the US `service_plan`, then " +
					"`download_enable` with `global_service_plan`; the devices must be online). Changing it replaces the fleet.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
				Validators:    []validator.String{stringvalidator.OneOf(profileVerizonUS, profileGlobal)},
			},
			"service_plan": schema.StringAttribute{
				Required: true,
				MarkdownDescription: "The Verizon (US) service plan of every device without its own `service_plan`; one of the " +
					"account's plans. A change sends bulk `serviceplan` requests for those devices.",
				Validators: []validator.String{servicePlanCodeValidator{}},
			},
			"global_service_plan": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "The Global service plan of a `global` fleet (required for it).",
				Validators:          []validator.String{servicePlanCodeValidator{}},
			},
			"mdn_zip_code": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "Billing ZIP code for the MDNs assigned at activation. Activation-time input: not read back, " +
					"and a change affects devices activated later only.",
			},
			"suspended": schema.BoolAttribute{
				Optional: true, Computed: true, Default: booldefault.StaticBool(false),
				MarkdownDescription: "Suspend every device without its own `suspended` (`device_suspend`, or `profile_suspend` " +
					"for `global`); `false` resumes them.",
			},
			"etf_waiver": schema.BoolAttribute{
				Optional: true, Computed: true, Default: booldefault.StaticBool(false),
				MarkdownDescription: "Early-termination-fee waiver sent, always explicitly, with `deactivate`.",
			},
			"reason_code": reasonCodeAttribute(),
			"deletion_protection": schema.BoolAttribute{
				Optional: true, Computed: true, Default: booldefault.StaticBool(true),
				MarkdownDescription: "Default `true`: refuse, at plan time, to deactivate devices, whether by destroying the fleet " +
					"or by removing active devices from `devices`. Set it to `false` (and apply) before either. To stop managing " +
					"the whole fleet without deactivating anything, use a `removed` block with `lifecycle { destroy = false }`.",
			},
			"timeouts": timeouts.Attributes(ctx, timeouts.Opts{Create: true, Update: true, Delete: true,
				CreateDescription: "Default 60m.", UpdateDescription: "Default 60m.", DeleteDescription: "Default 60m."}),
			"devices": schema.MapNestedAttribute{
				Required: true,
				MarkdownDescription: "The devices, keyed by EID (a map, so that a change to one device shows as that one entry). " +
					"Each entry may give the lead profile's `iccid` and the module's `imei` (read from ThingSpace when not set) " +
					"and override the fleet's `service_plan` or `suspended` for that device; `{}` takes the fleet's settings.",
				Validators: []validator.Map{
					mapvalidator.SizeBetween(1, 100000),
					mapvalidator.KeysAre(idValidator("eid")),
				},
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"iccid": schema.StringAttribute{Optional: true, Computed: true,
						MarkdownDescription: "ICCID of the lead (Verizon) profile; read from ThingSpace when not set.",
						PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
						Validators:          []validator.String{idValidator("iccid")}},
					"imei": schema.StringAttribute{Optional: true, Computed: true,
						MarkdownDescription: "IMEI of the module, sent with the activation; read from ThingSpace when not set.",
						PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
						Validators:          []validator.String{idValidator("imei")}},
					"service_plan": schema.StringAttribute{Optional: true, MarkdownDescription: "This device's plan instead of the fleet's.",
						Validators: []validator.String{servicePlanCodeValidator{}}},
					"suspended": schema.BoolAttribute{Optional: true, MarkdownDescription: "Whether this device is suspended, instead of the fleet's `suspended`."},
				}},
			},
			"device_status": schema.MapNestedAttribute{
				Computed: true,
				MarkdownDescription: "What the last apply or refresh found for each device, keyed by EID. A plan shows " +
					"`(known after apply)` only for the devices it changes.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"state":           schema.StringAttribute{Computed: true, MarkdownDescription: "Service state: `active`, `suspended`, ... (`pre-active` for a device whose activation failed)."},
					"service_plan":    schema.StringAttribute{Computed: true, MarkdownDescription: "The plan ThingSpace shows."},
					"last_request_id": schema.StringAttribute{Computed: true, MarkdownDescription: "Request id of the last action sent for the device (\"\" when none)."},
					"last_action":     schema.StringAttribute{Computed: true, MarkdownDescription: "The action of `last_request_id`."},
					"error":           schema.StringAttribute{Computed: true, MarkdownDescription: "Why the device is not as configured (\"\" when it is); the next apply tries it again."},
				}},
			},
			"create_confirmed": schema.BoolAttribute{
				Computed: true,
				MarkdownDescription: "`false` when the create did not bring every device to the configuration: Terraform then " +
					"taints the fleet, and its destroy sends no carrier action (the replacement adopts the devices that are done).",
			},
		},
	}
}

func (r *esimFleetResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.cfg = configFrom(req.ProviderData, &resp.Diagnostics)
}

func (r *esimFleetResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan esimFleetModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := timeoutContext(ctx, plan.Timeouts.Create, defaultFleetTimeout, &resp.Diagnostics)
	defer cancel()
	account, err := r.cfg.accountOr(plan.AccountName)
	if err != nil {
		resp.Diagnostics.AddError("No ThingSpace account", err.Error())
		return
	}
	plan.AccountName, plan.ID = types.StringValue(account), types.StringValue(account)
	devices, _ := knownFleetDevices(plan.Devices, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	var fr fleetRun
	for _, eid := range slices.Sorted(maps.Keys(devices)) {
		fr.add(eid, plan.desired(reconcile.GoalCreate, account, eid, devices[eid]))
	}
	w := r.cfg.newWorld(nil)
	defer w.done()
	r.run(ctx, w, account, &fr)
	resp.Diagnostics.Append(setFleetJournal(ctx, resp.Private, w, fr.eids)...)

	t := reconcile.ProfileType(plan.ProfileType.ValueString())
	status := make(map[string]fleetStatus, len(fr.eids))
	touched := false
	for i, eid := range fr.eids {
		res := fr.results[i]
		addWarnings(&resp.Diagnostics, res)
		status[eid] = statusAfterRun(res, fleetStatus{}, t)
		if res.Err == nil || res.Changed || res.Pending() || len(res.RequestIDs) > 0 || res.UnknownAction != "" {
			touched = true
		}
	}
	for i, eid := range fr.eids {
		devices[eid] = withIdentifiers(devices[eid], fr.results[i].Seen())
	}
	plan.Devices = devicesMap(devices)
	plan.DeviceStatus = statusMap(status)
	failed, byEID := fr.failures()
	if len(failed) == 0 {
		saveCreatedFleet(ctx, resp, &plan, true)
		return
	}
	if rerr := relayFailure(&fr); rerr != nil && !touched {
		addRunError(&resp.Diagnostics, "Cannot create the eSIM fleet", rerr)
		return
	}
	detail := failureDetail(failed, byEID, len(fr.eids))
	if !touched {
		// Nothing was accepted and no device is as configured: nothing to own.
		resp.Diagnostics.AddError("Cannot create the eSIM fleet", detail+"\n\nNothing was sent that changed a device; nothing is stored in state.")
		return
	}
	resp.Diagnostics.AddError("The eSIM fleet was not confirmed", detail+
		"\n\nEvery device is kept in state with its status, and the fleet is saved as tainted: the next apply sends no "+
		"deactivation for it, adopts the devices that are done, waits for requests still open, and acts only on the rest.")
	saveCreatedFleet(ctx, resp, &plan, false)
}

// saveCreatedFleet stores a created fleet with create_confirmed and the private flag saying
// whether its create was confirmed: the two always agree (Delete reads the private flag first).
func saveCreatedFleet(ctx context.Context, resp *resource.CreateResponse, plan *esimFleetModel, confirmed bool) {
	plan.CreateConfirmed = types.BoolValue(confirmed)
	setPrivateConfirmed(ctx, resp.Private, confirmed)
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
}

func (r *esimFleetResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m esimFleetModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	account, err := r.cfg.accountOr(m.AccountName)
	if err != nil {
		resp.Diagnostics.AddError("No ThingSpace account", err.Error())
		return
	}
	m.AccountName, m.ID = types.StringValue(account), types.StringValue(account)
	devices, _ := knownFleetDevices(m.Devices, &resp.Diagnostics)
	status := fleetStatuses(m.DeviceStatus, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	eids := slices.Sorted(maps.Keys(devices))
	want := make([]reconcile.Desired, len(eids))
	for i, eid := range eids {
		want[i] = reconcile.Desired{EID: eid}
	}
	reads, err := r.cfg.readDevices(ctx, account, want)
	if err != nil {
		resp.Diagnostics.AddError("Cannot read the fleet's devices", err.Error())
		return
	}
	imported := m.ServicePlan.IsNull()
	if imported {
		fillImportedFleet(&m, reads)
	}
	confirmed := m.CreateConfirmed.IsNull() || m.CreateConfirmed.ValueBool()
	t := reconcile.ProfileType(m.ProfileType.ValueString())
	var gone []string
	for i, eid := range eids {
		dev, d := reads[i], devices[eid]
		st, had := status[eid]
		if !had {
			st = fleetStatus{LastRequestID: types.StringValue(""), LastAction: types.StringValue(""), Error: types.StringValue("")}
		}
		if dev == nil || (confirmed && (reconcile.LineState(*dev) == tsapi.StateDeactive ||
			(reconcile.LineState(*dev) == tsapi.StatePreActive && st.Error.ValueString() == ""))) {
			if confirmed {
				// Gone from the account, or deactivated outside Terraform: dropped, so the next
				// plan shows it being added (a reactivation).
				gone = append(gone, eid)
				delete(devices, eid)
				delete(status, eid)
				continue
			}
			st.State, st.ServicePlan = types.StringValue("not found"), types.StringValue("")
			status[eid] = st
			continue
		}
		d = withIdentifiers(d, dev)
		devices[eid] = d
		want := m.settingsOf(d)
		state := reconcile.StateFor(*dev, t)
		plan := dev.ServicePlan()
		st.State, st.ServicePlan = types.StringValue(string(state)), types.StringValue(plan)
		inService := reconcile.InService(state)
		// A suspend or resume in flight (from an interrupted apply) counts as where it takes
		// the device (see reconcile.ShowsSuspended), so the next plan shows what it would undo.
		changingService := state == tsapi.StatePendingSuspend || state == tsapi.StatePendingResume
		if confirmed && (inService || changingService) {
			if inService && plan != want.plan {
				// Changed outside Terraform: the state shows the plan the device has, so the
				// next plan shows the configured one being set again.
				d.ServicePlan = types.StringValue(plan)
			}
			suspended := reconcile.ShowsSuspended(state)
			if suspended != want.suspended {
				d.Suspended = types.BoolValue(suspended)
			}
			if inService && plan == want.plan && suspended == want.suspended {
				st.Error = types.StringValue("")
			}
			devices[eid] = d
		}
		status[eid] = st
	}
	if len(gone) > 0 {
		tflog.Warn(ctx, "devices of the fleet are no longer active in the account; removing them from state",
			map[string]any{"devices": namedEIDs(gone)})
	}
	m.Devices = devicesMap(devices)
	m.DeviceStatus = statusMap(status)
	if imported {
		m.CreateConfirmed = types.BoolValue(true)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *esimFleetResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, prior esimFleetModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &prior)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := timeoutContext(ctx, plan.Timeouts.Update, defaultFleetTimeout, &resp.Diagnostics)
	defer cancel()
	account := prior.AccountName.ValueString()
	plan.AccountName, plan.ID = prior.AccountName, prior.ID
	devices, _ := knownFleetDevices(plan.Devices, &resp.Diagnostics)
	priorDevices, _ := knownFleetDevices(prior.Devices, &resp.Diagnostics)
	priorStatus := fleetStatuses(prior.DeviceStatus, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	confirmed := prior.CreateConfirmed.IsNull() || prior.CreateConfirmed.ValueBool()

	var fr fleetRun
	var added, changed, removed int
	for _, eid := range slices.Sorted(maps.Keys(devices)) {
		st, had := priorStatus[eid]
		pd, was := priorDevices[eid]
		switch {
		case !was:
			added++
			fr.add(eid, plan.desired(reconcile.GoalCreate, account, eid, devices[eid]))
		case !confirmed || needsRun(prior.settingsOf(pd), plan.settingsOf(devices[eid]), st, had):
			changed++
			goal := reconcile.GoalUpdate
			if !st.inService() || !confirmed {
				// Never brought into service by this fleet (its activation failed, or the
				// create was not confirmed): decided as a create, which adopts a device that
				// is done and refuses one that someone else runs on another plan.
				goal = reconcile.GoalCreate
			}
			fr.add(eid, plan.desired(goal, account, eid, devices[eid]))
		}
	}
	var protectedActive []string
	for _, eid := range slices.Sorted(maps.Keys(priorDevices)) {
		if _, kept := devices[eid]; kept {
			continue
		}
		removed++
		if plan.DeletionProtection.ValueBool() && priorStatus[eid].inService() {
			protectedActive = append(protectedActive, eid)
			continue
		}
		// The deactivation settings are the configuration's (etf_waiver and reason_code may
		// change in the same apply).
		fr.add(eid, plan.desired(reconcile.GoalDestroy, account, eid, priorDevices[eid]))
	}
	if len(protectedActive) > 0 {
		resp.Diagnostics.AddError("Deletion protection is on", fmt.Sprintf("Removing %s would deactivate them, and the fleet "+
			"has deletion_protection = true. Nothing was sent.", namedEIDs(protectedActive)))
		return
	}
	tflog.Info(ctx, "updating the eSIM fleet", map[string]any{"devices": len(devices), "added": added, "changed": changed, "removed": removed})

	w := r.cfg.newWorld(nil)
	defer w.done()
	carryFleetJournal(ctx, w, req.Private, nil)
	r.run(ctx, w, account, &fr)
	resp.Diagnostics.Append(setFleetJournal(ctx, resp.Private, w, fr.eids)...)

	// The new state: devices not decided keep their entry and status; a device decided takes
	// the planned settings when it reached them, and keeps its prior ones (with the error) when
	// it did not, so that the next plan shows it again. A removed device that was deactivated
	// leaves the state; one that was not stays, to be removed again.
	t := reconcile.ProfileType(plan.ProfileType.ValueString())
	outDevices := make(map[string]fleetDevice, len(devices))
	outStatus := make(map[string]fleetStatus, len(devices))
	for eid, dv := range devices {
		outDevices[eid] = dv
		if st, ok := priorStatus[eid]; ok {
			outStatus[eid] = st
		}
	}
	for i, eid := range fr.eids {
		res := fr.results[i]
		addWarnings(&resp.Diagnostics, res)
		_, inPlan := devices[eid]
		st := statusAfterRun(res, priorStatus[eid], t)
		if inPlan {
			outDevices[eid] = withIdentifiers(outDevices[eid], res.Seen())
		}
		switch {
		case !inPlan && res.Err == nil:
			delete(outDevices, eid)
			delete(outStatus, eid)
			continue
		case !inPlan:
			outDevices[eid] = priorDevices[eid]
		case res.Err != nil && !st.inService():
			// Not in service (an activation that failed): the planned settings, so that the
			// error alone brings it back in the next plan.
		case res.Err != nil:
			if pd, was := priorDevices[eid]; was {
				outDevices[eid] = pd
			}
		}
		outStatus[eid] = st
	}
	plan.Devices = devicesMap(outDevices)
	plan.DeviceStatus = statusMap(outStatus)
	failed, byEID := fr.failures()
	if len(failed) > 0 {
		if rerr := relayFailure(&fr); rerr != nil {
			addRunError(&resp.Diagnostics, "Cannot update the eSIM fleet", rerr)
		} else {
			resp.Diagnostics.AddError("Some devices of the eSIM fleet were not updated", failureDetail(failed, byEID, len(fr.eids))+
				"\n\nThe devices that are done are saved; the others keep their status with the error, so the next plan shows "+
				"them again and the next apply decides them afresh (waiting for requests still open, never repeating one).")
		}
		plan.CreateConfirmed = prior.CreateConfirmed
		if plan.CreateConfirmed.IsNull() || plan.CreateConfirmed.IsUnknown() {
			plan.CreateConfirmed = types.BoolValue(true)
		}
	} else {
		plan.CreateConfirmed = types.BoolValue(true)
		setPrivateConfirmed(ctx, resp.Private, true)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *esimFleetResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var m esimFleetModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	unconfirmed := !m.CreateConfirmed.IsNull() && !m.CreateConfirmed.ValueBool()
	if c, ok := privateConfirmed(ctx, req.Private); ok {
		unconfirmed = !c
	}
	// The destroy of an unconfirmed create deactivates nothing, so protection does not stop
	// it: a tainted fleet is replaced, its devices adopted, whatever deletion_protection says.
	if m.DeletionProtection.ValueBool() && !unconfirmed {
		resp.Diagnostics.AddError("Deletion protection is on", fmt.Sprintf("The fleet of account %s has deletion_protection = true; "+
			"nothing was sent. Set it to false and apply first.", m.AccountName.ValueString()))
		return
	}
	ctx, cancel := timeoutContext(ctx, m.Timeouts.Delete, defaultFleetTimeout, &resp.Diagnostics)
	defer cancel()
	account := m.AccountName.ValueString()
	devices, _ := knownFleetDevices(m.Devices, &resp.Diagnostics)
	status := fleetStatuses(m.DeviceStatus, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	goal := reconcile.GoalDestroy
	if unconfirmed {
		goal = reconcile.GoalSettle
		tflog.Info(ctx, "the create of this fleet was not confirmed: settling its requests; no carrier action is sent",
			map[string]any{"devices": len(devices)})
	}
	var fr fleetRun
	for _, eid := range slices.Sorted(maps.Keys(devices)) {
		fr.add(eid, m.desired(goal, account, eid, devices[eid]))
	}
	w := r.cfg.newWorld(nil)
	defer w.done()
	carryFleetJournal(ctx, w, req.Private, status)
	r.run(ctx, w, account, &fr)
	failed, byEID := fr.failures()
	if unconfirmed {
		if len(failed) > 0 {
			addRunError(&resp.Diagnostics, "Requests of the unconfirmed fleet are still pending", fmt.Errorf("%s\n\nNo carrier "+
				"action was sent. Apply again later: the fleet stays in state until its requests settle", failureDetail(failed, byEID, len(fr.eids))))
			return
		}
		var active []string
		for i, res := range fr.results {
			if res.Last != nil {
				if reconcile.InService(reconcile.LineState(*res.Last)) {
					active = append(active, fr.eids[i])
				}
			}
		}
		if len(active) > 0 {
			resp.Diagnostics.AddWarning("Devices stay active", fmt.Sprintf("%s are active after requests the earlier apply did not "+
				"see complete. This tainted fleet is removed without deactivating them: its replacement adopts them.", namedEIDs(active)))
		}
		return
	}
	for _, res := range fr.results {
		addWarnings(&resp.Diagnostics, res)
	}
	if len(failed) == 0 {
		return
	}
	if rerr := relayFailure(&fr); rerr != nil {
		addRunError(&resp.Diagnostics, "Cannot deactivate the eSIM fleet", rerr)
	} else {
		resp.Diagnostics.AddError("Some devices of the eSIM fleet were not deactivated", failureDetail(failed, byEID, len(fr.eids))+
			"\n\nThe fleet stays in state with the devices that are still active; destroy again to deactivate them.")
	}
	// Keep what is still active, so that the next destroy acts on those only.
	t := reconcile.ProfileType(m.ProfileType.ValueString())
	for i, eid := range fr.eids {
		if fr.results[i].Err == nil {
			delete(devices, eid)
			delete(status, eid)
			continue
		}
		status[eid] = statusAfterRun(fr.results[i], status[eid], t)
	}
	m.Devices, m.DeviceStatus = devicesMap(devices), statusMap(status)
	resp.Diagnostics.Append(setFleetJournal(ctx, resp.Private, w, fr.eids)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// knownFleetDevices decodes the devices map when it and its entries are known (at plan time
// it may come from a variable or another resource that is not known yet).
func knownFleetDevices(m types.Map, diags *diag.Diagnostics) (map[string]fleetDevice, bool) {
	if m.IsNull() || m.IsUnknown() {
		return nil, false
	}
	for _, el := range m.Elements() {
		if el.IsUnknown() {
			return nil, false
		}
	}
	out := make(map[string]fleetDevice, len(m.Elements()))
	for eid, el := range m.Elements() {
		a, ok := objectAttributes(el)
		if !ok {
			diags.AddError("Unexpected value in devices", fmt.Sprintf("the entry of EID %s is a %T; this is a bug in the provider", eid, el))
			return nil, false
		}
		out[eid] = fleetDevice{ICCID: stringAttr(a, "iccid"), IMEI: stringAttr(a, "imei"),
			ServicePlan: stringAttr(a, "service_plan"), Suspended: boolAttr(a, "suspended")}
	}
	return out, true
}

// The maps of a fleet are decoded by hand, not with ElementsAs: its reflection costs about a
// millisecond per entry, seconds for a fleet of ten thousand devices on every plan.

// objectAttributes returns the attributes of an object value.
func objectAttributes(v attr.Value) (map[string]attr.Value, bool) {
	o, ok := v.(basetypes.ObjectValue)
	if !ok {
		return nil, false
	}
	return o.Attributes(), true
}

// stringAttr is a string attribute of an object (null when absent).
func stringAttr(a map[string]attr.Value, name string) types.String {
	if s, ok := a[name].(basetypes.StringValue); ok {
		return s
	}
	return types.StringNull()
}

// boolAttr is a bool attribute of an object (null when absent).
func boolAttr(a map[string]attr.Value, name string) types.Bool {
	if b, ok := a[name].(basetypes.BoolValue); ok {
		return b
	}
	return types.BoolNull()
}

// fleetStatuses decodes device_status (known in every state).
func fleetStatuses(m types.Map, diags *diag.Diagnostics) map[string]fleetStatus {
	out := map[string]fleetStatus{}
	if m.IsNull() || m.IsUnknown() {
		return out
	}
	for eid, el := range m.Elements() {
		a, ok := objectAttributes(el)
		if !ok {
			diags.AddError("Unexpected value in device_status", fmt.Sprintf("the entry of EID %s is a %T; this is a bug in the provider", eid, el))
			return out
		}
		out[eid] = fleetStatus{State: stringAttr(a, "state"), ServicePlan: stringAttr(a, "service_plan"),
			LastRequestID: stringAttr(a, "last_request_id"), LastAction: stringAttr(a, "last_action"), Error: stringAttr(a, "error")}
	}
	return out
}

func (s fleetStatus) object() basetypes.ObjectValue {
	return types.ObjectValueMust(fleetStatusType.AttrTypes, map[string]attr.Value{
		"state": s.State, "service_plan": s.ServicePlan, "last_request_id": s.LastRequestID, "last_action": s.LastAction, "error": s.Error,
	})
}

func (d fleetDevice) object() basetypes.ObjectValue {
	return types.ObjectValueMust(fleetDeviceType.AttrTypes, map[string]attr.Value{
		"iccid": d.ICCID, "imei": d.IMEI, "service_plan": d.ServicePlan, "suspended": d.Suspended,
	})
}

func statusMap(in map[string]fleetStatus) types.Map {
	elems := make(map[string]attr.Value, len(in))
	for k, v := range in {
		elems[k] = v.object()
	}
	return types.MapValueMust(fleetStatusType, elems)
}

func devicesMap(in map[string]fleetDevice) types.Map {
	elems := make(map[string]attr.Value, len(in))
	for k, v := range in {
		elems[k] = v.object()
	}
	return types.MapValueMust(fleetDeviceType, elems)
}
