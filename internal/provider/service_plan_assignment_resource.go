package provider

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/fleetform/terraform-provider-thingspace/internal/ids"
	"github.com/fleetform/terraform-provider-thingspace/internal/reconcile"
	"github.com/fleetform/terraform-provider-thingspace/internal/thingspace"
)

var (
	_ resource.Resource                   = &servicePlanAssignmentResource{}
	_ resource.ResourceWithConfigure      = &servicePlanAssignmentResource{}
	_ resource.ResourceWithModifyPlan     = &servicePlanAssignmentResource{}
	_ resource.ResourceWithValidateConfig = &servicePlanAssignmentResource{}
	_ resource.ResourceWithImportState    = &servicePlanAssignmentResource{}
)

// NewServicePlanAssignmentResource returns the thingspace_service_plan_assignment resource.
func NewServicePlanAssignmentResource() resource.Resource { return &servicePlanAssignmentResource{} }

type servicePlanAssignmentResource struct {
	cfg *Config
}

// defaultAssignmentTimeout bounds a create or update: bulk serviceplan calls and their callbacks.
const defaultAssignmentTimeout = 30 * time.Minute

type servicePlanAssignmentModel struct {
	ID          types.String       `tfsdk:"id"`
	AccountName types.String       `tfsdk:"account_name"`
	ServicePlan types.String       `tfsdk:"service_plan"`
	Devices     []assignmentDevice `tfsdk:"devices"`
	Timeouts    timeouts.Value     `tfsdk:"timeouts"`
	LastRequest types.List         `tfsdk:"last_request_ids"`
}

type assignmentDevice struct {
	EID   types.String `tfsdk:"eid"`
	ICCID types.String `tfsdk:"iccid"`
	IMEI  types.String `tfsdk:"imei"`
}

func (r *servicePlanAssignmentResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_service_plan_assignment"
}

func (r *servicePlanAssignmentResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "One service plan across a list of active devices that are not managed as `thingspace_esim_profile` " +
			"(a profile's `service_plan` is authoritative for its device). Devices whose plan differs are changed with bulk " +
			"`serviceplan` calls; devices already on the plan are not sent. Read drops devices whose plan drifted, so the next " +
			"plan shows them being set again. Destroy sends nothing to ThingSpace: a line always has a plan.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{Computed: true, PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
				MarkdownDescription: "`<account>/<service_plan>`."},
			"account_name": schema.StringAttribute{
				Optional: true, Computed: true,
				MarkdownDescription: "Billing account; defaults to the provider's `account_name` and is kept from state.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown(), stringplanmodifier.RequiresReplaceIfConfigured()},
				Validators:          []validator.String{accountNameValidator()},
			},
			"service_plan": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "The plan code every listed device is set to; it must be one of the account's plans.",
				Validators:          []validator.String{servicePlanCodeValidator{}},
			},
			"devices": schema.ListNestedAttribute{
				Required: true,
				MarkdownDescription: "The devices, by EID (with their lead profile's ICCID and IMEI when known). A list, not a set: " +
					"it stays fast with thousands of devices.",
				Validators: []validator.List{listvalidator.SizeBetween(1, 100000)},
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"eid":   schema.StringAttribute{Required: true, MarkdownDescription: "EID.", Validators: []validator.String{idValidator("eid")}},
					"iccid": schema.StringAttribute{Optional: true, MarkdownDescription: "ICCID of the lead profile (read from ThingSpace when not set).", Validators: []validator.String{idValidator("iccid")}},
					"imei":  schema.StringAttribute{Optional: true, MarkdownDescription: "IMEI.", Validators: []validator.String{idValidator("imei")}},
				}},
			},
			"last_request_ids": schema.ListAttribute{
				Computed: true, ElementType: types.StringType,
				MarkdownDescription: "Request ids of the last `serviceplan` calls (empty when nothing had to change).",
			},
			"timeouts": timeouts.Attributes(ctx, timeouts.Opts{Create: true, Update: true,
				CreateDescription: "Default 30m.", UpdateDescription: "Default 30m."}),
		},
	}
}

func (r *servicePlanAssignmentResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.cfg = configFrom(req.ProviderData, &resp.Diagnostics)
}

func (r *servicePlanAssignmentResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	r.applyPlan(ctx, req.Plan, &resp.State, &resp.Diagnostics, true)
}

