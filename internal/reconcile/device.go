package reconcile

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/fleetform/terraform-provider-thingspace/internal/thingspace"
	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// ProfileType is the kind of eSIM profile a device is managed for.
type ProfileType string

// The profile types of thingspace_esim_profile.
const (
	// VerizonUS is the lead profile: activate with a US plan.
	VerizonUS ProfileType = "verizon_us"
	// Global is a Global IoT profile: the line is activated with a US plan, then the Global
	// profile is downloaded (and enabled) with a Global plan.
	Global ProfileType = "global"
	// Local is a local (SM-SR) profile: downloaded through the SM-SR system (smsrOid).
	Local ProfileType = "local"
)

// LineState is the device's service state as the v1 list shows it on its first (Verizon)
// carrier line, normalised: active, suspended, deactive, pre-active, pending_*, unknown.
func LineState(d tsapi.Device) tsapi.DeviceState { return d.State() }

// InService reports whether a line state is one a managed device is brought to and kept in:
// active, or suspended (still the account's line, resumable).
func InService(s tsapi.DeviceState) bool {
	return s == tsapi.StateActive || s == tsapi.StateSuspended
}

// GlobalLine returns the carrier information of the device's Global profile, if the device
// shows one: the v1 list has a carrier line for each Global or local profile that is
// downloaded or was activated, after the Verizon line.
func GlobalLine(d tsapi.Device) (tsapi.CarrierInformation, bool) {
	for i, ci := range d.CarrierInformations {
		if i > 0 && isGlobalCarrier(ci) {
			return ci, true
		}
	}
	return tsapi.CarrierInformation{}, false
}

// LocalLine returns the carrier information of the device's local (SM-SR) profile, if it has
// one: a carrier line after the Verizon one that is not the Global profile's.
func LocalLine(d tsapi.Device) (tsapi.CarrierInformation, bool) {
	for i, ci := range d.CarrierInformations {
		if i > 0 && !isGlobalCarrier(ci) {
			return ci, true
		}
	}
	return tsapi.CarrierInformation{}, false
}

func isGlobalCarrier(ci tsapi.CarrierInformation) bool {
	return strings.Contains(strings.ToLower(ci.CarrierName), "global")
}

// ProfileLine returns the carrier line of the profile of type t (Global or local), if shown.
func ProfileLine(d tsapi.Device, t ProfileType) (tsapi.CarrierInformation, bool) {
	switch t {
	case Global:
		return GlobalLine(d)
	case Local:
		return LocalLine(d)
	}
	return tsapi.CarrierInformation{}, false
}

// LeadICCID is the ICCID of the device's lead (Verizon) profile: the first ICCID listed.
func LeadICCID(d tsapi.Device) string { return d.DeviceIDs.Get(tsapi.KindICCID) }

// ProfileICCID is the own ICCID of the device's Global or local profile, or "" when the device
// shows no such profile. The v1 list gives a carrier line per profile (the lead first) and the
// device's ICCIDs, but documents no link between the two; the examples we have list one ICCID
// per carrier line in the same order, the lead's first. That pairing is trusted only when the
// counts agree: otherwise the profile's ICCID cannot be told apart from another profile's, and
// acting on a guess could suspend or delete the wrong profile, so it is an error.
func ProfileICCID(d tsapi.Device, t ProfileType) (string, error) {
	line := -1
	for i, ci := range d.CarrierInformations {
		if i == 0 {
			continue
		}
		if g := isGlobalCarrier(ci); (t == Global && g) || (t == Local && !g) {
			line = i
			break
		}
	}
	if line < 0 {
		return "", nil
	}
	var iccids []string
	for _, id := range d.DeviceIDs {
		if tsapi.NormalizeKind(id.Kind) == tsapi.KindICCID {
			iccids = append(iccids, id.ID)
		}
	}
	if len(iccids) != len(d.CarrierInformations) {
		return "", fmt.Errorf("cannot tell the ICCID of the device's %s profile: ThingSpace lists %d ICCIDs for %d carrier lines "+
			"(one per profile was expected), so no action was sent to a profile that might be another one", t,
			len(iccids), len(d.CarrierInformations))
	}
	return iccids[line], nil
}

// StateFor is the state that matters for a profile of type t: the line's, except that a
// Global profile suspended by itself (profile_suspend) makes the device suspended too. A
// PENDING_* line state wins over the Global line's: while a profile_resume is in flight the
// Global line still shows suspended, but the device is on its way back to active.
func StateFor(d tsapi.Device, t ProfileType) tsapi.DeviceState {
	s := LineState(d)
	if t == Global && !s.Pending() {
		if g, ok := GlobalLine(d); ok && tsapi.NormalizeState(g.State) == tsapi.StateSuspended {
			return tsapi.StateSuspended
		}
	}
	return s
}

// ShowsSuspended reports whether a device in state s is suspended, or is being suspended by a
// request in flight. What the provider reads back as `suspended` is where the device is
// going, not where it was: a resume still in flight (from an interrupted apply) must not
// read as "suspended", or a configuration that wants the device suspended would plan no
// change and the resume would land after an apply that said there was nothing to do.
func ShowsSuspended(s tsapi.DeviceState) bool {
	return s == tsapi.StateSuspended || s == tsapi.StatePendingSuspend
}

// deviceIdentifiers is the device's own identifiers as the read shows them: EID, the lead
// ICCID, IMEI, MDN and MSISDN, never the ICCID of a Global or local profile (an entry that
// names one of those is about that profile, and only the identifiers sent should say so).
func deviceIdentifiers(d tsapi.Device) tsapi.DeviceIDs {
	lead := LeadICCID(d)
	var ids tsapi.DeviceIDs
	for _, id := range d.DeviceIDs {
		if tsapi.NormalizeKind(id.Kind) == tsapi.KindICCID && id.ID != lead {
			continue
		}
		ids = append(ids, id)
	}
	return thingspace.JournalIDs(tsapi.DeviceEntry{DeviceIDs: ids})
}

// Prevailing is what most of a group of devices show, for the settings that one value must
// stand for: an imported fleet takes them as its fleet-wide settings, and the devices that
// differ keep their own.
type Prevailing struct {
	// ServicePlan is the Verizon plan most of the devices have.
	ServicePlan string
	// Global is true when more than half of the devices show a Global profile;
	// GlobalServicePlan is then the Global plan most of those have.
	Global            bool
	GlobalServicePlan string
}

// PrevailingOf returns what most of devices show. A nil entry (a device not in the account)
// counts in the total but shows nothing. On a tie the smallest plan code wins, so that the
// answer does not depend on the order of the devices.
func PrevailingOf(devices []*tsapi.Device) Prevailing {
	plans, globalPlans := map[string]int{}, map[string]int{}
	global := 0
	for _, dev := range devices {
		if dev == nil {
			continue
		}
		plans[dev.ServicePlan()]++
		if g, ok := GlobalLine(*dev); ok {
			global++
			globalPlans[g.ServicePlan]++
		}
	}
	p := Prevailing{ServicePlan: mostCommon(plans)}
	if global*2 > len(devices) {
		p.Global, p.GlobalServicePlan = true, mostCommon(globalPlans)
	}
	return p
}

// mostCommon returns the key with the highest count (the smallest such key on a tie).
func mostCommon(counts map[string]int) string {
	best, n := "", -1
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		if counts[k] > n {
			best, n = k, counts[k]
		}
	}
	return best
}
