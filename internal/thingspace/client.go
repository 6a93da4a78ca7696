// Package thingspace is a thin client of Verizon ThingSpace's Connectivity Management (M2M) API
// for eSIM profiles. It owns authentication (OAuth2 client credentials plus the M2M session),
// retries, the provider-wide rate limit and bulk splitting, so that callers deal only in typed
// requests and answers. The requests, answers and callbacks themselves (the JSON) are
// internal/tsapi's, which the relay and the simulator share without linking this client; the
// waits between retries are internal/retry's. It imports nothing from Terraform.
package thingspace

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/fleetform/terraform-provider-thingspace/internal/retry"
	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// Version is the client's version, used in the default User-Agent.
const Version = "0.1.0"

// Defaults of Config.
const (
	DefaultBaseURL           = "https://thingspace.verizon.com"
	DefaultRequestsPerSecond = 25
	DefaultBurst             = 50
	DefaultBulkSize          = 10000
	DefaultMaxRetries        = 6
	DefaultRetryBaseDelay    = 500 * time.Millisecond
	DefaultRetryMaxDelay     = 30 * time.Second
	DefaultHTTPTimeout       = 60 * time.Second
)

// Config configures a Client. Only the credentials are required.
type Config struct {
	// BaseURL is scheme://host[:port]; the client appends /api/ts/v1/... and /api/m2m/....
	BaseURL      string
	ClientID     string
	ClientSecret string
	Username     string
	Password     string

	// HTTPClient sends every request; its Timeout bounds one attempt. Default: 60 s timeout.
	HTTPClient *http.Client
	// UserAgent is sent on every request. Default "thingspace-go/<Version>".
	UserAgent string
	// RequestsPerSecond and Burst set the client-wide rate limit shared by every call.
	RequestsPerSecond float64
	Burst             int
	// BulkSize is the largest number of devices sent in one action call. It starts at the
	// documented 10,000 and halves (remembered for the client's life) whenever ThingSpace
	// answers MaxRequestsExceeded or NumberofDevices.
	BulkSize int
	// MaxRetries bounds the retries of one call (429, and 5xx / network errors on reads).
	MaxRetries int
	// RetryBaseDelay and RetryMaxDelay shape the exponential backoff (with full jitter) used
	// when the server sends no Retry-After.
	RetryBaseDelay time.Duration
	RetryMaxDelay  time.Duration
	// ReadTTL is how long the snapshot of a device listing serves reads that accept data that
	// old (see ReadCoalescer); default 30 s. ReadWindow is the longest a read waits for others
	// to share its listing; default 100 ms.
	ReadTTL    time.Duration
	ReadWindow time.Duration
}

// Client talks to one ThingSpace endpoint with one set of credentials. It is safe for
// concurrent use; concurrent callers share one OAuth token and one M2M session.
type Client struct {
	base      *url.URL
	http      *http.Client
	userAgent string
	limiter   *rate.Limiter
	bulkSize  atomic.Int64
	retries   int
	backoff   retry.Backoff
	// pause waits between retries; tests replace it to see the waits without spending them.
	pause func(ctx context.Context, d time.Duration) error
	// journal records each action chunk before it is sent (see Journal); nil: none.
	journal Journal
	// reads coalesces device reads into shared listings (see ReadCoalescer).
	reads *ReadCoalescer

	auth *authenticator
}