func (r *servicePlanAssignmentResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m servicePlanAssignmentModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	want := make([]reconcile.Desired, len(m.Devices))
	for i, d := range m.Devices {
		want[i] = reconcile.Desired{EID: d.EID.ValueString()}
	}
	devs, err := r.cfg.readDevicesSince(ctx, m.AccountName.ValueString(), want, r.cfg.refreshBound())
	if err != nil {
		resp.Diagnostics.AddError("Cannot read the devices", err.Error())
		return
	}
	plan := m.ServicePlan.ValueString()
	kept := m.Devices[:0:0]
	for i, d := range m.Devices {
		dev := devs[i]
		ok := dev != nil
		if ok && dev.ServicePlan() == plan {
			kept = append(kept, d)
			continue
		}
		// Drifted (or gone): dropped, so the next plan shows the device being set again.
		tflog.Info(ctx, "a device's plan drifted from the assignment", map[string]any{"eid": d.EID.ValueString(), "found": ok})
	}
	m.Devices = kept
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *servicePlanAssignmentResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	r.applyPlan(ctx, req.Plan, &resp.State, &resp.Diagnostics, false)
}

func (r *servicePlanAssignmentResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	// A line always has a plan: removing the assignment changes nothing at ThingSpace.
	tflog.Info(ctx, "thingspace_service_plan_assignment removed from state; no carrier action is sent")
}

// ImportState takes `<account>/<service_plan>/<eid>[,<eid>...]`, or
// `<service_plan>/<eid>[,<eid>...]` for the provider's account. The devices must be listed:
// importing every device the account has on the plan would take devices that other resources
// own. Read then keeps the listed devices that are on the plan, so a device on another plan
// shows in the next plan as being set, and nothing is sent by the import itself.
func (r *servicePlanAssignmentResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	account, plan, eids, err := parseAssignmentImportID(req.ID, r.cfg.defaultAccount())
	if err != nil {
		resp.Diagnostics.AddError("Invalid import ID", err.Error())
		return
	}
	devices := make([]assignmentDevice, len(eids))
	for i, eid := range eids {
		devices[i] = assignmentDevice{EID: types.StringValue(eid), ICCID: types.StringNull(), IMEI: types.StringNull()}
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), account+"/"+plan)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("account_name"), account)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("service_plan"), plan)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("devices"), devices)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("last_request_ids"), types.ListValueMust(types.StringType, nil))...)
}

func (r *servicePlanAssignmentResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() || r.cfg == nil {
		return
	}
	// Attributes one by one: the devices list may not be known yet at plan time.
	var accountName, servicePlan types.String
	var list types.List
	resp.Diagnostics.Append(req.Plan.GetAttribute(ctx, path.Root("account_name"), &accountName)...)
	resp.Diagnostics.Append(req.Plan.GetAttribute(ctx, path.Root("service_plan"), &servicePlan)...)
	resp.Diagnostics.Append(req.Plan.GetAttribute(ctx, path.Root("devices"), &list)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if accountName.IsUnknown() {
		var ok bool
		if accountName, ok = r.cfg.plannedAccount(ctx, accountName, req.Config, &resp.Diagnostics); !ok {
			return
		}
		if !accountName.IsUnknown() {
			resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("account_name"), accountName)...)
		}
	}
	if !accountName.IsUnknown() && !servicePlan.IsUnknown() {
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("id"),
			types.StringValue(accountName.ValueString()+"/"+servicePlan.ValueString()))...)
		r.cfg.checkServicePlans(ctx, accountName.ValueString(), &resp.Diagnostics, planAttribute{path.Root("service_plan"), servicePlan})
	}
	devices, known := knownAssignmentDevices(ctx, list, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	replacing := false
	if !req.State.Raw.IsNull() {
		var prior types.String
		resp.Diagnostics.Append(req.State.GetAttribute(ctx, path.Root("account_name"), &prior)...)
		replacing = replacedBy(changedIfKnown(accountName, prior))
	}
	if known && !replacing {
		for _, d := range devices {
			if d.EID.IsUnknown() {
				continue
			}
			if err := r.cfg.claims.claim(d.EID.ValueString(), "thingspace_service_plan_assignment"); err != nil {
				resp.Diagnostics.AddAttributeError(path.Root("devices"), "Device claimed twice", err.Error())
				return
			}
		}
	}
	if !req.State.Raw.IsNull() {
		var state servicePlanAssignmentModel
		resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
		if !known || !state.ServicePlan.Equal(servicePlan) || !sameDevices(state.Devices, devices) {
			resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("last_request_ids"), types.ListUnknown(types.StringType))...)
		}
	}
}

