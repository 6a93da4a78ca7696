package provider

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/fleetform/terraform-provider-thingspace/internal/ids"
	"github.com/fleetform/terraform-provider-thingspace/internal/reconcile"
	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// Importing a fleet: by a list of EIDs or by a filter on the account's device list; the first
// Read then fills in the fleet-wide settings from the devices.

// fleetImportExample is shown with every import ID error.
const fleetImportExample = "expected `<account>/<eid>,<eid>,...`, or `<account>/state=active[,service_plan=<plan>]` for " +

	"every device the account lists with that state (and plan); the `<account>/` part may be left out for the provider's account"

// ImportState takes `<account>/<eid>,<eid>,...` or a device filter `<account>/state=...,service_plan=...`.
// The devices' settings come from the first Read: the fleet's plan is the one most of them have.
func (r *esimFleetResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	account, spec, found := strings.Cut(req.ID, "/")
	if !found {
		account, spec = "", req.ID
	}
	if account == "" {
		account = r.cfg.defaultAccount()
	}
	if account == "" {
		resp.Diagnostics.AddError("Invalid import ID", fmt.Sprintf("import ID %q names no account and the provider has no "+
			"`account_name`: %s", req.ID, fleetImportExample))
		return
	}
	if err := ids.ValidateAccountName(account); err != nil {
		resp.Diagnostics.AddError("Invalid import ID", fmt.Sprintf("import ID %q: %v; %s", req.ID, err, fleetImportExample))
		return
	}
	var eids []string
	var err error
	if strings.Contains(spec, "=") {
		eids, err = r.findEIDsByFilter(ctx, account, spec)
	} else {
		eids, err = parseEIDList(spec)
	}
	if err != nil {
		resp.Diagnostics.AddError("Invalid import ID", fmt.Sprintf("import ID %q: %v; %s", req.ID, err, fleetImportExample))
		return
	}
	devices := make(map[string]fleetDevice, len(eids))
	for _, eid := range eids {
		devices[eid] = fleetDevice{ICCID: types.StringNull(), IMEI: types.StringNull(), ServicePlan: types.StringNull(), Suspended: types.BoolNull()}
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), account)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("account_name"), account)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("devices"), devicesMap(devices))...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("device_status"), statusMap(nil))...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("create_confirmed"), true)...)
	setPrivateConfirmed(ctx, resp.Private, true)
}

// parseEIDList parses a comma-separated list of distinct EIDs.
func parseEIDList(spec string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for eid := range strings.SplitSeq(spec, ",") {
		eid = strings.TrimSpace(eid)
		if err := checkEIDStrict(eid); err != nil {
			return nil, err
		}
		if seen[eid] {
			return nil, fmt.Errorf("EID %s is listed twice", eid)
		}
		seen[eid] = true
		out = append(out, eid)
	}
	return out, nil
}

// findEIDsByFilter lists the EIDs of the account's devices that match
// `state=...,service_plan=...`.
func (r *esimFleetResource) findEIDsByFilter(ctx context.Context, account, spec string) ([]string, error) {
	if r.cfg == nil {
		return nil, errors.New("the provider is not configured")
	}
	req := tsapi.DeviceListRequest{AccountName: account}
	var wantState tsapi.DeviceState
	for kv := range strings.SplitSeq(spec, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		switch k {
		case "state":
			wantState = tsapi.NormalizeState(v)
			if wantState != tsapi.StateActive && wantState != tsapi.StateSuspended {
				return nil, fmt.Errorf("state %q: a fleet imports active or suspended devices only", v)
			}
		case "service_plan":
			if !planCodeRE.MatchString(v) {
				return nil, fmt.Errorf("%q is not a plan code", v)
			}
			req.ServicePlan = v
		default:
			return nil, fmt.Errorf("unknown filter %q (known: state, service_plan)", k)
		}
	}
	if wantState == "" {
		return nil, errors.New("a filter needs state=active or state=suspended: a fleet manages devices in service")
	}
	var out []string
	err := r.cfg.Client.ListAllDevices(withLogger(ctx), req, func(d tsapi.Device) error {
		if reconcile.LineState(d) == wantState {
			if eid := d.DeviceIDs.Get(tsapi.KindEID); eid != "" {
				out = append(out, eid)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing the account's devices: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no device of account %s matches %q", account, spec)
	}
	slices.Sort(out)
	return out, nil
}

// fillImportedFleet sets the fleet-wide settings of an imported fleet from its devices: the
// plan most of them have (the others get it as their own service_plan), the profile type
// most of them show, and the defaults of the settings ThingSpace does not hold.
func fillImportedFleet(m *esimFleetModel, reads []*tsapi.Device) {
	p := reconcile.PrevailingOf(reads)
	m.ServicePlan = types.StringValue(p.ServicePlan)
	m.ProfileType = types.StringValue(profileVerizonUS)
	if p.Global {
		m.ProfileType = types.StringValue(profileGlobal)
		m.GlobalServicePlan = types.StringValue(p.GlobalServicePlan)
	}
	m.Suspended = types.BoolValue(false)
	m.EtfWaiver = types.BoolValue(false)
	m.ReasonCode = types.StringValue("FF")
	m.DeletionProtection = types.BoolValue(true)
	nullTimeoutsIfUnset(&m.Timeouts)
}
