// Package wait waits for the per-device results of asynchronous ThingSpace requests: by
// long-polling thingspace-relay (one long-poll per request id per process, shared by every
// waiting resource instance), with polling of ThingSpace's request-status endpoint as the
// fallback when no relay is configured and for devices whose callback never came.
package wait

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/thingspace"
)

// RelayClient talks to the relay's provider-facing API (the wire is described in docs/relay.md).
type RelayClient struct {
	base  string
	token string
	http  *http.Client
}

// NewRelayClient returns a client of the relay API at baseURL (scheme://host[:port][/prefix]).
// The HTTP client must not have a timeout shorter than a long-poll; nil gives one without a
// global timeout (each long-poll bounds itself).
func NewRelayClient(baseURL, token string, hc *http.Client) *RelayClient {
	if hc == nil {
		hc = &http.Client{}
	}
	return &RelayClient{base: strings.TrimSuffix(baseURL, "/"), token: token, http: hc}
}

// ErrGone is returned when the relay's retention purged the request (410).
var ErrGone = errors.New("the relay no longer has this request (purged by retention)")

// RelayError is an unexpected answer of the relay.
type RelayError struct {
	Method, Path string
	Status       int
	Message      string
	RetryAfter   string
}

func (e *RelayError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	hint := ""
	if e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden {
		hint = " (check relay_token, and that the token is allowed this account)"
	}
	return fmt.Sprintf("relay %s %s: HTTP %d: %s%s", e.Method, e.Path, e.Status, msg, hint)
}

// Temporary reports whether trying again later may succeed.
func (e *RelayError) Temporary() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// RequestRef is one of a device's requests known to the relay.
type RequestRef struct {
	RequestID string    `json:"request_id"`
	Account   string    `json:"account"`
	Action    string    `json:"action"`
	State     string    `json:"state"`
	CreatedAt time.Time `json:"created_at,omitempty"` // relay clock: registration, or first callback
}

// Intent states: an intent is written open before a carrier action is sent, and leaves open
// once (accepted with the request id ThingSpace answered, refused when ThingSpace answered an
// error, resolved when evidence settled an unknown outcome or a newer intent superseded it).
const (
	IntentOpen     = "open"
	IntentAccepted = "accepted"
	IntentRefused  = "refused"
	IntentResolved = "resolved"
)

// Intent is a write-ahead record of a carrier action at the relay. Times are the relay's clock.
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

// DeviceRecord is what the relay knows of one device, merged over all its identifiers. The
// Devices of each open intent are only its entries naming this device.
type DeviceRecord struct {
	OpenRequests []RequestRef     `json:"open_requests"`
	OpenIntents  []Intent         `json:"open_intents"`
	Latest       []LatestCallback `json:"latest"`
}

// MaxLookupDevices is the most devices the relay takes in one lookup; LookupDevices splits
// longer lists.
const MaxLookupDevices = 10000

// Info is the relay's GET /v1/info.
type Info struct {
	Version         string   `json:"version"`
	IngestURLSHA256 []string `json:"ingest_url_sha256"`
}

// RequestSummary is GET /v1/requests/{id}.
type RequestSummary struct {
	RequestID     string `json:"request_id"`
	Account       string `json:"account"`
	Action        string `json:"action"`
	State         string `json:"state"`
	Expected      int    `json:"expected"`
	TerminalCount int    `json:"terminal_count"`
	LastSeq       int64  `json:"last_seq"`
	Devices       []struct {
		IDs      thingspace.DeviceIDs `json:"ids"`
		Status   string               `json:"status"`
		Terminal bool                 `json:"terminal"`
	} `json:"devices"`
}

// StoredCallback is one callback as the relay returns it.
type StoredCallback struct {
	Seq        int64           `json:"seq"`
	ReceivedAt time.Time       `json:"received_at"`
	Status     string          `json:"status"`
	Terminal   bool            `json:"terminal"`
	Body       json.RawMessage `json:"body"`
}

// CallbackPage is one answer of the long-poll.
type CallbackPage struct {
	Callbacks []StoredCallback `json:"callbacks"`
	State     string           `json:"state"`
	NextAfter int64            `json:"next_after"`
	// Index is the X-Relay-Index header: the request's last sequence.
	Index int64 `json:"-"`
}

