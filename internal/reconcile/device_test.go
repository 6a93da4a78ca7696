package reconcile

import (
	"strings"
	"testing"

	"github.com/fleetform/terraform-provider-thingspace/internal/thingspace"
)

// The ICCID an action on a Global or local profile names: that profile's own, paired with its
// carrier line by position, and only when the device lists one ICCID per carrier line.
func TestProfileICCID(t *testing.T) {
	lines := func(names ...string) []thingspace.CarrierInformation {
		out := make([]thingspace.CarrierInformation, len(names))
		for i, n := range names {
			out[i] = thingspace.CarrierInformation{CarrierName: n, State: "active"}
		}
		return out
	}
	ids := func(iccids ...string) thingspace.DeviceIDs {
		out := thingspace.DeviceIDs{{Kind: "eid", ID: "89049032000000000000000000000001"}}
		for _, c := range iccids {
			out = append(out, thingspace.DeviceID{Kind: "ICCID", ID: c})
		}
		return append(out, thingspace.DeviceID{Kind: "imei", ID: "356938035643809"})
	}
	both := thingspace.Device{CarrierInformations: lines("Verizon Wireless", "Global IoT", "Local MNO"), DeviceIDs: ids("lead", "global", "local")}
	for _, tc := range []struct {
		name          string
		profileType   ProfileType
		dev           thingspace.Device
		want, wantErr string
	}{
		{"global", Global, both, "global", ""},
		{"local", Local, both, "local", ""},
		{"nothing downloaded", Global, thingspace.Device{CarrierInformations: lines("Verizon Wireless"), DeviceIDs: ids("lead")}, "", ""},
		{"local only, asked for global", Global, thingspace.Device{CarrierInformations: lines("Verizon Wireless", "Local MNO"), DeviceIDs: ids("lead", "local")}, "", ""},
		{"fewer ICCIDs than lines", Global, thingspace.Device{CarrierInformations: lines("Verizon Wireless", "Global IoT", "Local MNO"), DeviceIDs: ids("lead", "global")},
			"", "lists 2 ICCIDs for 3 carrier lines"},
		{"only the lead ICCID", Local, thingspace.Device{CarrierInformations: lines("Verizon Wireless", "Local MNO"), DeviceIDs: ids("lead")},
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
		devices []*thingspace.Device
		want    Prevailing
	}{
		{"majority plan", []*thingspace.Device{dev("active", "B"), dev("active", "A"), dev("active", "B")}, Prevailing{ServicePlan: "B"}},
		{"tie: smallest code", []*thingspace.Device{dev("active", "B"), dev("active", "A")}, Prevailing{ServicePlan: "A"}},
		{"global majority", []*thingspace.Device{dev("active", "A", "active", "G2"), dev("active", "A", "active", "G1"),
			dev("active", "A", "active", "G2"), dev("active", "A")}, Prevailing{ServicePlan: "A", Global: true, GlobalServicePlan: "G2"}},
		{"half global is not global", []*thingspace.Device{dev("active", "A", "active", "G1"), dev("active", "A")}, Prevailing{ServicePlan: "A"}},
		{"missing devices count", []*thingspace.Device{dev("active", "A", "active", "G1"), nil}, Prevailing{ServicePlan: "A"}},
		{"none", nil, Prevailing{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := PrevailingOf(tc.devices); got != tc.want {
				t.Fatalf("PrevailingOf = %+v, want %+v", got, tc.want)
			}
		})
	}
}
