package provider

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/fleetform/terraform-provider-thingspace/internal/reconcile"
	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// A fleet and the decision engine: what each device is configured to be, one engine run over
// the devices that need deciding, and how its results become device_status and diagnostics.

// fleetSettings is what a device of the fleet is configured to be, after its overrides.
type fleetSettings struct {
	plan, globalPlan string
	suspended        bool
	iccid, imei      string
}

// settingsOf resolves one device's settings in a fleet model.
func (m *esimFleetModel) settingsOf(d fleetDevice) fleetSettings {
	s := fleetSettings{plan: m.ServicePlan.ValueString(), suspended: m.Suspended.ValueBool(),
		iccid: knownString(d.ICCID), imei: knownString(d.IMEI)}
	if m.ProfileType.ValueString() == profileGlobal {
		s.globalPlan = m.GlobalServicePlan.ValueString()
	}
	if v := knownString(d.ServicePlan); v != "" {
		s.plan = v
	}
	if !d.Suspended.IsNull() && !d.Suspended.IsUnknown() {
		s.suspended = d.Suspended.ValueBool()
	}
	return s
}

// needsRun reports whether a device kept from the prior state must be decided again: its
// settings changed, its last apply left an error, or it was never brought into service.
func needsRun(prior, planned fleetSettings, st fleetStatus, hasStatus bool) bool {
	return prior != planned || !hasStatus || st.Error.ValueString() != "" || !st.inService()
}

// inService reports whether a device status says the line was found active or suspended:
// brought under the fleet's management (a device whose activation failed is not).
func (s fleetStatus) inService() bool {
	return reconcile.InService(tsapi.DeviceState(s.State.ValueString()))
}

// desired translates one device of the fleet into the engine's terms.
func (m *esimFleetModel) desired(goal reconcile.Goal, account, eid string, d fleetDevice) reconcile.Desired {
	s := m.settingsOf(d)
	return reconcile.Desired{
		Goal: goal, Account: account, EID: eid, ICCID: s.iccid, IMEI: s.imei,
		Type: reconcile.ProfileType(m.ProfileType.ValueString()), ServicePlan: s.plan, GlobalServicePlan: s.globalPlan,
		Download: true, Enabled: true, Suspended: s.suspended, MdnZipCode: m.MdnZipCode.ValueString(),
		EtfWaiver: m.EtfWaiver.ValueBool(), ReasonCode: m.ReasonCode.ValueString(),
	}
}

// fleetRun is one run of the engine over the fleet's devices that need deciding.
type fleetRun struct {
	eids    []string
	want    []reconcile.Desired
	results []reconcile.Result
}

func (fr *fleetRun) add(eid string, d reconcile.Desired) {
	fr.eids = append(fr.eids, eid)
	fr.want = append(fr.want, d)
}

// run decides every device in one engine run: one observation lists the account and asks the
// relay about all of them, and identical actions go out as bulk requests.
func (r *esimFleetResource) run(ctx context.Context, w *world, account string, fr *fleetRun) {
	if len(fr.want) == 0 {
		return
	}
	tflog.Info(ctx, "deciding the fleet's devices", map[string]any{"devices": len(fr.want), "account": account})
	fr.results = r.cfg.runAll(ctx, w, account, fr.want)
}

// statusAfterRun is a device's status after a run of the engine.
func statusAfterRun(res reconcile.Result, prior fleetStatus, t reconcile.ProfileType) fleetStatus {
	st := prior
	if st.State.IsNull() || st.State.IsUnknown() {
		st = fleetStatus{State: types.StringValue(""), ServicePlan: types.StringValue(""), LastRequestID: types.StringValue(""),
			LastAction: types.StringValue(""), Error: types.StringValue("")}
	}
	if seen := res.Seen(); seen != nil {
		st.State = types.StringValue(string(reconcile.StateFor(*seen, t)))
		st.ServicePlan = types.StringValue(seen.ServicePlan())
	}
	if rid := res.LastRequestID(); rid != "" {
		st.LastRequestID, st.LastAction = types.StringValue(rid), types.StringValue(string(res.LastAction()))
	}
	if res.UnknownAction != "" && res.Err != nil {
		st.LastRequestID, st.LastAction = types.StringValue(""), types.StringValue(string(res.UnknownAction))
	}
	st.Error = types.StringValue("")
	if res.Err != nil {
		st.Error = types.StringValue(res.Err.Error())
	}
	return st
}

// withIdentifiers fills a device entry's ICCID and IMEI that the configuration leaves to
// ThingSpace (unknown in a plan, null after an import) from what the device showed.
func withIdentifiers(d fleetDevice, dev *tsapi.Device) fleetDevice {
	fill := func(v *types.String, kind string) {
		if v.IsNull() || v.IsUnknown() {
			id := ""
			if dev != nil {
				id = dev.DeviceIDs.Get(kind)
			}
			*v = types.StringValue(id)
		}
	}
	fill(&d.ICCID, tsapi.KindICCID)
	fill(&d.IMEI, tsapi.KindIMEI)
	return d
}

// failures lists the devices a run left with an error, sorted by EID.
func (fr *fleetRun) failures() (eids []string, byEID map[string]error) {
	byEID = map[string]error{}
	for i, res := range fr.results {
		if res.Err != nil {
			eids = append(eids, fr.eids[i])
			byEID[fr.eids[i]] = res.Err
		}
	}
	slices.Sort(eids)
	return eids, byEID
}

// Most EIDs named in one error or warning; the rest are counted.
const fleetNamedMax = 10

// failureDetail names the first failed devices with their errors, then counts the rest.
func failureDetail(eids []string, byEID map[string]error, total int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d devices are not as configured:\n", len(eids), total)
	for i, eid := range eids {
		if i == fleetNamedMax {
			fmt.Fprintf(&b, "... and %d more (see device_status in the state for each one's error).\n", len(eids)-fleetNamedMax)
			break
		}
		fmt.Fprintf(&b, "- EID %s: %v\n", eid, byEID[eid])
	}
	return strings.TrimSpace(b.String())
}

// namedEIDs names up to fleetNamedMax EIDs and counts the rest.
func namedEIDs(eids []string) string {
	eids = slices.Sorted(slices.Values(eids))
	if len(eids) == 1 {
		return "EID " + eids[0]
	}
	if len(eids) <= fleetNamedMax {
		return fmt.Sprintf("%d devices (EIDs %s)", len(eids), strings.Join(eids, ", "))
	}
	return fmt.Sprintf("%d devices (EIDs %s, and %d more)", len(eids), strings.Join(eids[:fleetNamedMax], ", "), len(eids)-fleetNamedMax)
}

// relayFailure returns a device's error that says the relay did not answer: it gets a
// diagnostic of its own (see addRunError), not one line of the device list.
func relayFailure(fr *fleetRun) error {
	for _, res := range fr.results {
		var ru *relayUnavailableError
		if errors.As(res.Err, &ru) {
			return res.Err
		}
	}
	return nil
}