func (r *servicePlanAssignmentResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var list types.List
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("devices"), &list)...)
	devices, known := knownAssignmentDevices(ctx, list, &resp.Diagnostics)
	if !known {
		// Devices from a variable or another resource: checked again at plan time.
		return
	}
	seen := map[string]int{}
	for i, d := range devices {
		if d.EID.IsUnknown() || d.EID.IsNull() {
			continue
		}
		if j, dup := seen[d.EID.ValueString()]; dup {
			resp.Diagnostics.AddAttributeError(path.Root("devices").AtListIndex(i).AtName("eid"), "Device listed twice",
				fmt.Sprintf("EID %s is listed at positions %d and %d.", d.EID.ValueString(), j+1, i+1))
		}
		seen[d.EID.ValueString()] = i
	}
}

// knownAssignmentDevices decodes the devices list when it and each of its elements are known.
// During validation and planning the list may come from a variable or another resource's
// attribute that is not known yet, which a []assignmentDevice cannot hold.
func knownAssignmentDevices(ctx context.Context, list types.List, diags *diag.Diagnostics) ([]assignmentDevice, bool) {
	if list.IsNull() || list.IsUnknown() {
		return nil, false
	}
	for _, el := range list.Elements() {
		if el.IsUnknown() || el.IsNull() {
			return nil, false
		}
	}
	var devices []assignmentDevice
	diags.Append(list.ElementsAs(ctx, &devices, false)...)
	return devices, !diags.HasError()
}

func sameDevices(a, b []assignmentDevice) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].EID.Equal(b[i].EID) || !a[i].ICCID.Equal(b[i].ICCID) || !a[i].IMEI.Equal(b[i].IMEI) {
			return false
		}
	}
	return true
}

// assignmentImportExample is shown with every import ID error.
const assignmentImportExample = "expected `<account>/<service_plan>/<eid>[,<eid>...]` or `<service_plan>/<eid>[,<eid>...]`, " +

	"e.g. `0000123456-00001/M2M10GB/89049032995470350104029245073231,89049032995470350104029245073328`"

// parseAssignmentImportID splits a plan assignment's import ID; defaultAccount is used when
// the ID names no account.
func parseAssignmentImportID(id, defaultAccount string) (account, plan string, eids []string, err error) {
	parts := strings.Split(id, "/")
	switch len(parts) {
	case 3:
		account, plan = parts[0], parts[1]
		if err := ids.ValidateAccountName(account); err != nil {
			return "", "", nil, fmt.Errorf("import ID %q: %v; %s", id, err, assignmentImportExample)
		}
	case 2:
		if ids.ValidateAccountName(parts[0]) == nil && planCodeRE.MatchString(parts[1]) &&
			checkEIDStrict(parts[1]) != nil {
			// The resource's own id, which does not say which devices to import. (A numeric
			// plan code followed by one EID also looks like an account and a plan code: an EID
			// is 32 digits, which the plan code pattern accepts.)
			return "", "", nil, fmt.Errorf("import ID %q names no devices: list the EIDs to import, %s", id, assignmentImportExample)
		}
		account, plan = defaultAccount, parts[0]
		if account == "" {
			return "", "", nil, fmt.Errorf("import ID %q names no account and the provider has no `account_name`: %s",
				id, assignmentImportExample)
		}
	default:
		return "", "", nil, fmt.Errorf("import ID %q: %s", id, assignmentImportExample)
	}
	if !planCodeRE.MatchString(plan) {
		return "", "", nil, fmt.Errorf("import ID %q: %q is not a plan code (3 to 32 letters, digits or spaces); %s",
			id, plan, assignmentImportExample)
	}
	seen := map[string]bool{}
	for _, eid := range strings.Split(parts[len(parts)-1], ",") {
		eid = strings.TrimSpace(eid)
		if err := checkEIDStrict(eid); err != nil {
			return "", "", nil, fmt.Errorf("import ID %q: %v", id, err)
		}
		if seen[eid] {
			return "", "", nil, fmt.Errorf("import ID %q lists EID %s twice", id, eid)
		}
		seen[eid] = true
		eids = append(eids, eid)
	}
	return account, plan, eids, nil
}