// New validates cfg and returns a Client. It sends nothing: logins happen lazily.
func New(cfg Config) (*Client, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	base, err := ParseBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, f := range []struct{ name, v string }{
		{"client_id", cfg.ClientID}, {"client_secret", cfg.ClientSecret},
		{"username", cfg.Username}, {"password", cfg.Password},
	} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("thingspace: missing credentials: %s", strings.Join(missing, ", "))
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "thingspace-go/" + Version
	}
	if cfg.RequestsPerSecond <= 0 {
		cfg.RequestsPerSecond = DefaultRequestsPerSecond
	}
	if cfg.Burst <= 0 {
		cfg.Burst = max(1, int(cfg.RequestsPerSecond*2))
	}
	if cfg.BulkSize <= 0 {
		cfg.BulkSize = DefaultBulkSize
	}
	if cfg.MaxRetries < 0 {
		cfg.MaxRetries = 0
	} else if cfg.MaxRetries == 0 {
		cfg.MaxRetries = DefaultMaxRetries
	}
	if cfg.RetryBaseDelay <= 0 {
		cfg.RetryBaseDelay = DefaultRetryBaseDelay
	}
	if cfg.RetryMaxDelay <= 0 {
		cfg.RetryMaxDelay = DefaultRetryMaxDelay
	}
	if cfg.ReadTTL <= 0 {
		cfg.ReadTTL = DefaultReadTTL
	}
	if cfg.ReadWindow <= 0 {
		cfg.ReadWindow = DefaultReadWindow
	}
	c := &Client{
		base:      base,
		http:      cfg.HTTPClient,
		userAgent: cfg.UserAgent,
		limiter:   rate.NewLimiter(rate.Limit(cfg.RequestsPerSecond), cfg.Burst),
		retries:   cfg.MaxRetries,
		backoff:   retry.Backoff{Base: cfg.RetryBaseDelay, Max: cfg.RetryMaxDelay},
		pause:     retry.Sleep,
	}
	c.bulkSize.Store(int64(cfg.BulkSize))
	c.auth = newAuthenticator(c, cfg)
	c.reads = newReadCoalescer(c, cfg.ReadTTL, cfg.ReadWindow)
	return c, nil
}

// ParseBaseURL checks that s is scheme://host[:port] with scheme http or https and no path,
// query or fragment (a trailing "/" is tolerated).
func ParseBaseURL(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSuffix(s, "/"))
	if err != nil {
		return nil, fmt.Errorf("base URL %q is not a URL: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("base URL %q must start with https:// (or http://)", s)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("base URL %q has no host", s)
	}
	if u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("base URL %q must be scheme://host[:port] only; the client adds /api/... itself", s)
	}
	return u, nil
}

// BulkSize returns the current largest number of devices per action call.
func (c *Client) BulkSize() int { return int(c.bulkSize.Load()) }

// loggerKey carries a *slog.Logger in a context.
type loggerKey struct{}

// WithLogger returns a context whose calls log through l. The client logs method, path,
// status, attempt and timing; never credentials, tokens or bodies of auth calls.
func WithLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, l)
}

var discard = slog.New(slog.DiscardHandler)

// Logger returns the logger WithLogger put into ctx, or one that discards.
func Logger(ctx context.Context) *slog.Logger { return logger(ctx) }

// limitWait estimates how long a call waits for the rate limiter now: the tokens the calls
// already queued have taken, at the configured rate.
func (c *Client) limitWait() time.Duration {
	tokens, limit := c.limiter.Tokens(), float64(c.limiter.Limit())
	if tokens >= 1 || limit <= 0 {
		return 0
	}
	return time.Duration((1 - tokens) / limit * float64(time.Second))
}

func logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok && l != nil {
		return l
	}
	return discard
}

// callKind decides what may be retried.
type callKind int

const (
	// kindRead may be retried on 429, 5xx and network errors: it changes nothing.
	kindRead callKind = iota
	// kindAction changes a device: retried only on 429 and on errors that prove the request
	// never reached ThingSpace (a refused connection); otherwise the outcome is unknown.
	kindAction
	// kindRegistration changes the account's callback registration. Registering or deleting
	// twice is harmless, so it is retried like a read.
	kindRegistration
)

// call describes one HTTP exchange.
type call struct {
	method  string
	path    string // below the base URL, starting with /api/
	query   url.Values
	body    any
	kind    callKind
	session bool // sends VZ-M2M-Token
	out     any
	// action and devices describe an action call for OutcomeUnknownError.
	action  tsapi.Action
	devices []tsapi.DeviceEntry
}

