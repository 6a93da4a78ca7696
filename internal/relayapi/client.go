package relayapi

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

	"github.com/fleetform/terraform-provider-thingspace/internal/retry"
	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// Client talks to the relay's provider-facing API (the wire is described in cmd/thingspace-relay/README.md, section API).
type Client struct {
	base  string
	token string
	http  *http.Client
}

// NewClient returns a client of the relay API at baseURL (scheme://host[:port][/prefix]).
// The HTTP client must not have a timeout shorter than a long-poll; nil gives one without a
// global timeout (each long-poll bounds itself).
func NewClient(baseURL, token string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{base: strings.TrimSuffix(baseURL, "/"), token: token, http: hc}
}

// ErrGone is returned when the relay's retention purged the request (410).
var ErrGone = errors.New("the relay no longer has this request (purged by retention)")

// Error is an unexpected answer of the relay.
type Error struct {
	Method, Path string
	Status       int
	Message      string
	RetryAfter   string
}

func (e *Error) Error() string {
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
func (e *Error) Temporary() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// Register records an action ThingSpace accepted, with every identifier of each device, so
// that a later apply (even after Terraform was killed) finds the open request by any
// identifier of the device. It is idempotent and retried on temporary failures.
func (r *Client) Register(ctx context.Context, requestID, account string, action tsapi.Action, devices []tsapi.DeviceIDs) error {
	body := Registration{Account: account, Action: string(action), Devices: normaliseKinds(devices)}
	return r.retry(ctx, func() error {
		return r.do(ctx, http.MethodPut, "/v1/requests/"+url.PathEscape(requestID), nil, body, nil, 0)
	})
}

// OpenRequests lists the requests of a device that are not terminal yet.
func (r *Client) OpenRequests(ctx context.Context, id tsapi.DeviceID) ([]RequestRef, error) {
	var out DeviceRequests
	p := "/v1/devices/" + url.PathEscape(tsapi.NormalizeKind(id.Kind)+":"+id.ID) + "/requests"
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
// *Error with Status 409.
func (r *Client) PutIntent(ctx context.Context, in Intent) (*Intent, error) {
	body := IntentWrite{Account: in.Account, Action: in.Action, Devices: normaliseKinds(in.Devices),
		BodySHA256: in.BodySHA256, Attempt: in.Attempt, Supersedes: in.Supersedes}
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
// no longer open is a *Error with Status 409, an unknown intent one with Status 404.
func (r *Client) UpdateIntent(ctx context.Context, id, state, requestID, reason string) (*Intent, error) {
	body := IntentChange{State: state, RequestID: requestID, Reason: reason}
	var out Intent
	err := r.retry(ctx, func() error {
		return r.do(ctx, http.MethodPatch, "/v1/intents/"+url.PathEscape(id), nil, body, &out, 0)
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// GetIntent reads an intent; an unknown one is a *Error with Status 404.
func (r *Client) GetIntent(ctx context.Context, id string) (*Intent, error) {
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
func (r *Client) LookupDevices(ctx context.Context, devices []tsapi.DeviceIDs) (records []DeviceRecord, now time.Time, err error) {
	records = make([]DeviceRecord, 0, len(devices))
	for start := 0; start < len(devices); start += MaxLookupDevices {
		chunk := devices[start:min(start+MaxLookupDevices, len(devices))]
		body := LookupRequest{Devices: normaliseKinds(chunk)}
		var out Lookup
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
func (r *Client) Info(ctx context.Context) (*Info, error) {
	var out Info
	err := r.retry(ctx, func() error { return r.do(ctx, http.MethodGet, "/v1/info", nil, nil, &out, 0) })
	return &out, err
}

// Request reads a request's summary.
func (r *Client) Request(ctx context.Context, requestID string) (*RequestSummary, error) {
	var out RequestSummary
	err := r.retry(ctx, func() error {
		return r.do(ctx, http.MethodGet, "/v1/requests/"+url.PathEscape(requestID), nil, nil, &out, 0)
	})
	return &out, err
}

// Callbacks long-polls for callbacks of a request with seq > after, blocking up to wait.
func (r *Client) Callbacks(ctx context.Context, requestID string, after int64, wait time.Duration, limit int) (*CallbackPage, error) {
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
func (r *Client) do(ctx context.Context, method, path string, q url.Values, body, out any, timeout time.Duration, respHeader ...http.Header) error {
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
		return &Error{Method: method, Path: path, Status: resp.StatusCode,
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
func (r *Client) retry(ctx context.Context, f func() error) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = f(); err == nil || !temporary(err) {
			return err
		}
		if serr := retry.Sleep(ctx, clientBackoff.Wait(attempt, RetryAfter(err))); serr != nil {
			return err
		}
	}
	return err
}

// clientBackoff spaces the Client's retries of one call. A Retry-After of 0 is no advice: the
// wait is the growing backoff step, as if the relay had said nothing (a relay restarting is no
// reason to hammer it).
var clientBackoff = retry.Backoff{Base: 200 * time.Millisecond, Max: 5 * time.Second, MinRetryAfter: 200 * time.Millisecond, ZeroIsNoAdvice: true}

// temporary reports whether an error of the relay client may go away by itself.
func temporary(err error) bool {
	if errors.Is(err, ErrGone) {
		return false
	}
	var re *Error
	if errors.As(err, &re) {
		return re.Temporary()
	}
	return !errors.Is(err, context.Canceled)
}

// RetryAfter is the Retry-After header the relay sent with err (an *Error), or "".
func RetryAfter(err error) string {
	var re *Error
	if errors.As(err, &re) {
		return re.RetryAfter
	}
	return ""
}

func normaliseKinds(devices []tsapi.DeviceIDs) []tsapi.DeviceIDs {
	out := make([]tsapi.DeviceIDs, len(devices))
	for i, d := range devices {
		out[i] = make(tsapi.DeviceIDs, 0, len(d))
		for _, id := range d {
			if id.ID != "" {
				out[i] = append(out[i], tsapi.DeviceID{Kind: tsapi.NormalizeKind(id.Kind), ID: id.ID})
			}
		}
	}
	return out
}