// applyPlan reads the plan and applies it within the Create (creating) or the Update timeout.
func (r *servicePlanAssignmentResource) applyPlan(ctx context.Context, p tfsdk.Plan, st *tfsdk.State, diags *diag.Diagnostics, creating bool) {
	var plan servicePlanAssignmentModel
	diags.Append(p.Get(ctx, &plan)...)
	if diags.HasError() {
		return
	}
	timeout := plan.Timeouts.Update
	if creating {
		timeout = plan.Timeouts.Create
	}
	ctx, cancel := timeoutContext(ctx, timeout, defaultAssignmentTimeout, diags)
	defer cancel()
	r.apply(ctx, &plan, st, diags, creating)
}

// apply sets every listed device to the plan through the decision engine: each device is
// observed (its read and the relay's record), devices on the plan already get nothing, devices
// with a request in flight are waited on, and the rest share bulk serviceplan calls; every
// success is confirmed by a read. When any device cannot take the plan, nothing is sent at all.
// State lists the devices confirmed on the plan, so a device that failed shows again in the
// next plan; a Create that confirmed none leaves no state at all.
func (r *servicePlanAssignmentResource) apply(ctx context.Context, plan *servicePlanAssignmentModel, st *tfsdk.State, diags *diag.Diagnostics, creating bool) {
	account, err := r.cfg.accountOr(plan.AccountName)
	if err != nil {
		diags.AddError("No ThingSpace account", err.Error())
		return
	}
	plan.AccountName = types.StringValue(account)
	target := plan.ServicePlan.ValueString()
	plan.ID = types.StringValue(account + "/" + target)
	plan.LastRequest = types.ListValueMust(types.StringType, nil)

	devices := make([]reconcile.Desired, len(plan.Devices))
	for i, d := range plan.Devices {
		devices[i] = reconcile.Desired{Goal: reconcile.GoalPlan, Account: account, EID: d.EID.ValueString(),
			ICCID: knownString(d.ICCID), IMEI: knownString(d.IMEI), ServicePlan: target}
	}
	w := r.cfg.newWorld(nil)
	defer w.done()
	opts := r.cfg.runOptions()
	opts.AllOrNothing = true
	results := reconcile.Run(withLogger(ctx), w, opts, account, devices)

	var refused, failed []string
	requestIDs := map[string]bool{}
	confirmed := plan.Devices[:0:0]
	for i, res := range results {
		addWarnings(diags, res)
		for _, id := range res.RequestIDs {
			requestIDs[id] = true
		}
		var held *reconcile.HeldBackError
		var ru *relayUnavailableError
		switch {
		case res.Err == nil:
			confirmed = append(confirmed, plan.Devices[i])
		case errors.As(res.Err, &ru):
			addRunError(diags, "Cannot reach the relay", res.Err)
			return
		case errors.As(res.Err, &held):
		case !res.Changed && len(res.RequestIDs) == 0 && !res.Pending() && isRefusal(res.Err):
			refused = append(refused, res.Err.Error())
		default:
			failed = append(failed, res.Err.Error())
		}
	}
	if len(refused) > 0 && len(requestIDs) == 0 {
		diags.AddError("Some devices cannot take the plan", strings.Join(refused, "\n")+"\n\nNothing was sent.")
		return
	}
	failed = append(refused, failed...)
	ids := make([]string, 0, len(requestIDs))
	for id := range requestIDs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	plan.LastRequest = types.ListValueMust(types.StringType, stringValues(ids))
	all := len(confirmed) == len(plan.Devices)
	plan.Devices = confirmed
	if !all || len(failed) > 0 {
		diags.AddError("Some devices did not take the plan",
			fmt.Sprintf("%d of the listed devices are on %s. The others stay out of state, so the next plan shows them again:\n%s",
				len(confirmed), target, strings.Join(failed, "\n")))
		if creating && len(confirmed) == 0 {
			// Nothing to own yet: no state, as for a failed create of any resource. A request
			// still open is found at the relay by the next apply and waited on, not repeated.
			return
		}
	}
	diags.Append(st.Set(ctx, plan)...)
}

// isRefusal reports whether a run ended before anything could be sent because the device
// cannot take the change (not found, not active).
func isRefusal(err error) bool {
	var f *reconcile.FailedError
	var u *reconcile.UnconfirmedError
	return !errors.As(err, &f) && !errors.As(err, &u) && !thingspace.IsNotSent(err)
}

func stringValues(ss []string) []attr.Value {
	out := make([]attr.Value, len(ss))
	for i, s := range ss {
		out[i] = types.StringValue(s)
	}
	return out
}