// do runs a call with authentication, the rate limit and the retry policy of its kind.
func (c *Client) do(ctx context.Context, cl call) (*http.Response, error) {
	var payload []byte
	if cl.body != nil {
		var err error
		if payload, err = json.Marshal(cl.body); err != nil {
			return nil, fmt.Errorf("encoding %s %s: %w", cl.method, cl.path, err)
		}
	}
	log := logger(ctx)
	refreshedToken := false
	// A session can expire again while a call waits out 429s after a new login: each session
	// the call used may be replaced once, up to maxSessionLogins new logins per call.
	var replacedSessions []string
	for attempt := 0; ; attempt++ {
		if wait := c.limitWait(); wait >= time.Second {
			// Thousands of reads or actions queue here: say so, or a long plan looks stuck.
			log.Info("waiting for the provider's rate limit before calling ThingSpace", "method", cl.method, "path", cl.path,
				"wait", wait.Round(100*time.Millisecond).String(), "requests_per_second", float64(c.limiter.Limit()))
		}
		if err := c.limiter.Wait(ctx); err != nil {
			return nil, fmt.Errorf("%s %s: waiting for the rate limit: %w", cl.method, cl.path, err)
		}
		token, err := c.auth.accessToken(ctx)
		if err != nil {
			return nil, err
		}
		var session string
		if cl.session {
			if session, err = c.auth.sessionToken(ctx); err != nil {
				return nil, err
			}
		}
		req, err := c.newRequest(ctx, cl, payload)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		if cl.session {
			req.Header.Set("VZ-M2M-Token", session)
		}
		start := time.Now()
		resp, err := c.http.Do(req)
		if err != nil {
			log.Debug("thingspace call failed", "method", cl.method, "path", cl.path, "attempt", attempt+1, "error", err.Error())
			if ctx.Err() != nil && cl.kind != kindAction {
				return nil, fmt.Errorf("%s %s: %w", cl.method, cl.path, ctx.Err())
			}
			if cl.kind == kindAction && !neverSent(err) {
				return nil, &OutcomeUnknownError{Action: cl.action, Devices: cl.devices, Cause: err}
			}
			if attempt >= c.retries {
				return nil, fmt.Errorf("%s %s: giving up after %d attempts: %w", cl.method, cl.path, attempt+1, err)
			}
			if err := c.sleep(ctx, c.backoff.Delay(attempt)); err != nil {
				return nil, err
			}
			continue
		}
		log.Debug("thingspace call", "method", cl.method, "path", cl.path, "status", resp.StatusCode,
			"attempt", attempt+1, "duration_ms", time.Since(start).Milliseconds())
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			if cl.out != nil {
				err := decodeBody(resp, cl.out)
				if err != nil && cl.kind == kindAction {
					// ThingSpace answered 2xx, so it may well have applied the action: an answer
					// that cannot be read is not a refusal.
					return resp, &OutcomeUnknownError{Action: cl.action, Devices: cl.devices,
						Cause: fmt.Errorf("the answer to %s %s could not be decoded: %w", cl.method, cl.path, err)}
				}
				if err != nil {
					return resp, fmt.Errorf("%s %s: decoding the answer: %w", cl.method, cl.path, err)
				}
			} else {
				drain(resp)
			}
			return resp, nil
		}
		apiErr := readError(resp, cl.method, cl.path)
		switch {
		case resp.StatusCode == http.StatusTooManyRequests:
			if attempt >= c.retries {
				return nil, apiErr
			}
			wait := c.backoff.Wait(attempt, resp.Header.Get("Retry-After"))
			from := "the client's backoff (no Retry-After)"
			if h := resp.Header.Get("Retry-After"); h != "" {
				from = "ThingSpace's Retry-After: " + h
			}
			log.Info("ThingSpace asked to slow down (HTTP 429); waiting before trying again", "method", cl.method, "path", cl.path,
				"code", apiErr.Code, "attempt", attempt+1, "max_attempts", c.retries+1, "retry_in", wait.String(),
				"retry_at", time.Now().Add(wait).Format(time.RFC3339), "wait_from", from)
			if err := c.sleep(ctx, wait); err != nil {
				return nil, err
			}
			continue
		case resp.StatusCode >= 500:
			if cl.kind == kindAction {
				return nil, &OutcomeUnknownError{Action: cl.action, Devices: cl.devices, Cause: apiErr}
			}
			if attempt >= c.retries {
				return nil, apiErr
			}
			if err := c.sleep(ctx, c.backoff.Wait(attempt, resp.Header.Get("Retry-After"))); err != nil {
				return nil, err
			}
			continue
		case tokenRejected(apiErr) && !refreshedToken:
			// An OAuth token the gateway no longer accepts: fetch a new one, once per call.
			refreshedToken = true
			c.auth.invalidateToken(token)
			continue
		case cl.session && sessionRejected(apiErr) && !slices.Contains(replacedSessions, session) &&
			len(replacedSessions) < maxSessionLogins:
			// The M2M session expired (20 minutes idle): log in again.
			replacedSessions = append(replacedSessions, session)
			log.Info("ThingSpace M2M session expired; logging in again")
			c.auth.invalidateSession(session)
			continue
		}
		return nil, apiErr
	}
}