// Register records an action ThingSpace accepted, with every identifier of each device, so
// that a later apply (even after Terraform was killed) finds the open request by any
// identifier of the device. It is idempotent and retried on temporary failures.
func (r *RelayClient) Register(ctx context.Context, requestID, account string, action thingspace.Action, devices []thingspace.DeviceIDs) error {
	body := struct {
		Account string                 `json:"account"`
		Action  string                 `json:"action"`
		Devices []thingspace.DeviceIDs `json:"devices"`
	}{account, string(action), normaliseKinds(devices)}
	return r.retry(ctx, func() error {
		return r.do(ctx, http.MethodPut, "/v1/requests/"+url.PathEscape(requestID), nil, body, nil, 0)
	})
}

// OpenRequests lists the requests of a device that are not terminal yet.
func (r *RelayClient) OpenRequests(ctx context.Context, id thingspace.DeviceID) ([]RequestRef, error) {
	var out struct {
		Requests []RequestRef `json:"requests"`
	}
	p := "/v1/devices/" + url.PathEscape(thingspace.NormalizeKind(id.Kind)+":"+id.ID) + "/requests"
	err := r.retry(ctx, func() error {
		return r.do(ctx, http.MethodGet, p, url.Values{"open": {"true"}}, nil, &out, 0)
	})
	return out.Requests, err
}

