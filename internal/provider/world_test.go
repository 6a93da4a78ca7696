package provider

import (
	"slices"
	"testing"

	"github.com/fleetform/terraform-provider-thingspace/internal/relayapi"
	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// A request that already sent the device its final callback is not waited on again, even
// while the relay still lists it as open: a bulk request stays open until all its devices are
// done, and one nobody registered (its sender was killed first) stays open for good. Waiting
// on either at every apply would stall the device.
func TestLedger_skipsRequestsDoneForTheDevice(t *testing.T) {
	dev := tsapi.DeviceIDs{{Kind: tsapi.KindEID, ID: "89049032995470350104029245072940"}}
	rec := relayapi.DeviceRecord{
		OpenRequests: []relayapi.RequestRef{
			{RequestID: "bulk", Action: "serviceplan"}, // open for other devices; done for this one
			{RequestID: "orphan", Action: ""},          // never registered; its callback came
			{RequestID: "pending", Action: "activate"}, // no final callback for this device yet
		},
		Latest: []relayapi.LatestCallback{
			{Action: "serviceplan", RequestID: "bulk", Status: "succeeded", Terminal: true, Body: []byte(`{"requestId":"bulk"}`)},
			{Action: "", RequestID: "orphan", Status: "failed", Terminal: true, Body: []byte(`{"requestId":"orphan"}`)},
		},
	}
	var got []string
	for _, r := range ledgerFromRecord(rec, dev).OpenRequests {
		got = append(got, r.RequestID)
	}
	if !slices.Equal(got, []string{"pending"}) {
		t.Fatalf("open requests waited on = %v, want [pending]", got)
	}
}
