package sim

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

const (
	tokenLifetime  = time.Hour
	maxBodyBytes   = 64 << 20
	loginLockAfter = 5
	svc            = "UnifiedWebService."
)

type accessToken struct {
	value  string
	issued time.Time
}

type session struct {
	user     string
	created  time.Time
	lastUsed time.Time
}

// call is what the API wrapper hands a handler: the body already read, and the fault draws
// that the handler applies itself.
type call struct {
	body        []byte
	failAfter   bool // 5xx-after: apply, then answer 500
	sessionUser string
}

type apiAuth int

const (
	authNone    apiAuth = iota // the token endpoint: Basic credentials, checked by the handler
	authBearer                 // login: Bearer only
	authSession                // everything else under /api/m2m: Bearer and VZ-M2M-Token
)

func (s *Simulator) routes() {
	m := http.NewServeMux()
	s.mux = m
	s.handler = joinSlashes(m)
	api := func(pattern string, auth apiAuth, h func(http.ResponseWriter, *http.Request, *call)) {
		m.Handle(pattern, s.apiHandler(pattern, auth, h))
	}
	api("POST /api/ts/v1/oauth2/token", authNone, s.handleToken)
	api("POST /api/ts/v1/oauth2/revoke", authNone, s.handleRevoke)
	api("POST /api/m2m/v1/session/login", authBearer, s.handleLogin)
	api("POST /api/m2m/v1/session/logout", authSession, s.handleLogout)
	api("GET /api/m2m/v1/callbacks/{account}", authSession, s.handleListCallbacks)
	api("POST /api/m2m/v1/callbacks/{account}", authSession, s.handleRegisterCallback)
	api("DELETE /api/m2m/v1/callbacks/{account}/name/{service}", authSession, s.handleDeleteCallback)
	api("POST /api/m2m/v1/devices/profile/actions/{action}", authSession, s.handleAction)
	api("POST /api/m2m/v1/devices/actions/list", authSession, s.handleListV1)
	api("POST /api/m2m/v2/devices/actions/list", authSession, s.handleListV2)
	api("GET /api/m2m/v2/accounts/{account}/requests/{requestId}/status", authSession, s.handleRequestStatusV2)
	api("GET /api/m2m/v1/accounts/{account}/requests/{requestId}/status", authSession, s.handleRequestStatusV1)
	api("GET /api/m2m/v1/plans/{account}", authSession, s.handlePlans)
	api("/api/", authNone, s.handleNoResource)

	admin := func(pattern string, h http.HandlerFunc) { m.Handle(pattern, s.counted(pattern, h)) }
	admin("GET /sim/v1/devices", s.adminDevices)
	admin("GET /sim/v1/devices/{eid}", s.adminDevice)
	admin("PATCH /sim/v1/devices/{eid}", s.adminPatchDevice)
	admin("GET /sim/v1/plans", s.adminPlans)
	admin("GET /sim/v1/stats", s.adminStats)
	admin("GET /sim/v1/faults", s.adminGetFaults)
	admin("PUT /sim/v1/faults", s.adminPutFaults)
	admin("POST /sim/v1/reset", s.adminReset)
	admin("GET /sim/v1/healthz", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) })
}

