package provider

import (
	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// deviceFacts is what the synchronous v1 device list says about one device, as plain Go
// values. It is independent of any Terraform model so that every reader of a v1 device (the
// device data sources, the eSIM profile's Read) maps the API the same way, through
// flattenDevice. The v1 list has no profile status or role: those come only from callbacks.
type deviceFacts struct {
	EID    string
	ICCID  string // the ICCID of the profile the list shows (the enabled one)
	IMEI   string
	MDN    string // "" until the line is activated
	MSISDN string
	// State is the line's state normalised by tsapi.NormalizeState: "active",
	// "suspended", "deactive", "pre-active", "pending_*" or "unknown", whatever spelling
	// ThingSpace used ("Activate", "ACTIVE", "suspend", "Pre-active", ...).
	State       string
	ServicePlan string
	CarrierName string
	Connected   bool
	IPAddress   string
	GroupNames  []string // never nil, so an empty list and a missing one compare equal
	// Dates as ThingSpace spells them (e.g. "2026-01-05T10:42:15-05:00"), "" when absent.
	LastActivationDate string
	CreatedAt          string
}

// flattenDevice maps a v1 device onto deviceFacts. The first carrier information is the
// Verizon line; later ones describe Global or local profiles and are not flattened here.
func flattenDevice(d tsapi.Device) deviceFacts {
	f := deviceFacts{
		EID:                d.DeviceIDs.Get(tsapi.KindEID),
		ICCID:              d.DeviceIDs.Get(tsapi.KindICCID),
		IMEI:               d.DeviceIDs.Get(tsapi.KindIMEI),
		MDN:                d.DeviceIDs.Get(tsapi.KindMDN),
		MSISDN:             d.DeviceIDs.Get(tsapi.KindMSISDN),
		State:              string(d.State()),
		ServicePlan:        d.ServicePlan(),
		Connected:          d.Connected,
		IPAddress:          d.IPAddress,
		GroupNames:         append([]string{}, d.GroupNames...),
		LastActivationDate: d.LastActivationDate,
		CreatedAt:          d.CreatedAt,
	}
	if len(d.CarrierInformations) > 0 {
		f.CarrierName = d.CarrierInformations[0].CarrierName
	}
	return f
}
