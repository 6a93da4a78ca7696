package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// The profile at plan time: against the prior state and the account (ModifyPlan): deletion
// protection, the account and its plans, a device claimed twice, and which computed attributes
// an update changes; then the configuration's own rules (ValidateConfig).

func (r *esimProfileResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		// Destroy: refuse early, at plan time, when the profile is protected.
		var st esimProfileModel
		resp.Diagnostics.Append(req.State.Get(ctx, &st)...)
		if !resp.Diagnostics.HasError() && st.DeletionProtection.ValueBool() && !unconfirmedCreate(ctx, req.Private, &st) {
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
	replacing := !req.State.Raw.IsNull() && replacedBy(!plan.EID.Equal(state.EID), !plan.ProfileType.Equal(state.ProfileType),
		changedIfKnown(plan.ICCID, state.ICCID), changedIfKnown(plan.AccountName, state.AccountName))
	if !plan.EID.IsUnknown() && !replacing {
		if err := r.cfg.claims.claim(plan.EID.ValueString(), "thingspace_esim_profile"); err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("eid"), "Device claimed twice", err.Error())
		}
	}
	if account != "" && !plan.AccountName.IsUnknown() {
		r.cfg.checkServicePlans(ctx, account, &resp.Diagnostics, planAttribute{path.Root("service_plan"), plan.ServicePlan},
			planAttribute{path.Root("global_service_plan"), plan.GlobalServicePlan})
	}
	if !req.State.Raw.IsNull() && (carrierChange(&plan, &state) || state.State.IsNull()) {
		// A null state is an unconfirmed create that `terraform untaint` kept (see
		// unconfirmedCreate): the update decides the device again and confirms the instance,
		// even with the configuration unchanged, instead of an empty plan that would leave it
		// unconfirmed for good (and its destroy sending nothing).
		// The update sends actions: their request id, the callback facts and the state change.
		for _, a := range []string{"last_request_id", "last_action", "profile_status", "profile_role", "state"} {
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
	checkZipCode(m.MdnZipCode, &resp.Diagnostics)
}

// carrierChange reports whether going from state to plan sends anything to ThingSpace.
func carrierChange(plan, state *esimProfileModel) bool {
	return !plan.ServicePlan.Equal(state.ServicePlan) || !plan.GlobalServicePlan.Equal(state.GlobalServicePlan) ||
		!plan.Enabled.Equal(state.Enabled) || !plan.Suspended.Equal(state.Suspended) || !plan.Download.Equal(state.Download)
}
