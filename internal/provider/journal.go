package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/fleetform/terraform-provider-thingspace/internal/thingspace"
	"github.com/fleetform/terraform-provider-thingspace/internal/wait"
)

// relayJournal records the provider's carrier actions at the relay (see thingspace.Journal).
// Each accepted chunk is registered at once, with every identifier of its devices, so that a
// later apply finds the request by any of them even if Terraform is killed right after.
type relayJournal struct {
	relay *wait.RelayClient
}

func (j relayJournal) Intend(context.Context, thingspace.Action, thingspace.ProfileRequest) (string, error) {
	return "", nil
}

func (j relayJournal) Accepted(ctx context.Context, _ string, action thingspace.Action, body thingspace.ProfileRequest, requestID string) {
	devices := make([]thingspace.DeviceIDs, len(body.Devices))
	for i, d := range body.Devices {
		devices[i] = thingspace.JournalIDs(d)
	}
	if err := j.relay.Register(ctx, requestID, body.AccountName, action, devices); err != nil {
		tflog.Warn(ctx, "could not register the accepted request at the relay", map[string]any{
			"request_id": requestID, "action": string(action), "error": err.Error()})
	}
}

func (j relayJournal) Refused(context.Context, string, error) {}