// joinSlashes serves ".../v1//devices/..." as ".../v1/devices/...". ThingSpace's own pages give
// such URLs (ThingSpace's serviceplan and profile_resume pages), and ServeMux would answer them with a redirect, which a client
// following the docs with curl does not follow.
func joinSlashes(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "//") {
			r2 := r.Clone(r.Context())
			p := r.URL.Path
			for strings.Contains(p, "//") {
				p = strings.ReplaceAll(p, "//", "/")
			}
			r2.URL.Path, r2.URL.RawPath = p, ""
			r = r2
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Simulator) counted(pattern string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.reqCounts[pattern]++
		s.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

// apiHandler wraps a ThingSpace endpoint: count it, read the body, draw the 429 and 5xx
// faults (keyed by the request's method, path and body, with an attempt counter so that a
// retry draws again), check the credentials, then run the handler.
func (s *Simulator) apiHandler(pattern string, auth apiAuth, h func(http.ResponseWriter, *http.Request, *call)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
		if err != nil {
			writeM2MError(w, http.StatusRequestEntityTooLarge, svc+"INPUT_INVALID.Request.TooLarge", "request body too large or unreadable")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		hk := fnv.New64a()
		hk.Write([]byte(r.Method + " " + r.URL.Path + "\x00"))
		hk.Write(body)
		key := strconv.FormatUint(hk.Sum64(), 16)

		s.mu.Lock()
		if pattern != "/api/" {
			s.reqCounts[pattern]++
		} else {
			s.reqCounts[r.Method+" /api/ (no resource)"]++
		}
		s.attempts["http:"+key]++
		attempt := s.attempts["http:"+key]
		fs := s.faults
		seed := s.opts.Seed
		s.mu.Unlock()

		if s.fired(FaultRateLimit, draw(seed, fs.rates[FaultRateLimit], FaultRateLimit, key, attempt)) {
			ra := defaultRetryAfter
			if d, ok := fs.durations[FaultRetryAfter]; ok {
				ra = d
			}
			secs := int((ra + time.Second - 1) / time.Second)
			w.Header().Set("Retry-After", strconv.Itoa(max(secs, 0)))
			if strings.HasPrefix(pattern, "POST /api/ts/") {
				writeGatewayFault(w, http.StatusTooManyRequests, "900800", "Message throttled out",
					"You have exceeded your quota")
				return
			}
			writeM2MError(w, http.StatusTooManyRequests, svc+"REQUEST_FAILED.TooManyRequests", "Too many requests")
			return
		}
		c := &call{body: body}
		switch auth {
		case authBearer:
			if !s.checkBearer(w, r) {
				return
			}
		case authSession:
			if !s.checkBearer(w, r) {
				return
			}
			user, ok := s.checkSession(w, r)
			if !ok {
				return
			}
			c.sessionUser = user
		}
		if s.fired(FaultServerError, draw(seed, fs.rates[FaultServerError], FaultServerError, key, attempt)) {
			writeM2MError(w, http.StatusInternalServerError, svc+"REQUEST_FAILED.UnexpectedError", "Internal server error (simulated)")
			return
		}
		c.failAfter = draw(seed, fs.rates[FaultServerAfter], FaultServerAfter, key, attempt)
		h(w, r, c)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeM2MError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, tsapi.ErrorResponse{ErrorCode: code, ErrorMessage: msg})
}

// writeGatewayFault writes the WSO2 gateway's fault body.
func writeGatewayFault(w http.ResponseWriter, status int, code, msg, desc string) {
	writeJSON(w, status, map[string]any{"fault": map[string]string{"code": code, "message": msg, "description": desc}})
}

func (s *Simulator) handleNoResource(w http.ResponseWriter, r *http.Request, _ *call) {
	writeGatewayFault(w, http.StatusBadRequest, "900906", "No matching resource found for given API Request",
		"The requested resource ("+r.Method+" "+r.URL.Path+") is not available.")
}

// ---- OAuth ----

func (s *Simulator) tokenLifetime() time.Duration {
	if d, ok := s.faults.durations[FaultTokenExpiry]; ok && d > 0 {
		return d
	}
	return tokenLifetime
}

func newOpaque() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func (s *Simulator) checkClient(w http.ResponseWriter, r *http.Request) bool {
	id, secret, ok := r.BasicAuth()
	if !ok {
		writeGatewayFault(w, http.StatusUnauthorized, "900902", "Missing Credentials",
			"Invalid Credentials. Make sure your API invocation call has a header: 'Authorization : Basic base64(key:secret)'")
		return false
	}
	if subtle.ConstantTimeCompare([]byte(id), []byte(s.opts.ClientID)) != 1 ||
		subtle.ConstantTimeCompare([]byte(secret), []byte(s.opts.ClientSecret)) != 1 {
		writeGatewayFault(w, http.StatusUnauthorized, "900901", "Invalid Credentials",
			"Invalid Credentials. Make sure you have given the correct client key and secret")
		return false
	}
	return true
}

func (s *Simulator) handleToken(w http.ResponseWriter, r *http.Request, c *call) {
	if !s.checkClient(w, r) {
		return
	}
	form, _ := parseForm(r, c.body)
	if gt := form.Get("grant_type"); gt != "client_credentials" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type",
			"error_description": "grant_type must be client_credentials"})
		return
	}
	s.mu.Lock()
	now := s.now()
	life := s.tokenLifetime()
	if s.token.value == "" || now.Sub(s.token.issued) >= life {
		s.token = accessToken{value: newOpaque(), issued: now}
	}
	t := s.token
	s.mu.Unlock()
	left := int64((life - now.Sub(t.issued)) / time.Second)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, tsapi.TokenResponse{AccessToken: t.value, TokenType: "Bearer",
		ExpiresIn: max(left, 1), Scope: "default"})
}

