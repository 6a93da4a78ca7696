package provider

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"
)

// The fleet at plan time: against the prior state and the account (ModifyPlan): deletion
// protection, the account's plans, devices claimed twice, and which devices the apply decides
// again (the others keep their device_status); then the configuration's own rules
// (ValidateConfig).

func (r *esimFleetResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		// Destroy: refuse at plan time when the fleet is protected (and its destroy would
		// deactivate: that of an unconfirmed create sends nothing).
		var protected, confirmed types.Bool
		var account types.String
		resp.Diagnostics.Append(req.State.GetAttribute(ctx, path.Root("deletion_protection"), &protected)...)
		resp.Diagnostics.Append(req.State.GetAttribute(ctx, path.Root("account_name"), &account)...)
		resp.Diagnostics.Append(req.State.GetAttribute(ctx, path.Root("create_confirmed"), &confirmed)...)
		if !resp.Diagnostics.HasError() && protected.ValueBool() && (confirmed.IsNull() || confirmed.ValueBool()) {
			resp.Diagnostics.AddError("Deletion protection is on",
				fmt.Sprintf("The thingspace_esim_fleet of account %s has deletion_protection = true: destroying it would "+
					"deactivate every device in it. Set deletion_protection = false and apply first, or stop managing it without "+
					"deactivating anything with a `removed` block and `lifecycle { destroy = false }`.", account.ValueString()))
		}
		return
	}
	if r.cfg == nil {
		return
	}
	var plan esimFleetModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	var prior *esimFleetModel
	if !req.State.Raw.IsNull() {
		prior = &esimFleetModel{}
		resp.Diagnostics.Append(req.State.Get(ctx, prior)...)
	}
	if resp.Diagnostics.HasError() {
		return
	}
	var ok bool
	if plan.AccountName, ok = r.cfg.plannedAccount(ctx, plan.AccountName, req.Config, &resp.Diagnostics); !ok {
		return
	}
	if !plan.AccountName.IsUnknown() {
		plan.ID = plan.AccountName
	}
	// The plan is written once, at the end: each SetAttribute rebuilds the whole plan value,
	// which for a fleet of ten thousand devices costs half a second.
	defer func() {
		if !resp.Diagnostics.HasError() {
			resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
		}
	}()
	devices, devicesKnown := knownFleetDevices(plan.Devices, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	replacing := prior != nil && replacedBy(!plan.ProfileType.Equal(prior.ProfileType), changedIfKnown(plan.AccountName, prior.AccountName))
	account := plan.AccountName.ValueString()
	if !plan.AccountName.IsUnknown() && account != "" {
		r.checkPlans(ctx, account, &plan, devices, &resp.Diagnostics)
	}
	if devicesKnown && !replacing {
		for _, eid := range slices.Sorted(maps.Keys(devices)) {
			if err := r.cfg.claims.claim(eid, "thingspace_esim_fleet"); err != nil {
				resp.Diagnostics.AddAttributeError(path.Root("devices").AtMapKey(eid), "Device claimed twice", err.Error())
				return
			}
		}
	}
	if prior == nil || replacing {
		// A create: every status is known after apply (the default plan of a computed value).
		return
	}

	priorDevices, _ := knownFleetDevices(prior.Devices, &resp.Diagnostics)
	priorStatus := fleetStatuses(prior.DeviceStatus, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	if devicesKnown && !plan.DeletionProtection.IsUnknown() && plan.DeletionProtection.ValueBool() {
		var active []string
		for eid := range priorDevices {
			if _, kept := devices[eid]; !kept && priorStatus[eid].inService() {
				active = append(active, eid)
			}
		}
		if len(active) > 0 {
			resp.Diagnostics.AddAttributeError(path.Root("devices"), "Deletion protection is on",
				fmt.Sprintf("Removing %s from the fleet would deactivate them, and the fleet has deletion_protection = true. "+
					"Set deletion_protection = false in the same change to deactivate them. Nothing will be sent.", namedEIDs(active)))
			return
		}
	}
	confirmed := prior.CreateConfirmed.IsNull() || prior.CreateConfirmed.ValueBool()
	if !confirmed {
		// An unconfirmed create kept by `terraform untaint`: the update decides every device
		// again (the ones done are found done) and confirms the fleet.
		plan.CreateConfirmed = types.BoolUnknown()
	} else {
		plan.CreateConfirmed = types.BoolValue(true)
	}
	if !devicesKnown || fleetSettingsUnknown(&plan) {
		plan.DeviceStatus = types.MapUnknown(fleetStatusType)
		return
	}
	// Each device keeps its status unless this apply decides it again: a plan that changes one
	// device of ten thousand shows that one entry.
	elems := make(map[string]attr.Value, len(devices))
	changed := 0
	for eid, d := range devices {
		st, had := priorStatus[eid]
		pd, was := priorDevices[eid]
		if !confirmed || !was || needsRun(prior.settingsOf(pd), plan.settingsOf(d), st, had) {
			elems[eid] = types.ObjectUnknown(fleetStatusType.AttrTypes)
			changed++
			continue
		}
		elems[eid] = st.object()
	}
	tflog.Debug(ctx, "fleet plan", map[string]any{"devices": len(devices), "decided_again": changed})
	plan.DeviceStatus = types.MapValueMust(fleetStatusType, elems)
}

func (r *esimFleetResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var pt, gsp, zip types.String
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("profile_type"), &pt)...)
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("global_service_plan"), &gsp)...)
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("mdn_zip_code"), &zip)...)
	if resp.Diagnostics.HasError() || pt.IsUnknown() {
		return
	}
	t := pt.ValueString()
	if t == "" {
		t = profileVerizonUS
	}
	if t == profileGlobal && gsp.IsNull() {
		resp.Diagnostics.AddAttributeError(path.Root("global_service_plan"), "Missing global_service_plan",
			"A `global` fleet is activated with the US `service_plan`, then downloaded with `global_service_plan`: set it.")
	}
	if t != profileGlobal && !gsp.IsNull() && !gsp.IsUnknown() {
		resp.Diagnostics.AddAttributeError(path.Root("global_service_plan"), "global_service_plan needs profile_type = \"global\"",
			fmt.Sprintf("`global_service_plan` is used only by `global` fleets; this one is %q.", t))
	}
	checkZipCode(zip, &resp.Diagnostics)
}

// fleetSettingsUnknown reports whether a fleet-wide setting that decides devices is unknown.
func fleetSettingsUnknown(m *esimFleetModel) bool {
	return m.ServicePlan.IsUnknown() || m.GlobalServicePlan.IsUnknown() || m.Suspended.IsUnknown() || m.ProfileType.IsUnknown()
}

// checkPlans validates the fleet's plans and the devices' own plans against the account's.
func (r *esimFleetResource) checkPlans(ctx context.Context, account string, plan *esimFleetModel, devices map[string]fleetDevice, diags *diag.Diagnostics) {
	attrs := []planAttribute{{path.Root("service_plan"), plan.ServicePlan}, {path.Root("global_service_plan"), plan.GlobalServicePlan}}
	// Each device's own plan once, at the first device (by EID) that names it.
	named := map[string]bool{}
	for _, eid := range slices.Sorted(maps.Keys(devices)) {
		if v := knownString(devices[eid].ServicePlan); v != "" && !named[v] {
			named[v] = true
			attrs = append(attrs, planAttribute{path.Root("devices").AtMapKey(eid).AtName("service_plan"), devices[eid].ServicePlan})
		}
	}
	r.cfg.checkServicePlans(ctx, account, diags, attrs...)
}
