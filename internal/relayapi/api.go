package relayapi

import (
	"encoding/json"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// The JSON of the relay's provider-facing API (cmd/thingspace-relay/README.md, section API), one definition of each shape:
// the relay (internal/relay) answers with these types and Client reads them. Devices are
// given as every identifier of each device ([]tsapi.DeviceIDs); kinds are lower case on the
// way out of the relay.

// MaxLookupDevices is the most devices the relay takes in one lookup and in one intent
// (ThingSpace's bulk limit); Client.LookupDevices splits longer lists.
const MaxLookupDevices = 10000

// Intent states: an intent is written open before a carrier action is sent, and leaves open
// once (accepted with the request id ThingSpace answered, refused when ThingSpace answered an
// error, resolved when evidence settled an unknown outcome or a newer intent superseded it).
const (
	IntentOpen     = "open"
	IntentAccepted = "accepted"
	IntentRefused  = "refused"
	IntentResolved = "resolved"
)

// Registration is the body of PUT /v1/requests/{id}: an action ThingSpace accepted.
type Registration struct {
	Account string            `json:"account"`
	Action  string            `json:"action"`
	Devices []tsapi.DeviceIDs `json:"devices"`
}

// RequestSummary is the answer of GET and PUT /v1/requests/{id}.
type RequestSummary struct {
	RequestID     string          `json:"request_id"`
	Account       string          `json:"account"`
	Action        string          `json:"action"`
	State         string          `json:"state"`
	Expected      int             `json:"expected"`
	TerminalCount int             `json:"terminal_count"`
	LastSeq       int64           `json:"last_seq"`
	Devices       []RequestDevice `json:"devices"`
}

// RequestDevice is one registered device of a request and how far it got.
type RequestDevice struct {
	IDs      tsapi.DeviceIDs `json:"ids"`
	Status   string          `json:"status"` // the last status by sequence; a terminal one wins over later warnings
	Terminal bool            `json:"terminal"`
}

// Callback is one stored callback, as the long-poll answers it.
type Callback struct {
	Seq        int64           `json:"seq"`
	ReceivedAt time.Time       `json:"received_at"`
	Status     string          `json:"status"`
	Terminal   bool            `json:"terminal"`
	Body       json.RawMessage `json:"body"`
}

// CallbackPage is the answer of the long-poll GET /v1/requests/{id}/callbacks.
type CallbackPage struct {
	Callbacks []Callback `json:"callbacks"`
	State     string     `json:"state"`
	NextAfter int64      `json:"next_after"`
	// Index is the X-Relay-Index header: the request's last sequence (a header, not JSON).
	Index int64 `json:"-"`
}

// RequestRef is one of a device's requests: an entry of GET /v1/devices/{kind}:{id}/requests
// and of a device record's open_requests.
type RequestRef struct {
	RequestID string    `json:"request_id"`
	Account   string    `json:"account"`
	Action    string    `json:"action"`
	State     string    `json:"state"`
	CreatedAt time.Time `json:"created_at"` // relay clock: registration, or first callback
}

// DeviceRequests is the answer of GET /v1/devices/{kind}:{id}/requests.
type DeviceRequests struct {
	Requests []RequestRef `json:"requests"`
}

// Intent is a write-ahead record of a carrier action at the relay, as GET, PUT and PATCH
// /v1/intents/{id} answer it. Times are the relay's clock.
type Intent struct {
	IntentID   string            `json:"intent_id"`
	Account    string            `json:"account"`
	Action     string            `json:"action"`
	Devices    []tsapi.DeviceIDs `json:"devices"`
	BodySHA256 string            `json:"body_sha256"`
	Attempt    int               `json:"attempt"`
	Supersedes string            `json:"supersedes"`
	State      string            `json:"state"`
	RequestID  string            `json:"request_id"`
	Reason     string            `json:"reason"`
	CreatedAt  time.Time         `json:"created_at"`
	UpdatedAt  time.Time         `json:"updated_at"`
}

// IntentWrite is the body of PUT /v1/intents/{id}. BodySHA256 is tsapi.BodyHash of the
// action's body; Attempt 0 means 1.
type IntentWrite struct {
	Account    string            `json:"account"`
	Action     string            `json:"action"`
	Devices    []tsapi.DeviceIDs `json:"devices"`
	BodySHA256 string            `json:"body_sha256"`
	Attempt    int               `json:"attempt,omitempty"`
	Supersedes string            `json:"supersedes,omitempty"`
}

// IntentChange is the body of PATCH /v1/intents/{id}.
type IntentChange struct {
	State     string `json:"state"`
	RequestID string `json:"request_id,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// LookupRequest is the body of POST /v1/devices/lookup.
type LookupRequest struct {
	Devices []tsapi.DeviceIDs `json:"devices"`
}

// Lookup is the answer of POST /v1/devices/lookup: one record per device, in order, and the
// relay's clock when the lookup started.
type Lookup struct {
	Now     time.Time      `json:"now"`
	Devices []DeviceRecord `json:"devices"`
}

// DeviceRecord is what the relay knows of one device, merged over all its identifiers (the
// answer of GET /v1/devices/{kind}:{id}). The Devices of each open intent are only its
// entries naming this device.
type DeviceRecord struct {
	OpenRequests []RequestRef     `json:"open_requests"`
	OpenIntents  []Intent         `json:"open_intents"`
	Latest       []LatestCallback `json:"latest"`
}

// LatestCallback is the newest terminal callback of one action carrying one of a device's
// identifiers. Action is "" for a request nobody registered (the evidence of an action whose
// answer was lost).
type LatestCallback struct {
	Action     string          `json:"action"`
	RequestID  string          `json:"request_id"`
	Seq        int64           `json:"seq"`
	ReceivedAt time.Time       `json:"received_at"`
	Status     string          `json:"status"`
	Terminal   bool            `json:"terminal"`
	Body       json.RawMessage `json:"body"`
}

// Info is the answer of GET /v1/info.
type Info struct {
	Version         string   `json:"version"`
	IngestURLSHA256 []string `json:"ingest_url_sha256"`
}

// ErrorBody is the body of every error answer of the API.
type ErrorBody struct {
	Error string `json:"error"`
}
