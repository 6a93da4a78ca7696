package provider

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
		name, profileType string
		dev               thingspace.Device
		want, wantErr     string
	}{
		{"global", profileGlobal, both, "global", ""},
		{"local", profileLocal, both, "local", ""},
		{"nothing downloaded", profileGlobal, thingspace.Device{CarrierInformations: lines("Verizon Wireless"), DeviceIDs: ids("lead")}, "", ""},
		{"local only, asked for global", profileGlobal, thingspace.Device{CarrierInformations: lines("Verizon Wireless", "Local MNO"), DeviceIDs: ids("lead", "local")}, "", ""},
		{"fewer ICCIDs than lines", profileGlobal, thingspace.Device{CarrierInformations: lines("Verizon Wireless", "Global IoT", "Local MNO"), DeviceIDs: ids("lead", "global")},
			"", "lists 2 ICCIDs for 3 carrier lines"},
		{"only the lead ICCID", profileLocal, thingspace.Device{CarrierInformations: lines("Verizon Wireless", "Local MNO"), DeviceIDs: ids("lead")},
			"", "lists 1 ICCIDs for 2 carrier lines"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := profileICCID(tc.dev, tc.profileType)
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
