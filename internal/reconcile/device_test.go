package reconcile

import (
	"strings"
	"testing"

	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// The ICCID an action on a Global or local profile names: that profile's own, paired with its
// carrier line by position, and only when the device lists one ICCID per carrier line.
func TestProfileICCID(t *testing.T) {
	lines := func(names ...string) []tsapi.CarrierInformation {
		out := make([]tsapi.CarrierInformation, len(names))
		for i, n := range names {
			out[i] = tsapi.CarrierInformation{CarrierName: n, State: "active"}
		}
		return out
	}
	ids := func(iccids ...string) tsapi.DeviceIDs {
		out := tsapi.DeviceIDs{{Kind: "eid", ID: "89049032000000000000000000000001"}}
		for _, c := range iccids {
			out = append(out, tsapi.DeviceID{Kind: "ICCID", ID: c})
		}
		return append(out, tsapi.DeviceID{Kind: "imei", ID: "356938035643809"})
	}
	both := tsapi.Device{CarrierInformations: lines("Verizon Wireless", "Global IoT", "Local MNO"), DeviceIDs: ids("lead", "global", "local")}
	for _, tc := range []struct {
		name          string
		profileType   ProfileType
		dev           tsapi.Device
		want, wantErr string
	}{
		{"global", Global, both, "global", ""},
		{"local", Local, both, "local", ""},
		{"nothing downloaded", Global, tsapi.Device{CarrierInformations: lines("Verizon Wireless"), DeviceIDs: ids("lead")}, "", ""},
		{"local only, asked for global", Global, tsapi.Device{CarrierInformations: lines("Verizon Wireless", "Local MNO"), DeviceIDs: ids("lead", "local")}, "", ""},
		{"fewer ICCIDs than lines", Global, tsapi.Device{CarrierInformations: lines("Verizon Wireless", "Global IoT", "Local MNO"), DeviceIDs: ids("lead", "global")},
			"", "lists 2 ICCIDs for 3 carrier lines"},
		{"only the lead ICCID", Local, tsapi.Device{CarrierInformations: lines("Verizon Wireless", "Local MNO"), DeviceIDs: ids("lead")},
			"", "lists 1 ICCIDs for 2 carrier lines"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ProfileICCID(tc.dev, tc.profileType)
			switch {
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
			case tc.wantErr == "" && err != nil:
				t.Fatal(err)
			case got != tc.want:
				t.Fatalf("ICCID = %q, want %q", got, tc.want)
			}
		})
	}
}

// An imported fleet's settings: the plan most devices have (the smallest code on a tie), and
// Global only when more than half of all the devices, those not found included, show a Global
// profile.
func TestPrevailingOf(t *testing.T) {
	for _, tc := range []struct {
		name    string
		devices []*tsapi.Device
		want    Prevailing
	}{
		{"majority plan", []*tsapi.Device{dev("active", "B"), dev("active", "A"), dev("active", "B")}, Prevailing{ServicePlan: "B"}},
		{"tie: smallest code", []*tsapi.Device{dev("active", "B"), dev("active", "A")}, Prevailing{ServicePlan: "A"}},
		{"global majority", []*tsapi.Device{dev("active", "A", "active", "G2"), dev("active", "A", "active", "G1"),
			dev("active", "A", "active", "G2"), dev("active", "A")}, Prevailing{ServicePlan: "A", Global: true, GlobalServicePlan: "G2"}},
		{"half global is not global", []*tsapi.Device{dev("active", "A", "active", "G1"), dev("active", "A")}, Prevailing{ServicePlan: "A"}},
		{"missing devices count", []*tsapi.Device{dev("active", "A", "active", "G1"), nil}, Prevailing{ServicePlan: "A"}},
		{"none", nil, Prevailing{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := PrevailingOf(tc.devices); got != tc.want {
				t.Fatalf("PrevailingOf = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// What the provider reads back as a device's state and `suspended`: a request in flight
// counts as where it takes the device, also for a Global profile whose own line still shows
// suspended while its profile_resume is pending.
func TestStateForAndShowsSuspended(t *testing.T) {
	dev := func(lead, global string) tsapi.Device {
		d := tsapi.Device{CarrierInformations: []tsapi.CarrierInformation{{CarrierName: "Verizon Wireless", State: lead}}}
		if global != "" {
			d.CarrierInformations = append(d.CarrierInformations, tsapi.CarrierInformation{CarrierName: "Verizon Global", State: global})
		}
		return d
	}
	for _, tc := range []struct {
		name          string
		t             ProfileType
		d             tsapi.Device
		want          tsapi.DeviceState
		wantSuspended bool
	}{
		{"US active", VerizonUS, dev("Active", ""), tsapi.StateActive, false},
		{"US suspended", VerizonUS, dev("Suspend", ""), tsapi.StateSuspended, true},
		{"US suspend in flight", VerizonUS, dev("PENDING_SUSPEND", ""), tsapi.StatePendingSuspend, true},
		{"US resume in flight", VerizonUS, dev("PENDING_RESUME", ""), tsapi.StatePendingResume, false},
		{"Global profile suspended by itself", Global, dev("Active", "Suspend"), tsapi.StateSuspended, true},
		{"Global profile_resume in flight", Global, dev("PENDING_RESUME", "Suspend"), tsapi.StatePendingResume, false},
		{"Global profile_suspend in flight", Global, dev("PENDING_SUSPEND", "Active"), tsapi.StatePendingSuspend, true},
		{"US profile beside a suspended Global one", VerizonUS, dev("Active", "Suspend"), tsapi.StateActive, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := StateFor(tc.d, tc.t)
			if got != tc.want || ShowsSuspended(got) != tc.wantSuspended {
				t.Fatalf("StateFor = %q (ShowsSuspended %v), want %q (%v)", got, ShowsSuspended(got), tc.want, tc.wantSuspended)
			}
		})
	}
}