func (s *Simulator) handleRevoke(w http.ResponseWriter, r *http.Request, c *call) {
	if !s.checkClient(w, r) {
		return
	}
	form, _ := parseForm(r, c.body)
	s.mu.Lock()
	if tok := form.Get("token"); tok != "" && tok == s.token.value {
		s.token = accessToken{}
		w.Header().Set("RevokedAccessToken", tok)
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func parseForm(r *http.Request, body []byte) (interface{ Get(string) string }, error) {
	r.Body = io.NopCloser(bytes.NewReader(body))
	err := r.ParseForm()
	return r.Form, err
}

func (s *Simulator) checkBearer(w http.ResponseWriter, r *http.Request) bool {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		tok, ok = strings.CutPrefix(h, "bearer ")
	}
	tok = strings.TrimSpace(tok)
	if !ok || tok == "" {
		writeGatewayFault(w, http.StatusUnauthorized, "900902", "Missing Credentials",
			"Invalid Credentials. Make sure your API invocation call has a header: 'Authorization : Bearer ACCESS_TOKEN'")
		return false
	}
	s.mu.Lock()
	known := s.token.value != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(s.token.value)) == 1
	valid := known && s.now().Sub(s.token.issued) < s.tokenLifetime()
	_, short := s.faults.durations[FaultTokenExpiry]
	s.mu.Unlock()
	if known && !valid && short {
		s.fired(FaultTokenExpiry, true)
	}
	if !valid {
		writeGatewayFault(w, http.StatusUnauthorized, "900901", "Invalid Credentials",
			"Access failure for API: /api, version: v1 status: (900901) - Invalid Credentials. Make sure you have given the correct access token")
		return false
	}
	return true
}

var guidRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// checkSession validates VZ-M2M-Token and extends the session's idle timer.
func (s *Simulator) checkSession(w http.ResponseWriter, r *http.Request) (string, bool) {
	tok := strings.TrimSpace(r.Header.Get("VZ-M2M-Token"))
	if tok == "" {
		writeM2MError(w, http.StatusBadRequest, svc+"REQUEST_FAILED.SessionToken.Format", "The VZ-M2M-Token header is missing.")
		return "", false
	}
	if !guidRe.MatchString(tok) {
		writeM2MError(w, http.StatusBadRequest, svc+"INPUT_INVALID.SessionToken.Invalid", "The session token is not valid.")
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	sess, ok := s.sessions[tok]
	if ok && s.sessionExpired(sess, now) {
		delete(s.sessions, tok)
		ok = false
	}
	if !ok {
		writeM2MError(w, http.StatusBadRequest, svc+"REQUEST_FAILED.SessionToken.Expired", "Session token expired.")
		return "", false
	}
	sess.lastUsed = now
	return sess.user, true
}

func (s *Simulator) sessionExpired(sess *session, now time.Time) bool {
	if now.Sub(sess.lastUsed) >= s.opts.SessionIdleTimeout {
		return true
	}
	if d, ok := s.faults.durations[FaultSessionExpiry]; ok && d > 0 && now.Sub(sess.created) >= d {
		return s.fired(FaultSessionExpiry, true)
	}
	return false
}

func (s *Simulator) handleLogin(w http.ResponseWriter, r *http.Request, c *call) {
	var req tsapi.LoginRequest
	if err := json.Unmarshal(c.body, &req); err != nil || req.Username == "" {
		writeM2MError(w, http.StatusBadRequest, svc+"INPUT_INVALID.RequestUndefined", "The request body must be {\"username\", \"password\"}.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.locked[req.Username] {
		writeM2MError(w, http.StatusBadRequest, svc+"REQUEST_FAILED.UserLocked",
			"The user is locked after too many failed login attempts. Contact Verizon support to unlock it.")
		return
	}
	if subtle.ConstantTimeCompare([]byte(req.Username), []byte(s.opts.Username)) != 1 ||
		subtle.ConstantTimeCompare([]byte(req.Password), []byte(s.opts.Password)) != 1 {
		s.loginFails[req.Username]++
		if s.loginFails[req.Username] >= loginLockAfter {
			s.locked[req.Username] = true
			s.log.Warn("user locked after failed logins", "user", req.Username)
		}
		writeM2MError(w, http.StatusBadRequest, svc+"REQUEST_FAILED.AuthenticationFailed", "Invalid username or password.")
		return
	}
	s.loginFails[req.Username] = 0
	now := s.now()
	tok := newOpaque()
	s.sessions[tok] = &session{user: req.Username, created: now, lastUsed: now}
	writeJSON(w, http.StatusOK, tsapi.LoginResponse{SessionToken: tok})
}

func (s *Simulator) handleLogout(w http.ResponseWriter, r *http.Request, _ *call) {
	tok := strings.TrimSpace(r.Header.Get("VZ-M2M-Token"))
	s.mu.Lock()
	delete(s.sessions, tok)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, tsapi.LoginResponse{SessionToken: tok})
}

// checkAccount answers the error for an account other than the simulated one.
func (s *Simulator) checkAccount(w http.ResponseWriter, account string) bool {
	if account == "" {
		writeM2MError(w, http.StatusBadRequest, svc+"INPUT_INVALID.Account.NotDefined", "accountName is required.")
		return false
	}
	if account != s.opts.Account {
		writeM2MError(w, http.StatusBadRequest, svc+"REQUEST_FAILED.AccountNotFound", "Account "+account+" was not found.")
		return false
	}
	return true
}

// ---- callback registration ----

var serviceNames = map[string]bool{}

func init() {
	for _, n := range strings.Fields(`AlertService CarrierService DevicePRLInformation DeviceProfileService
		DevicePromoUsage DeviceService DeviceSuspensionStatus DeviceUsage DiagnosticsService
		EnhancedConnectivityService ExtendedEnhancedConnectivityService ExternalProvisioningChanges
		IntelligenceService NetworkEventService NiddService PromoChanges PwnService QoS
		ResumeTrackingNotification SMSDeliveryConfirmation StateService SubscriptionNotificationService
		VIPCallbackService`) {
		serviceNames[n] = true
	}
}

func (s *Simulator) handleListCallbacks(w http.ResponseWriter, r *http.Request, _ *call) {
	acct := r.PathValue("account")
	if !s.checkAccount(w, acct) {
		return
	}
	s.mu.Lock()
	out := []tsapi.CallbackRegistration{}
	for _, name := range sortedKeys(s.listeners[acct]) {
		out = append(out, s.listeners[acct][name])
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Simulator) handleRegisterCallback(w http.ResponseWriter, r *http.Request, c *call) {
	acct := r.PathValue("account")
	if !s.checkAccount(w, acct) {
		return
	}
	var req tsapi.RegisterCallbackRequest
	if err := json.Unmarshal(c.body, &req); err != nil {
		writeM2MError(w, http.StatusBadRequest, svc+"INPUT_INVALID.RequestUndefined", "The request body is not valid JSON.")
		return
	}
	if !serviceNames[req.Name] {
		writeM2MError(w, http.StatusBadRequest, svc+"INPUT_INVALID.ServiceName.Invalid", "Unknown callback service name "+strconv.Quote(req.Name)+".")
		return
	}
	if !validURL(req.URL) {
		writeM2MError(w, http.StatusBadRequest, svc+"INPUT_INVALID.Url.Invalid", "The callback URL must be an absolute http or https URL.")
		return
	}
	s.mu.Lock()
	if s.listeners[acct] == nil {
		s.listeners[acct] = map[string]tsapi.CallbackRegistration{}
	}
	s.listeners[acct][req.Name] = tsapi.CallbackRegistration{AccountName: acct, ServiceName: req.Name,
		URL: req.URL, Username: req.Username, Password: req.Password}
	s.mu.Unlock()
	s.log.Info("callback registered", "account", acct, "service", req.Name)
	writeJSON(w, http.StatusOK, tsapi.CallbackServiceResponse{AccountName: acct, ServiceName: req.Name})
}

func validURL(u string) bool {
	rest, ok := strings.CutPrefix(u, "https://")
	if !ok {
		rest, ok = strings.CutPrefix(u, "http://")
	}
	if !ok || rest == "" || strings.ContainsAny(rest, " \t\r\n") {
		return false
	}
	host, _, _ := strings.Cut(rest, "/")
	return host != "" && host[0] != ':'
}

func (s *Simulator) handleDeleteCallback(w http.ResponseWriter, r *http.Request, _ *call) {
	acct, name := r.PathValue("account"), r.PathValue("service")
	if !s.checkAccount(w, acct) {
		return
	}
	s.mu.Lock()
	_, ok := s.listeners[acct][name]
	delete(s.listeners[acct], name)
	s.mu.Unlock()
	if !ok {
		writeM2MError(w, http.StatusBadRequest, svc+"REQUEST_FAILED.CallbackNotFound", "No callback is registered for service "+name+".")
		return
	}
	writeJSON(w, http.StatusOK, tsapi.CallbackServiceResponse{AccountName: acct, ServiceName: name})
}

// ---- plans ----

func (s *Simulator) handlePlans(w http.ResponseWriter, r *http.Request, _ *call) {
	if !s.checkAccount(w, r.PathValue("account")) {
		return
	}
	out := make([]tsapi.ServicePlan, 0, len(s.plans))
	for _, p := range s.plans {
		carrier := "Verizon Wireless"
		if p.Type == PlanGlobal {
			carrier = "Verizon Global"
		}
		out = append(out, tsapi.ServicePlan{Name: p.Name, Code: p.Code, SizeKb: p.SizeKb, CarrierName: carrier,
			ExtendedAttributes: []tsapi.KeyValue{{Key: "PlanType", Value: p.Type}}})
	}
	writeJSON(w, http.StatusOK, out)
}
