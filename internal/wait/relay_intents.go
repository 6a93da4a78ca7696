package wait

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/thingspace"
)

// Intent states at the relay.
const (
	IntentOpen     = "open"
	IntentAccepted = "accepted"
	IntentRefused  = "refused"
	IntentResolved = "resolved"
)

// Intent is an action recorded at the relay before its POST.
type Intent struct {
	IntentID   string                 `json:"intent_id"`
	Account    string                 `json:"account"`
	Action     string                 `json:"action"`
	Devices    []thingspace.DeviceIDs `json:"devices"`
	BodySHA256 string                 `json:"body_sha256"`
	Attempt    int                    `json:"attempt"`
	Supersedes string                 `json:"supersedes,omitempty"`
	State      string                 `json:"state"`
	RequestID  string                 `json:"request_id,omitempty"`
	Reason     string                 `json:"reason,omitempty"`
	CreatedAt  time.Time              `json:"created_at"`
	UpdatedAt  time.Time              `json:"updated_at"`
}

// LatestCallback is the newest final callback of one action for a device.
type LatestCallback struct {
	Action     string          `json:"action"`
	RequestID  string          `json:"request_id"`
	Seq        int64           `json:"seq"`
	ReceivedAt time.Time       `json:"received_at"`
	Status     string          `json:"status"`
	Terminal   bool            `json:"terminal"`
	Body       json.RawMessage `json:"body"`
}

// DeviceRecord is the relay's record of one device, merged over its identifiers.
type DeviceRecord struct {
	OpenRequests []RequestRef     `json:"open_requests"`
	OpenIntents  []Intent         `json:"open_intents"`
	Latest       []LatestCallback `json:"latest"`
}

// PutIntent writes an intent before its POST.
func (r *RelayClient) PutIntent(ctx context.Context, in Intent) (*Intent, error) {
	body := struct {
		Account    string                 `json:"account"`
		Action     string                 `json:"action"`
		Devices    []thingspace.DeviceIDs `json:"devices"`
		BodySHA256 string                 `json:"body_sha256"`
		Attempt    int                    `json:"attempt"`
		Supersedes string                 `json:"supersedes,omitempty"`
	}{in.Account, in.Action, normaliseKinds(in.Devices), in.BodySHA256, in.Attempt, in.Supersedes}
	var out Intent
	err := r.retry(ctx, func() error {
		return r.do(ctx, http.MethodPut, "/v1/intents/"+url.PathEscape(in.IntentID), nil, body, &out, 0)
	})
	return &out, err
}

// UpdateIntent moves an open intent to state.
func (r *RelayClient) UpdateIntent(ctx context.Context, id, state, requestID, reason string) (*Intent, error) {
	body := map[string]string{"state": state}
	if requestID != "" {
		body["request_id"] = requestID
	}
	if reason != "" {
		body["reason"] = reason
	}
	var out Intent
	err := r.retry(ctx, func() error {
		return r.do(ctx, http.MethodPatch, "/v1/intents/"+url.PathEscape(id), nil, body, &out, 0)
	})
	return &out, err
}

// GetIntent reads an intent.
func (r *RelayClient) GetIntent(ctx context.Context, id string) (*Intent, error) {
	var out Intent
	err := r.retry(ctx, func() error {
		return r.do(ctx, http.MethodGet, "/v1/intents/"+url.PathEscape(id), nil, nil, &out, 0)
	})
	return &out, err
}

// maxLookup is the relay's limit of devices per lookup.
const maxLookup = 10000

// LookupDevices returns the relay's record of each device, and the relay's clock.
func (r *RelayClient) LookupDevices(ctx context.Context, devices []thingspace.DeviceIDs) ([]DeviceRecord, time.Time, error) {
	var out []DeviceRecord
	var now time.Time
	for start := 0; start < len(devices); start += maxLookup {
		chunk := devices[start:min(start+maxLookup, len(devices))]
		var page struct {
			Now     time.Time      `json:"now"`
			Devices []DeviceRecord `json:"devices"`
		}
		err := r.retry(ctx, func() error {
			return r.do(ctx, http.MethodPost, "/v1/devices/lookup", nil, map[string]any{"devices": normaliseKinds(chunk)}, &page, 0)
		})
		if err != nil {
			return nil, time.Time{}, err
		}
		out = append(out, page.Devices...)
		now = page.Now
	}
	return out, now, nil
}
