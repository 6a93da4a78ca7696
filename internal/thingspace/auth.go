package thingspace

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// Paths of the authentication endpoints.
const (
	PathToken  = "/api/ts/v1/oauth2/token"
	PathLogin  = "/api/m2m/v1/session/login"
	PathLogout = "/api/m2m/v1/session/logout"
)

// tokenExpiryDelta renews the OAuth token this long before it expires.
const tokenExpiryDelta = time.Minute

// authenticator holds the OAuth2 token and the M2M session token shared by every call of a
// Client.
type authenticator struct {
	c        *Client
	oauth    clientcredentials.Config
	oauthCtx context.Context // carries the retrying HTTP client for token calls

	tokMu sync.Mutex
	ts    oauth2.TokenSource

	// sessSem serialises logins (a channel so that a waiting caller can give up on its ctx):
	// concurrent callers share one login, and a refused login is never repeated, because five
	// failed logins lock a real ThingSpace account.
	sessSem  chan struct{}
	session  string
	loginErr error
	username string
	password string
}

func newAuthenticator(c *Client, cfg Config) *authenticator {
	tokenURL := *c.base
	tokenURL.Path = PathToken
	a := &authenticator{
		c: c,
		oauth: clientcredentials.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			TokenURL:     tokenURL.String(),
			AuthStyle:    oauth2.AuthStyleInHeader,
		},
		sessSem:  make(chan struct{}, 1),
		username: cfg.Username,
		password: cfg.Password,
	}
	tokenHTTP := &http.Client{
		Timeout:   c.http.Timeout,
		Transport: &tokenTransport{c: c, base: transportOf(c.http)},
	}
	a.oauthCtx = context.WithValue(context.Background(), oauth2.HTTPClient, tokenHTTP)
	a.ts = a.newTokenSource()
	return a
}

func transportOf(h *http.Client) http.RoundTripper {
	if h.Transport != nil {
		return h.Transport
	}
	return http.DefaultTransport
}

func (a *authenticator) newTokenSource() oauth2.TokenSource {
	// ReuseTokenSourceWithExpiry caches the token until a minute before expires_in and lets
	// concurrent callers share one fetch.
	return oauth2.ReuseTokenSourceWithExpiry(nil, a.oauth.TokenSource(a.oauthCtx), tokenExpiryDelta)
}

// accessToken returns a valid OAuth2 access token, fetching one when needed.
func (a *authenticator) accessToken(ctx context.Context) (string, error) {
	a.tokMu.Lock()
	ts := a.ts
	a.tokMu.Unlock()
	type result struct {
		tok *oauth2.Token
		err error
	}
	ch := make(chan result, 1)
	go func() {
		t, err := ts.Token()
		ch <- result{t, err}
	}()
	select {
	case <-ctx.Done():
		return "", fmt.Errorf("getting a ThingSpace OAuth token: %w", ctx.Err())
	case r := <-ch:
		if r.err != nil {
			return "", tokenError(r.err)
		}
		return r.tok.AccessToken, nil
	}
}

// invalidateToken drops the cached token if it is still old, so that the next call fetches a
// new one. Comparing with old keeps concurrent callers from fetching one token each.
func (a *authenticator) invalidateToken(old string) {
	a.tokMu.Lock()
	defer a.tokMu.Unlock()
	if t, err := a.ts.Token(); err == nil && t.AccessToken != old {
		return
	}
	a.ts = a.newTokenSource()
}

func tokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		e := &Error{HTTPStatus: re.Response.StatusCode, Method: http.MethodPost, Path: PathToken,
			Code: re.ErrorCode, Message: re.ErrorDescription}
		if e.Message == "" {
			e.Message = string(re.Body)
		}
		if re.Response.StatusCode == http.StatusUnauthorized || re.Response.StatusCode == http.StatusBadRequest {
			return fmt.Errorf("ThingSpace refused the OAuth client credentials (check client_id and client_secret): %w", e)
		}
		return fmt.Errorf("getting a ThingSpace OAuth token: %w", e)
	}
	return fmt.Errorf("getting a ThingSpace OAuth token: %w", err)
}

// sessionToken returns the M2M session token, logging in when there is none.
func (a *authenticator) sessionToken(ctx context.Context) (string, error) {
	select {
	case a.sessSem <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("waiting for the ThingSpace M2M login: %w", ctx.Err())
	}
	defer func() { <-a.sessSem }()
	if a.loginErr != nil {
		return "", a.loginErr
	}
	if a.session != "" {
		return a.session, nil
	}
	var out tsapi.LoginResponse
	_, err := a.c.do(ctx, call{
		method: http.MethodPost, path: PathLogin, kind: kindRead, out: &out,
		body: tsapi.LoginRequest{Username: a.username, Password: a.password},
	})
	if err != nil {
		var apiErr *Error
		if errors.As(err, &apiErr) && apiErr.HTTPStatus >= 400 && apiErr.HTTPStatus < 500 && apiErr.HTTPStatus != http.StatusTooManyRequests {
			// A refused login is remembered for the client's life and never sent again.
			a.loginErr = &LoginError{Cause: apiErr}
			return "", a.loginErr
		}
		return "", fmt.Errorf("ThingSpace M2M session login: %w", err)
	}
	if out.SessionToken == "" {
		return "", errors.New("ThingSpace M2M session login answered no sessionToken")
	}
	a.session = out.SessionToken
	return a.session, nil
}

// invalidateSession forgets the session token if it is still old, so that exactly one of the
// callers that saw it rejected logs in again.
func (a *authenticator) invalidateSession(old string) {
	a.sessSem <- struct{}{}
	defer func() { <-a.sessSem }()
	if a.session == old {
		a.session = ""
	}
}

// Logout ends the M2M session, if there is one.
func (c *Client) Logout(ctx context.Context) error {
	a := c.auth
	select {
	case a.sessSem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	session := a.session
	a.session = ""
	<-a.sessSem
	if session == "" {
		return nil
	}
	token, err := a.accessToken(ctx)
	if err != nil {
		return err
	}
	req, err := c.newRequest(ctx, call{method: http.MethodPost, path: PathLogout}, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("VZ-M2M-Token", session)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("ThingSpace logout: %w", err)
	}
	if resp.StatusCode >= 300 {
		return readError(resp, http.MethodPost, PathLogout)
	}
	drain(resp)
	return nil
}

// tokenTransport applies the client's rate limit and retry policy to OAuth token calls, which
// x/oauth2 sends itself: 429, 5xx and network errors are retried with backoff honouring
// Retry-After; a refused credential (4xx) is returned at once.
type tokenTransport struct {
	c    *Client
	base http.RoundTripper
}

func (t *tokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil && req.GetBody != nil {
		rc, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		if body, err = io.ReadAll(rc); err != nil {
			return nil, err
		}
	}
	ctx := req.Context()
	for attempt := 0; ; attempt++ {
		if err := t.c.limiter.Wait(ctx); err != nil {
			return nil, err
		}
		r := req.Clone(ctx)
		if body != nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		r.Header.Set("User-Agent", t.c.userAgent)
		resp, err := t.base.RoundTrip(r)
		retryable := err != nil || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
		if !retryable || attempt >= t.c.retries {
			return resp, err
		}
		retryAfter := ""
		if resp != nil {
			retryAfter = resp.Header.Get("Retry-After")
			drain(resp)
		}
		if err := t.c.sleep(ctx, t.c.backoff.Wait(attempt, retryAfter)); err != nil {
			return nil, err
		}
	}
}