// PutIntent writes an intent before its carrier action is sent: in.IntentID (client-made,
// [A-Za-z0-9._:-]{1,128}), Account, Action, Devices, BodySHA256, and Attempt and Supersedes
// when set. It returns the stored intent once it is durable at the relay. Writing the same
// intent again (same account, action, devices and body hash) returns the stored one, so the
// call is retried on temporary failures like the others; anything else under the same id is a
// *RelayError with Status 409.
func (r *RelayClient) PutIntent(ctx context.Context, in Intent) (*Intent, error) {
	body := struct {
		Account    string                 `json:"account"`
		Action     string                 `json:"action"`
		Devices    []thingspace.DeviceIDs `json:"devices"`
		BodySHA256 string                 `json:"body_sha256"`
		Attempt    int                    `json:"attempt,omitempty"`
		Supersedes string                 `json:"supersedes,omitempty"`
	}{in.Account, in.Action, normaliseKinds(in.Devices), in.BodySHA256, in.Attempt, in.Supersedes}
	var out Intent
	err := r.retry(ctx, func() error {
		return r.do(ctx, http.MethodPut, "/v1/intents/"+url.PathEscape(in.IntentID), nil, body, &out, 0)
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateIntent moves an open intent to state: IntentAccepted with the request id ThingSpace
// answered (the relay registers the request in the same transaction), IntentRefused with a
// reason, or IntentResolved with a reason and optionally the request id that settled it. The
// same change again succeeds (so it is retried like the others); another change of an intent
// no longer open is a *RelayError with Status 409, an unknown intent one with Status 404.
func (r *RelayClient) UpdateIntent(ctx context.Context, id, state, requestID, reason string) (*Intent, error) {
	body := struct {
		State     string `json:"state"`
		RequestID string `json:"request_id,omitempty"`
		Reason    string `json:"reason,omitempty"`
	}{state, requestID, reason}
	var out Intent
	err := r.retry(ctx, func() error {
		return r.do(ctx, http.MethodPatch, "/v1/intents/"+url.PathEscape(id), nil, body, &out, 0)
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// GetIntent reads an intent; an unknown one is a *RelayError with Status 404.
func (r *RelayClient) GetIntent(ctx context.Context, id string) (*Intent, error) {
	var out Intent
	err := r.retry(ctx, func() error {
		return r.do(ctx, http.MethodGet, "/v1/intents/"+url.PathEscape(id), nil, nil, &out, 0)
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// LookupDevices returns one record per device, in order, each merged over all the device's
// identifiers. It splits more than MaxLookupDevices devices into several calls itself; now is
// the relay's clock when the first call started (no devices: no call, and a zero now).
func (r *RelayClient) LookupDevices(ctx context.Context, devices []thingspace.DeviceIDs) (records []DeviceRecord, now time.Time, err error) {
	records = make([]DeviceRecord, 0, len(devices))
	for start := 0; start < len(devices); start += MaxLookupDevices {
		chunk := devices[start:min(start+MaxLookupDevices, len(devices))]
		body := struct {
			Devices []thingspace.DeviceIDs `json:"devices"`
		}{normaliseKinds(chunk)}
		var out struct {
			Now     time.Time      `json:"now"`
			Devices []DeviceRecord `json:"devices"`
		}
		err := r.retry(ctx, func() error {
			out.Devices = nil
			return r.do(ctx, http.MethodPost, "/v1/devices/lookup", nil, body, &out, 0)
		})
		if err != nil {
			return nil, time.Time{}, err
		}
		if len(out.Devices) != len(chunk) {
			return nil, time.Time{}, fmt.Errorf("relay POST /v1/devices/lookup: %d records for %d devices", len(out.Devices), len(chunk))
		}
		if start == 0 {
			now = out.Now
		}
		records = append(records, out.Devices...)
	}
	return records, now, nil
}

// Info reads GET /v1/info.
func (r *RelayClient) Info(ctx context.Context) (*Info, error) {
	var out Info
	err := r.retry(ctx, func() error { return r.do(ctx, http.MethodGet, "/v1/info", nil, nil, &out, 0) })
	return &out, err
}

// Request reads a request's summary.
func (r *RelayClient) Request(ctx context.Context, requestID string) (*RequestSummary, error) {
	var out RequestSummary
	err := r.retry(ctx, func() error {
		return r.do(ctx, http.MethodGet, "/v1/requests/"+url.PathEscape(requestID), nil, nil, &out, 0)
	})
	return &out, err
}

// Callbacks long-polls for callbacks of a request with seq > after, blocking up to wait.
func (r *RelayClient) Callbacks(ctx context.Context, requestID string, after int64, wait time.Duration, limit int) (*CallbackPage, error) {
	q := url.Values{"after": {strconv.FormatInt(after, 10)}, "wait": {wait.String()}}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out CallbackPage
	// The long-poll's own bound: the wait, the relay's jitter (wait/16), and a margin.
	timeout := wait + wait/16 + 10*time.Second
	hdr := http.Header{}
	err := r.do(ctx, http.MethodGet, "/v1/requests/"+url.PathEscape(requestID)+"/callbacks", q, nil, &out, timeout, hdr)
	if err != nil {
		return nil, err
	}
	if v := hdr.Get("X-Relay-Index"); v != "" {
		out.Index, _ = strconv.ParseInt(v, 10, 64)
	}
	return &out, nil
}

// do runs one exchange. respHeader, when given, receives the answer's headers.
func (r *RelayClient) do(ctx context.Context, method, path string, q url.Values, body, out any, timeout time.Duration, respHeader ...http.Header) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	} else {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	u := r.base + path
	if q != nil {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return fmt.Errorf("relay %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	for _, h := range respHeader {
		for k, v := range resp.Header {
			h[k] = v
		}
	}
	if resp.StatusCode == http.StatusGone {
		return ErrGone
	}
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return &RelayError{Method: method, Path: path, Status: resp.StatusCode,
			Message: strings.TrimSpace(string(b)), RetryAfter: resp.Header.Get("Retry-After")}
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 256<<20)).Decode(out); err != nil {
		return fmt.Errorf("relay %s %s: decoding the answer: %w", method, path, err)
	}
	return nil
}

// retry runs f until it succeeds, fails permanently, or five attempts passed; temporary
// failures (network, 429, 5xx) back off with jitter and honour Retry-After.
func (r *RelayClient) retry(ctx context.Context, f func() error) error {
	b := newBackoff(200*time.Millisecond, 5*time.Second)
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = f(); err == nil || !temporary(err) {
			return err
		}
		if serr := thingspace.SleepContext(ctx, b.next(retryAfterOf(err))); serr != nil {
			return err
		}
	}
	return err
}

// temporary reports whether an error of the relay client may go away by itself.
func temporary(err error) bool {
	if errors.Is(err, ErrGone) {
		return false
	}
	var re *RelayError
	if errors.As(err, &re) {
		return re.Temporary()
	}
	return !errors.Is(err, context.Canceled)
}

func retryAfterOf(err error) time.Duration {
	var re *RelayError
	if errors.As(err, &re) && re.RetryAfter != "" {
		if s, perr := strconv.Atoi(re.RetryAfter); perr == nil {
			return time.Duration(s) * time.Second
		}
	}
	return 0
}

func normaliseKinds(devices []thingspace.DeviceIDs) []thingspace.DeviceIDs {
	out := make([]thingspace.DeviceIDs, len(devices))
	for i, d := range devices {
		out[i] = make(thingspace.DeviceIDs, 0, len(d))
		for _, id := range d {
			if id.ID != "" {
				out[i] = append(out[i], thingspace.DeviceID{Kind: thingspace.NormalizeKind(id.Kind), ID: id.ID})
			}
		}
	}
	return out
}