// maxSessionLogins bounds the new M2M logins one call may make after its session expired.
const maxSessionLogins = 3

func (c *Client) newRequest(ctx context.Context, cl call, payload []byte) (*http.Request, error) {
	u := *c.base
	u.Path = cl.path
	if cl.query != nil {
		u.RawQuery = cl.query.Encode()
	}
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", cl.method, cl.path, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// neverSent reports whether a transport error proves the request did not reach the server:
// the connection could not be made at all.
func neverSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

func (c *Client) sleep(ctx context.Context, d time.Duration) error { return c.pause(ctx, d) }

// maxBodyBytes bounds the answers the client reads (a 10,000-device list page is far below).
const maxBodyBytes = 64 << 20

func decodeBody(resp *http.Response, out any) error {
	defer resp.Body.Close()
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxBodyBytes))
	if err := dec.Decode(out); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBodyBytes))
	_ = resp.Body.Close()
}

// readError turns an error answer into *Error, understanding ThingSpace's envelope
// {"errorCode","errorMessage"} and the gateway's {"fault":{"code","message"}}.
func readError(resp *http.Response, method, path string) *Error {
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &Error{HTTPStatus: resp.StatusCode, Method: method, Path: path, RetryAfter: resp.Header.Get("Retry-After")}
	var env tsapi.ErrorResponse
	if json.Unmarshal(b, &env) == nil && (env.ErrorCode != "" || env.ErrorMessage != "") {
		e.Code, e.Message = env.ErrorCode, env.ErrorMessage
		return e
	}
	var gw tsapi.GatewayFault
	if json.Unmarshal(b, &gw) == nil && gw.Fault.Code != "" {
		e.Code, e.Message = gw.Fault.Code.String(), gw.Fault.Message
		if gw.Fault.Description != "" {
			e.Message += ": " + gw.Fault.Description
		}
		return e
	}
	e.Message = strings.TrimSpace(string(b))
	if len(e.Message) > 300 {
		e.Message = e.Message[:300] + "..."
	}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}

// accountPath escapes an account name for use in a path segment.
func accountPath(account string) string { return url.PathEscape(account) }

// requireAccount rejects an empty account name before anything is sent.
func requireAccount(account string) error {
	if strings.TrimSpace(account) == "" {
		return errors.New("thingspace: account name is required")
	}
	return nil
}

// LogValue keeps the secrets out of a Config logged with slog: the client secret and the
// password show only whether they are set.
func (cfg Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("base_url", cfg.BaseURL), slog.String("client_id", cfg.ClientID),
		slog.String("client_secret", tsapi.Redacted(cfg.ClientSecret)), slog.String("username", cfg.Username),
		slog.String("password", tsapi.Redacted(cfg.Password)), slog.Float64("requests_per_second", cfg.RequestsPerSecond),
		slog.Int("bulk_size", cfg.BulkSize))
}
