package thingspace

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// fakeThingSpace is an httptest server that speaks the wire format of ThingSpace's example bodies (internal/tsapi/testdata/seeds), with hooks that let
// a test answer a given call differently.
type fakeThingSpace struct {
	t   *testing.T
	srv *httptest.Server

	tokenCalls atomic.Int32
	loginCalls atomic.Int32

	mu        sync.Mutex
	sessions  map[string]bool
	nextID    int
	password  string
	actions   []recordedAction
	onAction  func(n int, action string, body tsapi.ProfileRequest, w http.ResponseWriter) bool
	onList    func(body tsapi.DeviceListRequest, w http.ResponseWriter) bool
	loginHook func(w http.ResponseWriter) bool
	// tokenHook answers a token call instead of the default when it returns true.
	tokenHook func(n int, w http.ResponseWriter) bool
	// expiresIn is the expires_in of the tokens handed out (default 3600).
	expiresIn atomic.Int32
	// issued holds the tokens handed out, each one new ("oauth-token", then
	// "oauth-token-2", ...): the fake accepts every token it issued.
	issued map[string]bool
}

type recordedAction struct {
	Action  string
	Body    tsapi.ProfileRequest
	Raw     map[string]any
	Session string
	UA      string
}

func newFake(t *testing.T) *fakeThingSpace {
	f := &fakeThingSpace{t: t, sessions: map[string]bool{}, password: "pw", issued: map[string]bool{}}
	f.expiresIn.Store(3600)
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PathToken, f.token)
	mux.HandleFunc("POST "+PathLogin, f.login)
	mux.HandleFunc("POST "+PathActions+"{action}", f.action)
	mux.HandleFunc("POST "+PathDeviceListV1, f.list)
	mux.HandleFunc("GET /api/m2m/v2/accounts/{account}/requests/{id}/status", func(w http.ResponseWriter, r *http.Request) {
		if !f.authorized(w, r) {
			return
		}
		writeJSON(w, 200, map[string]any{"requestId": r.PathValue("id"), "status": "Pending",
			"subRequests": []any{map[string]any{"ids": []any{map[string]string{"kind": "eid", "id": "1"}}, "status": "Success"}}})
	})
	mux.HandleFunc("GET /api/m2m/v1/plans/{account}", func(w http.ResponseWriter, r *http.Request) {
		if !f.authorized(w, r) {
			return
		}
		writeJSON(w, 200, []tsapi.ServicePlan{{Name: "M2M4GB", Code: "M2M4GB"}, {Name: "GLOBAL1GB", Code: "GLOBAL1GB"}})
	})
	mux.HandleFunc("GET /api/m2m/v1/callbacks/{account}", func(w http.ResponseWriter, r *http.Request) {
		if !f.authorized(w, r) {
			return
		}
		writeJSON(w, 200, []tsapi.CallbackRegistration{{AccountName: r.PathValue("account"), ServiceName: tsapi.ServiceDeviceProfile, URL: "https://relay.example/cb"}})
	})
	mux.HandleFunc("POST /api/m2m/v1/callbacks/{account}", func(w http.ResponseWriter, r *http.Request) {
		if !f.authorized(w, r) {
			return
		}
		var req tsapi.RegisterCallbackRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		writeJSON(w, 200, tsapi.CallbackServiceResponse{AccountName: r.PathValue("account"), ServiceName: req.Name})
	})
	mux.HandleFunc("DELETE /api/m2m/v1/callbacks/{account}/name/{service}", func(w http.ResponseWriter, r *http.Request) {
		if !f.authorized(w, r) {
			return
		}
		writeJSON(w, 200, tsapi.CallbackServiceResponse{AccountName: r.PathValue("account"), ServiceName: r.PathValue("service")})
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeThingSpace) token(w http.ResponseWriter, r *http.Request) {
	n := int(f.tokenCalls.Add(1))
	if f.tokenHook != nil && f.tokenHook(n, w) {
		return
	}
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("cid:csecret"))
	if r.Header.Get("Authorization") != want {
		writeJSON(w, 401, map[string]any{"error": "invalid_client", "error_description": "bad client credentials"})
		return
	}
	_ = r.ParseForm()
	if r.PostForm.Get("grant_type") != "client_credentials" {
		writeJSON(w, 400, map[string]any{"error": "unsupported_grant_type"})
		return
	}
	tok := "oauth-token"
	f.mu.Lock()
	if len(f.issued) > 0 {
		tok = fmt.Sprintf("oauth-token-%d", len(f.issued)+1)
	}
	f.issued[tok] = true
	f.mu.Unlock()
	writeJSON(w, 200, tsapi.TokenResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int64(f.expiresIn.Load())})
}

// bearerValid reports whether r carries an OAuth token this fake issued.
func (f *fakeThingSpace) bearerValid(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	defer f.mu.Unlock()
	return ok && f.issued[tok]
}

func (f *fakeThingSpace) login(w http.ResponseWriter, r *http.Request) {
	f.loginCalls.Add(1)
	if !f.bearerValid(r) {
		writeJSON(w, 401, map[string]any{"fault": map[string]any{"code": 900901, "message": "Invalid Credentials"}})
		return
	}
	if f.loginHook != nil && f.loginHook(w) {
		return
	}
	var req tsapi.LoginRequest
	_ = json.NewDecoder(r.Body).Decode(&req)
	if req.Username != "user" || req.Password != f.password {
		writeJSON(w, 400, tsapi.ErrorResponse{ErrorCode: "UnifiedWebService.INPUT_INVALID.AuthenticationFailed", ErrorMessage: "Invalid username or password"})
		return
	}
	f.mu.Lock()
	f.nextID++
	tok := fmt.Sprintf("session-%d", f.nextID)
	f.sessions[tok] = true
	f.mu.Unlock()
	writeJSON(w, 200, tsapi.LoginResponse{SessionToken: tok})
}

func (f *fakeThingSpace) authorized(w http.ResponseWriter, r *http.Request) bool {
	if !f.bearerValid(r) {
		writeJSON(w, 401, map[string]any{"fault": map[string]any{"code": "900902", "message": "Missing Credentials"}})
		return false
	}
	f.mu.Lock()
	ok := f.sessions[r.Header.Get("VZ-M2M-Token")]
	f.mu.Unlock()
	if !ok {
		writeJSON(w, 400, tsapi.ErrorResponse{ErrorCode: "UnifiedWebService.REQUEST_FAILED.SessionToken.Expired", ErrorMessage: "Session token expired"})
		return false
	}
	return true
}

// expireSessions makes every session token expired, as 20 idle minutes would.
func (f *fakeThingSpace) expireSessions() {
	f.mu.Lock()
	f.sessions = map[string]bool{}
	f.mu.Unlock()
}

func (f *fakeThingSpace) action(w http.ResponseWriter, r *http.Request) {
	if !f.authorized(w, r) {
		return
	}
	raw, _ := io.ReadAll(r.Body)
	var body tsapi.ProfileRequest
	if err := json.Unmarshal(raw, &body); err != nil {
		writeJSON(w, 400, tsapi.ErrorResponse{ErrorCode: "DeviceService.INPUT_INVALID.RequestUndefined", ErrorMessage: err.Error()})
		return
	}
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	f.mu.Lock()
	f.actions = append(f.actions, recordedAction{Action: r.PathValue("action"), Body: body, Raw: m,
		Session: r.Header.Get("VZ-M2M-Token"), UA: r.Header.Get("User-Agent")})
	n := len(f.actions)
	hook := f.onAction
	f.mu.Unlock()
	if hook != nil && hook(n, r.PathValue("action"), body, w) {
		return
	}
	writeJSON(w, 200, tsapi.RequestResponse{RequestID: fmt.Sprintf("req-%d", n)})
}

func (f *fakeThingSpace) list(w http.ResponseWriter, r *http.Request) {
	if !f.authorized(w, r) {
		return
	}
	var body tsapi.DeviceListRequest
	_ = json.NewDecoder(r.Body).Decode(&body)
	if f.onList != nil && f.onList(body, w) {
		return
	}
	writeJSON(w, 200, tsapi.DeviceListResponse{})
}

func (f *fakeThingSpace) recorded() []recordedAction {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recordedAction(nil), f.actions...)
}

func (f *fakeThingSpace) client(t *testing.T, mutate ...func(*Config)) *Client {
	t.Helper()
	cfg := Config{
		BaseURL: f.srv.URL, ClientID: "cid", ClientSecret: "csecret", Username: "user", Password: "pw",
		RequestsPerSecond: 1000, Burst: 1000, RetryBaseDelay: time.Millisecond, RetryMaxDelay: 5 * time.Millisecond,
		UserAgent: "terraform-provider-thingspace/test Terraform/1.11.4",
	}
	for _, m := range mutate {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const (
	testAccount = "0000123456-00001"
	testEID     = "89049032000001000000000000000155"
	testICCID   = "89148000000840784259"
	testIMEI    = "490154203237518"
)

func testDevice() tsapi.DeviceIDs {
	return tsapi.DeviceIDs{{Kind: tsapi.KindEID, ID: testEID}, {Kind: tsapi.KindICCID, ID: testICCID}, {Kind: tsapi.KindIMEI, ID: testIMEI}}
}

func TestEveryActionSendsItsDocumentedBody(t *testing.T) {
	f := newFake(t)
	c := f.client(t)
	ctx := context.Background()
	dev := Devices(testDevice())
	place := &tsapi.PlaceOfUse{CustomerName: tsapi.CustomerName{FirstName: "Ada", LastName: "Lovelace"},
		Address: tsapi.Address{AddressLine1: "1 Main St", City: "Basking Ridge", State: "NJ", Zip: "07920", Country: "USA"}}
	calls := []struct {
		action tsapi.Action
		run    func() (*ActionResult, error)
		want   map[string]any // top-level fields that must be present with these values
		absent []string
	}{
		{tsapi.ActionActivate, func() (*ActionResult, error) {
			return c.Activate(ctx, tsapi.ActivateRequest{Devices: dev, AccountName: testAccount, ServicePlan: "M2M4GB", MdnZipCode: "07920", PrimaryPlaceOfUse: place})
		}, map[string]any{"servicePlan": "M2M4GB", "mdnZipCode": "07920"}, []string{"etfWaiver", "smsrOid"}},
		{tsapi.ActionDownloadEnable, func() (*ActionResult, error) {
			return c.DownloadEnable(ctx, tsapi.DownloadEnableRequest{Devices: dev, AccountName: testAccount, ServicePlan: "GLOBAL1GB"})
		}, map[string]any{"servicePlan": "GLOBAL1GB"}, []string{"mdnZipCode"}},
		{tsapi.ActionEnable, func() (*ActionResult, error) {
			return c.Enable(ctx, tsapi.EnableRequest{Devices: dev, AccountName: testAccount, SmsrOid: "1.3.6.1.4.1.31746.1.500.200.101.5"})
		}, map[string]any{"smsrOid": "1.3.6.1.4.1.31746.1.500.200.101.5"}, []string{"servicePlan"}},
		{tsapi.ActionServicePlan, func() (*ActionResult, error) {
			return c.ChangeServicePlan(ctx, tsapi.ServicePlanRequest{Devices: dev, AccountName: testAccount, ServicePlan: "M2M10GB"})
		}, map[string]any{"servicePlan": "M2M10GB"}, nil},
		{tsapi.ActionProfileResume, func() (*ActionResult, error) {
			return c.ProfileResume(ctx, tsapi.ProfileResumeRequest{Devices: Devices(tsapi.DeviceIDs{{Kind: tsapi.KindICCID, ID: testICCID}}), AccountName: testAccount, ServicePlan: "M2M4GB"})
		}, map[string]any{"servicePlan": "M2M4GB"}, nil},
		{tsapi.ActionProfileSuspend, func() (*ActionResult, error) {
			return c.ProfileSuspend(ctx, tsapi.ProfileSuspendRequest{Devices: Devices(tsapi.DeviceIDs{{Kind: tsapi.KindICCID, ID: testICCID}}), AccountName: testAccount, ServicePlan: "GLOBAL1GB"})
		}, map[string]any{"servicePlan": "GLOBAL1GB"}, nil},
		{tsapi.ActionDeviceSuspend, func() (*ActionResult, error) {
			return c.DeviceSuspend(ctx, tsapi.DeviceSuspendRequest{Devices: Devices(tsapi.DeviceIDs{{Kind: tsapi.KindEID, ID: testEID}}), AccountName: testAccount})
		}, map[string]any{}, []string{"servicePlan"}},
		{tsapi.ActionDeviceResume, func() (*ActionResult, error) {
			return c.DeviceResume(ctx, tsapi.DeviceResumeRequest{Devices: Devices(tsapi.DeviceIDs{{Kind: tsapi.KindEID, ID: testEID}}), AccountName: testAccount})
		}, map[string]any{}, nil},
		{tsapi.ActionDeactivate, func() (*ActionResult, error) {
			return c.Deactivate(ctx, tsapi.DeactivateRequest{Devices: dev, AccountName: testAccount, EtfWaiver: false, ReasonCode: "FF"})
		}, map[string]any{"etfWaiver": false, "reasonCode": "FF"}, nil},
		{tsapi.ActionDisable, func() (*ActionResult, error) {
			return c.Disable(ctx, tsapi.ProfileChangeRequest{Devices: dev, AccountName: testAccount, SmsrOid: "1.2.3"})
		}, map[string]any{"smsrOid": "1.2.3"}, nil},
		{tsapi.ActionDelete, func() (*ActionResult, error) {
			return c.Delete(ctx, tsapi.ProfileChangeRequest{Devices: dev, AccountName: testAccount, ServicePlan: "GLOBAL1GB"})
		}, map[string]any{"servicePlan": "GLOBAL1GB"}, nil},
		{tsapi.ActionDownload, func() (*ActionResult, error) {
			return c.Download(ctx, tsapi.ProfileChangeRequest{Devices: dev, AccountName: testAccount, ServicePlan: "GLOBAL1GB"})
		}, map[string]any{"servicePlan": "GLOBAL1GB"}, nil},
		{tsapi.ActionDownloadDisable, func() (*ActionResult, error) {
			return c.DownloadDisable(ctx, tsapi.ProfileChangeRequest{Devices: dev, AccountName: testAccount, SmsrOid: "1.2.3"})
		}, map[string]any{"smsrOid": "1.2.3"}, nil},
	}
	if len(calls) != len(tsapi.AllActions) {
		t.Fatalf("test covers %d actions, the client knows %d", len(calls), len(tsapi.AllActions))
	}
	for i, tc := range calls {
		t.Run(string(tc.action), func(t *testing.T) {
			res, err := tc.run()
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Requests) != 1 || res.Requests[0].RequestID != fmt.Sprintf("req-%d", i+1) {
				t.Fatalf("result = %+v", res)
			}
			rec := f.recorded()[i]
			if rec.Action != string(tc.action) {
				t.Fatalf("path action = %q, want %q", rec.Action, tc.action)
			}
			if rec.Raw["accountName"] != testAccount {
				t.Errorf("accountName = %v", rec.Raw["accountName"])
			}
			devs, _ := rec.Raw["devices"].([]any)
			if len(devs) != 1 {
				t.Fatalf("devices = %v", rec.Raw["devices"])
			}
			if _, ok := devs[0].(map[string]any)["deviceIds"]; !ok {
				t.Errorf("device entry has no deviceIds: %v", devs[0])
			}
			for k, v := range tc.want {
				if rec.Raw[k] != v {
					t.Errorf("%s = %v, want %v", k, rec.Raw[k], v)
				}
			}
			for _, k := range tc.absent {
				if _, ok := rec.Raw[k]; ok {
					t.Errorf("%s sent, but %s does not take it", k, tc.action)
				}
			}
			if rec.UA != "terraform-provider-thingspace/test Terraform/1.11.4" {
				t.Errorf("User-Agent = %q", rec.UA)
			}
		})
	}
	if got := f.tokenCalls.Load(); got != 1 {
		t.Errorf("token requested %d times for %d calls; it must be cached", got, len(calls))
	}
	if got := f.loginCalls.Load(); got != 1 {
		t.Errorf("logged in %d times; the session must be reused", got)
	}
}

func TestActivatePlaceOfUseAndIdentifiers(t *testing.T) {
	f := newFake(t)
	c := f.client(t)
	_, err := c.Activate(context.Background(), tsapi.ActivateRequest{
		Devices: Devices(tsapi.DeviceIDs{{Kind: tsapi.KindEID, ID: testEID}, {Kind: tsapi.KindICCID, ID: testICCID}}), AccountName: testAccount, ServicePlan: "M2M4GB"})
	if err == nil || !strings.Contains(err.Error(), "has no imei") {
		t.Fatalf("activate without imei: err = %v, want a message naming the missing imei", err)
	}
	if len(f.recorded()) != 0 {
		t.Fatal("an invalid body was sent")
	}
	if _, err := c.ProfileResume(context.Background(), tsapi.ProfileResumeRequest{Devices: Devices(tsapi.DeviceIDs{{Kind: tsapi.KindICCID, ID: testICCID}}), AccountName: testAccount}); err == nil {
		t.Fatal("profile_resume without servicePlan was accepted")
	}
	if _, err := c.Deactivate(context.Background(), tsapi.DeactivateRequest{Devices: Devices(testDevice()), AccountName: testAccount}); err == nil {
		t.Fatal("deactivate without a reason code was accepted")
	}
}

func TestConcurrentCallsShareOneLogin(t *testing.T) {
	f := newFake(t)
	c := f.client(t)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.ServicePlans(context.Background(), testAccount)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := f.loginCalls.Load(); got != 1 {
		t.Fatalf("20 concurrent calls made %d logins, want 1", got)
	}
	if got := f.tokenCalls.Load(); got != 1 {
		t.Fatalf("20 concurrent calls fetched %d tokens, want 1", got)
	}
}

func TestExpiredSessionLogsInOnceAgain(t *testing.T) {
	f := newFake(t)
	c := f.client(t)
	ctx := context.Background()
	if _, err := c.ServicePlans(ctx, testAccount); err != nil {
		t.Fatal(err)
	}
	f.expireSessions()
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.ServicePlans(ctx, testAccount); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := f.loginCalls.Load(); got != 2 {
		t.Fatalf("logins = %d, want 2 (the first, and one after expiry shared by 10 callers)", got)
	}
	// An action refused for an expired session was not applied, so it is sent again once.
	f.expireSessions()
	if _, err := c.Activate(ctx, tsapi.ActivateRequest{Devices: Devices(testDevice()), AccountName: testAccount, ServicePlan: "M2M4GB"}); err != nil {
		t.Fatal(err)
	}
	if got := f.loginCalls.Load(); got != 3 {
		t.Fatalf("logins = %d, want 3", got)
	}
}

func TestSessionExpiredEveryTimeIsNotALoop(t *testing.T) {
	f := newFake(t)
	c := f.client(t)
	f.loginHook = func(w http.ResponseWriter) bool {
		// Hand out a session the server does not know: every call sees it as expired.
		writeJSON(w, 200, tsapi.LoginResponse{SessionToken: "never-valid"})
		return true
	}
	_, err := c.ServicePlans(context.Background(), testAccount)
	if !IsCode(err, tsapi.CodeSessionExpired) {
		t.Fatalf("err = %v, want SessionToken.Expired", err)
	}
	if got := f.loginCalls.Load(); got != 2 {
		t.Fatalf("logins = %d, want 2 (one re-login per call, never a loop)", got)
	}
}

// A session can expire again right after the new login (a call waiting out 429s): each new
// session gets its own new login, a bounded number of times per call.
func TestSessionExpiringAgainAfterLoginIsReplacedBounded(t *testing.T) {
	f := newFake(t)
	c := f.client(t)
	var n atomic.Int32
	f.loginHook = func(w http.ResponseWriter) bool {
		// A new session each time, which the server never accepts.
		writeJSON(w, 200, tsapi.LoginResponse{SessionToken: fmt.Sprintf("expired-%d", n.Add(1))})
		return true
	}
	_, err := c.ServicePlans(context.Background(), testAccount)
	if !IsCode(err, tsapi.CodeSessionExpired) {
		t.Fatalf("err = %v, want SessionToken.Expired", err)
	}
	if got := f.loginCalls.Load(); got != 1+maxSessionLogins {
		t.Fatalf("logins = %d, want %d (the first, then one per expired session, at most %d)", got, 1+maxSessionLogins, maxSessionLogins)
	}
}

func TestBadPasswordIsTriedOnce(t *testing.T) {
	f := newFake(t)
	c := f.client(t, func(c *Config) { c.Password = "wrong" })
	ctx := context.Background()
	for range 5 {
		_, err := c.ServicePlans(ctx, testAccount)
		var le *LoginError
		if !errors.As(err, &le) {
			t.Fatalf("err = %v, want a LoginError", err)
		}
		if !strings.Contains(err.Error(), "five failed logins lock the account") {
			t.Fatalf("message does not explain why it is not retried: %v", err)
		}
	}
	if got := f.loginCalls.Load(); got != 1 {
		t.Fatalf("a refused login was sent %d times; five lock a real account", got)
	}
}

func TestBadClientCredentials(t *testing.T) {
	f := newFake(t)
	c := f.client(t, func(c *Config) { c.ClientSecret = "nope" })
	_, err := c.ServicePlans(context.Background(), testAccount)
	if err == nil || !strings.Contains(err.Error(), "client_id and client_secret") {
		t.Fatalf("err = %v, want a message naming client_id and client_secret", err)
	}
	if got := f.tokenCalls.Load(); got != 1 {
		t.Fatalf("token calls = %d, want 1 (a 401 is not retried)", got)
	}
}

// recordWaits makes c record its retry waits instead of spending them.
func recordWaits(c *Client) *[]time.Duration {
	var mu sync.Mutex
	waits := []time.Duration{}
	c.pause = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		waits = append(waits, d)
		return ctx.Err()
	}
	return &waits
}

func TestRateLimited429IsRetriedHonouringRetryAfter(t *testing.T) {
	f := newFake(t)
	// A backoff of its own would wait at least 30 minutes: every wait seen below is the server's.
	c := f.client(t, func(c *Config) { c.RetryBaseDelay, c.RetryMaxDelay = time.Hour, time.Hour })
	waits := recordWaits(c)
	f.onAction = func(n int, _ string, _ tsapi.ProfileRequest, w http.ResponseWriter) bool {
		switch n {
		case 1:
			w.Header().Set("Retry-After", "7")
		case 2:
			w.Header().Set("Retry-After", "0")
		default:
			return false
		}
		writeJSON(w, 429, tsapi.ErrorResponse{ErrorCode: "UnifiedWebService.REQUEST_FAILED.TooManyRequests", ErrorMessage: "slow down"})
		return true
	}
	res, err := c.Activate(context.Background(), tsapi.ActivateRequest{Devices: Devices(testDevice()), AccountName: testAccount, ServicePlan: "M2M4GB"})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(f.recorded()); got != 3 {
		t.Fatalf("calls = %d, want 3 (two 429s, then success)", got)
	}
	if res.Requests[0].RequestID != "req-3" {
		t.Fatalf("request id = %q", res.Requests[0].RequestID)
	}
	if fmt.Sprint(*waits) != "[7s 0s]" {
		t.Fatalf("waits = %v, want [7s 0s] as the Retry-After headers said", *waits)
	}
}

func TestTokenCallRetriesHonourRetryAfter(t *testing.T) {
	f := newFake(t)
	c := f.client(t, func(c *Config) { c.RetryBaseDelay, c.RetryMaxDelay = time.Hour, time.Hour })
	waits := recordWaits(c)
	f.tokenHook = func(n int, w http.ResponseWriter) bool {
		switch n {
		case 1:
			w.Header().Set("Retry-After", "3")
			writeJSON(w, 429, map[string]string{"error": "slow_down"})
		case 2:
			w.Header().Set("Retry-After", "1")
			writeJSON(w, 503, map[string]string{"error": "unavailable"})
		default:
			return false
		}
		return true
	}
	if _, err := c.ServicePlans(context.Background(), testAccount); err != nil {
		t.Fatal(err)
	}
	if got := f.tokenCalls.Load(); got != 3 {
		t.Fatalf("token calls = %d, want 3 (a 429, a 503, then a token)", got)
	}
	if fmt.Sprint(*waits) != "[3s 1s]" {
		t.Fatalf("waits = %v, want [3s 1s] as the Retry-After headers said", *waits)
	}
}

// The OAuth token is reused until a minute before its expires_in: a token that lives less
// than that minute is fetched again for every call, one that lives longer is fetched once.
func TestTokenCachedUntilAMinuteBeforeExpiry(t *testing.T) {
	for _, tc := range []struct {
		expiresIn int32
		want      int32
	}{
		{3600, 0},
		{120, 0},
		{59, 3},
	} {
		t.Run(fmt.Sprint(tc.expiresIn), func(t *testing.T) {
			f := newFake(t)
			f.expiresIn.Store(tc.expiresIn)
			c := f.client(t)
			ctx := context.Background()
			// The first call fetches a token and logs in; the next three only use the token.
			if _, err := c.ServicePlans(ctx, testAccount); err != nil {
				t.Fatal(err)
			}
			first := f.tokenCalls.Load()
			for range 3 {
				if _, err := c.ServicePlans(ctx, testAccount); err != nil {
					t.Fatal(err)
				}
			}
			if got := f.tokenCalls.Load() - first; got != tc.want {
				t.Fatalf("expires_in %d: %d new tokens for 3 more calls, want %d", tc.expiresIn, got, tc.want)
			}
		})
	}
}

// A gateway that no longer accepts the cached token (revoked early) gets a new one, once.
func TestRevokedTokenIsFetchedAgainOnce(t *testing.T) {
	f := newFake(t)
	c := f.client(t)
	ctx := context.Background()
	if _, err := c.ServicePlans(ctx, testAccount); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	delete(f.issued, "oauth-token")
	f.mu.Unlock()
	if _, err := c.ServicePlans(ctx, testAccount); err != nil {
		t.Fatal(err)
	}
	if got := f.tokenCalls.Load(); got != 2 {
		t.Fatalf("token calls = %d, want 2", got)
	}
	// A gateway that refuses every token is an error, not a loop.
	f.mu.Lock()
	f.issued = map[string]bool{"unused": true}
	f.mu.Unlock()
	f.tokenHook = func(_ int, w http.ResponseWriter) bool {
		writeJSON(w, 200, tsapi.TokenResponse{AccessToken: "refused", TokenType: "Bearer", ExpiresIn: 3600})
		return true
	}
	_, err := c.ServicePlans(ctx, testAccount)
	if !IsCode(err, tsapi.CodeMissingCredentials) && !IsCode(err, tsapi.CodeInvalidCredentials) {
		t.Fatalf("err = %v, want the gateway's refusal", err)
	}
	if got := f.tokenCalls.Load(); got != 3 {
		t.Fatalf("token calls = %d, want 3 (one more fetch, then the refusal is reported)", got)
	}
}

func TestServerErrorOnActionIsNotRetried(t *testing.T) {
	f := newFake(t)
	c := f.client(t)
	f.onAction = func(_ int, _ string, _ tsapi.ProfileRequest, w http.ResponseWriter) bool {
		writeJSON(w, 502, map[string]string{"message": "bad gateway"})
		return true
	}
	_, err := c.Activate(context.Background(), tsapi.ActivateRequest{Devices: Devices(testDevice()), AccountName: testAccount, ServicePlan: "M2M4GB"})
	if !IsOutcomeUnknown(err) {
		t.Fatalf("err = %v, want an outcome-unknown error", err)
	}
	if !strings.Contains(err.Error(), testEID) || !strings.Contains(err.Error(), "not sent again") {
		t.Fatalf("message should name the device and say it was not resent: %v", err)
	}
	if got := len(f.recorded()); got != 1 {
		t.Fatalf("a 5xx action was sent %d times; it may have been applied, so never twice", got)
	}
}

func TestTimeoutAfterSendingActionIsOutcomeUnknown(t *testing.T) {
	f := newFake(t)
	release := make(chan struct{})
	defer close(release)
	f.onAction = func(_ int, _ string, _ tsapi.ProfileRequest, w http.ResponseWriter) bool {
		<-release
		return false
	}
	c := f.client(t, func(c *Config) { c.HTTPClient = &http.Client{Timeout: 200 * time.Millisecond} })
	_, err := c.Activate(context.Background(), tsapi.ActivateRequest{Devices: Devices(testDevice()), AccountName: testAccount, ServicePlan: "M2M4GB"})
	if !IsOutcomeUnknown(err) {
		t.Fatalf("err = %v, want outcome unknown", err)
	}
	if got := len(f.recorded()); got != 1 {
		t.Fatalf("sent %d times", got)
	}
}

func TestServerErrorOnReadIsRetried(t *testing.T) {
	f := newFake(t)
	c := f.client(t)
	var n atomic.Int32
	f.onList = func(_ tsapi.DeviceListRequest, w http.ResponseWriter) bool {
		if n.Add(1) <= 2 {
			writeJSON(w, 503, map[string]string{"message": "unavailable"})
			return true
		}
		return false
	}
	if _, err := c.ListDevices(context.Background(), tsapi.DeviceListRequest{AccountName: testAccount}); err != nil {
		t.Fatal(err)
	}
	if got := n.Load(); got != 3 {
		t.Fatalf("list calls = %d, want 3", got)
	}
}

func TestConnectionRefusedActionIsRetriedBecauseItWasNeverSent(t *testing.T) {
	f := newFake(t)
	c := f.client(t)
	// Prime auth, then point the action at a closed port via a transport that refuses once.
	if _, err := c.ServicePlans(context.Background(), testAccount); err != nil {
		t.Fatal(err)
	}
	var refused atomic.Int32
	c.http = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if strings.Contains(r.URL.Path, PathActions) && refused.Add(1) == 1 {
			return nil, &netOpDialError
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
	if _, err := c.Activate(context.Background(), tsapi.ActivateRequest{Devices: Devices(testDevice()), AccountName: testAccount, ServicePlan: "M2M4GB"}); err != nil {
		t.Fatal(err)
	}
	if got := len(f.recorded()); got != 1 {
		t.Fatalf("actions received = %d, want 1", got)
	}
}

func TestBulkSplittingAndHalving(t *testing.T) {
	f := newFake(t)
	c := f.client(t, func(c *Config) { c.BulkSize = 10 })
	devs := make([]tsapi.DeviceIDs, 25)
	for i := range devs {
		devs[i] = tsapi.DeviceIDs{{Kind: tsapi.KindEID, ID: fmt.Sprintf("%032d", i)}, {Kind: tsapi.KindICCID, ID: fmt.Sprintf("%020d", i)}}
	}
	ctx := context.Background()
	res, err := c.ChangeServicePlan(ctx, tsapi.ServicePlanRequest{Devices: Devices(devs...), AccountName: testAccount, ServicePlan: "M2M4GB"})
	if err != nil {
		t.Fatal(err)
	}
	sizes := []int{}
	for _, r := range res.Requests {
		sizes = append(sizes, len(r.Devices))
	}
	if fmt.Sprint(sizes) != "[10 10 5]" {
		t.Fatalf("chunks = %v, want [10 10 5]", sizes)
	}
	// ThingSpace refuses more than 4 devices per call: the client halves until it fits, and
	// remembers.
	f.mu.Lock()
	f.actions = nil
	f.mu.Unlock()
	f.onAction = func(_ int, _ string, body tsapi.ProfileRequest, w http.ResponseWriter) bool {
		if len(body.Devices) > 4 {
			writeJSON(w, 400, tsapi.ErrorResponse{ErrorCode: "DeviceService.INPUT_INVALID.MaxRequestsExceeded", ErrorMessage: "too many devices"})
			return true
		}
		return false
	}
	res, err = c.ChangeServicePlan(ctx, tsapi.ServicePlanRequest{Devices: Devices(devs[:12]...), AccountName: testAccount, ServicePlan: "M2M4GB"})
	if err != nil {
		t.Fatal(err)
	}
	if c.BulkSize() != 2 {
		t.Fatalf("bulk size = %d, want 2 (10 → 5 → 2)", c.BulkSize())
	}
	total := 0
	for _, r := range res.Requests {
		total += len(r.Devices)
	}
	if total != 12 || len(res.Requests) != 6 {
		t.Fatalf("accepted %d devices in %d requests, want 12 in 6", total, len(res.Requests))
	}
	// NumberofDevices (the old 200 cap) halves too.
	f.onAction = func(_ int, _ string, body tsapi.ProfileRequest, w http.ResponseWriter) bool {
		if len(body.Devices) > 1 {
			writeJSON(w, 400, tsapi.ErrorResponse{ErrorCode: "DeviceService.INPUT_INVALID.NumberofDevices", ErrorMessage: "too many"})
			return true
		}
		return false
	}
	if _, err := c.ChangeServicePlan(ctx, tsapi.ServicePlanRequest{Devices: Devices(devs[:2]...), AccountName: testAccount, ServicePlan: "M2M4GB"}); err != nil {
		t.Fatal(err)
	}
	if c.BulkSize() != 1 {
		t.Fatalf("bulk size = %d, want 1", c.BulkSize())
	}
}

func TestPartialBulkFailureReturnsAcceptedChunks(t *testing.T) {
	f := newFake(t)
	c := f.client(t, func(c *Config) { c.BulkSize = 2 })
	f.onAction = func(n int, _ string, _ tsapi.ProfileRequest, w http.ResponseWriter) bool {
		if n == 2 {
			writeJSON(w, 500, map[string]string{"message": "boom"})
			return true
		}
		return false
	}
	devs := []tsapi.DeviceIDs{testDevice(), testDevice(), testDevice()}
	res, err := c.Activate(context.Background(), tsapi.ActivateRequest{Devices: Devices(devs...), AccountName: testAccount, ServicePlan: "M2M4GB"})
	if !IsOutcomeUnknown(err) {
		t.Fatalf("err = %v", err)
	}
	if res == nil || len(res.Requests) != 1 || res.Requests[0].RequestID != "req-1" {
		t.Fatalf("accepted chunks = %+v, want the first chunk", res)
	}
}

func TestErrorEnvelopeAndCodeMatching(t *testing.T) {
	f := newFake(t)
	c := f.client(t)
	f.onList = func(_ tsapi.DeviceListRequest, w http.ResponseWriter) bool {
		writeJSON(w, 400, tsapi.ErrorResponse{ErrorCode: "DeviceService.REQUEST_FAILED.DeviceNotFound", ErrorMessage: "Device not found"})
		return true
	}
	_, err := c.GetDevice(context.Background(), testAccount, tsapi.DeviceID{Kind: tsapi.KindEID, ID: testEID})
	if !IsDeviceNotFound(err) {
		t.Fatalf("err = %v, want device not found", err)
	}
	var apiErr *Error
	if !errors.As(err, &apiErr) {
		// GetDevice wraps ErrDeviceNotFound; the list error itself keeps the envelope.
		_, err = c.ListDevices(context.Background(), tsapi.DeviceListRequest{AccountName: testAccount})
		if !errors.As(err, &apiErr) {
			t.Fatalf("no *Error in %v", err)
		}
	}
	if apiErr.HTTPStatus != 400 || apiErr.CodeSuffix() != "REQUEST_FAILED.DeviceNotFound" || apiErr.Message != "Device not found" {
		t.Fatalf("error = %+v", apiErr)
	}
	e := &Error{Code: "UnifiedWebService.REQUEST_FAILED.SessionToken.Expired"}
	for code, want := range map[string]bool{
		"SessionToken.Expired": true, "sessiontoken.expired": true, "REQUEST_FAILED.SessionToken.Expired": true,
		"Expired": true, "Token.Expired": false, "SessionToken": false, "DeviceNotFound": false, "": false,
	} {
		if got := e.HasCode(code); got != want {
			t.Errorf("HasCode(%q) = %v, want %v", code, got, want)
		}
	}
}

func TestListAllDevicesFollowsPages(t *testing.T) {
	f := newFake(t)
	c := f.client(t)
	f.onList = func(body tsapi.DeviceListRequest, w http.ResponseWriter) bool {
		start := int(body.LargestDeviceIDSeen)
		var devs []tsapi.Device
		for i := start + 1; i <= min(start+3, 7); i++ {
			devs = append(devs, tsapi.Device{AccountName: testAccount,
				DeviceIDs:           tsapi.DeviceIDs{{Kind: "eid", ID: fmt.Sprintf("%032d", i)}},
				CarrierInformations: []tsapi.CarrierInformation{{CarrierName: "Verizon Wireless", ServicePlan: "M2M4GB", State: "active"}},
				ExtendedAttributes:  []tsapi.KeyValue{{Key: "DeviceId", Value: fmt.Sprint(i)}}})
		}
		more := start+3 < 7
		status := 200
		if more {
			status = 202
		}
		writeJSON(w, status, tsapi.DeviceListResponse{HasMoreData: more, Devices: devs})
		return true
	}
	var seen []string
	err := c.ListAllDevices(context.Background(), tsapi.DeviceListRequest{AccountName: testAccount}, func(d tsapi.Device) error {
		seen = append(seen, d.DeviceIDs.Get("EID"))
		if d.State() != tsapi.StateActive || d.ServicePlan() != "M2M4GB" {
			t.Errorf("device %+v", d)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 7 {
		t.Fatalf("saw %d devices, want 7", len(seen))
	}
	// A cursor that does not advance is an error, not an endless loop.
	f.onList = func(_ tsapi.DeviceListRequest, w http.ResponseWriter) bool {
		writeJSON(w, 202, tsapi.DeviceListResponse{HasMoreData: true})
		return true
	}
	if err := c.ListAllDevices(context.Background(), tsapi.DeviceListRequest{AccountName: testAccount}, func(tsapi.Device) error { return nil }); err == nil {
		t.Fatal("a stuck cursor did not fail")
	}
}

func TestReadsAndRegistration(t *testing.T) {
	f := newFake(t)
	c := f.client(t)
	ctx := context.Background()
	st, err := c.RequestStatus(ctx, testAccount, "abc")
	if err != nil || st.RequestID != "abc" || len(st.SubRequests) != 1 || st.SubRequests[0].IDs.Get("eid") != "1" {
		t.Fatalf("status = %+v, %v", st, err)
	}
	plans, err := c.ServicePlans(ctx, testAccount)
	if err != nil || len(plans) != 2 {
		t.Fatalf("plans = %+v, %v", plans, err)
	}
	regs, err := c.ListCallbacks(ctx, testAccount)
	if err != nil || len(regs) != 1 || regs[0].ServiceName != tsapi.ServiceDeviceProfile {
		t.Fatalf("callbacks = %+v, %v", regs, err)
	}
	r, err := c.RegisterCallback(ctx, testAccount, tsapi.RegisterCallbackRequest{Name: tsapi.ServiceDeviceProfile, URL: "https://relay.example/cb", Username: "u", Password: "p"})
	if err != nil || r.ServiceName != tsapi.ServiceDeviceProfile {
		t.Fatalf("register = %+v, %v", r, err)
	}
	d, err := c.DeleteCallback(ctx, testAccount, tsapi.ServiceDeviceProfile)
	if err != nil || d.ServiceName != tsapi.ServiceDeviceProfile {
		t.Fatalf("delete = %+v, %v", d, err)
	}
}

func TestStatusSDKVariant(t *testing.T) {
	var st tsapi.RequestStatusResponse
	err := json.Unmarshal([]byte(`{"requestId":"r","status":"Failure","subrequests":[{"ids":{"kind":"Eid","id":"9"},"status":"Failure"}]}`), &st)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.SubRequests) != 1 || st.SubRequests[0].IDs.Get("eid") != "9" || tsapi.NormalizeStatus(st.SubRequests[0].Status) != tsapi.StatusFailed {
		t.Fatalf("%+v", st)
	}
}

func TestLogsNeverContainCredentials(t *testing.T) {
	f := newFake(t)
	c := f.client(t)
	ctx, logged := withCapturedLog(slog.LevelDebug)
	if _, err := c.Activate(ctx, tsapi.ActivateRequest{Devices: Devices(testDevice()), AccountName: testAccount, ServicePlan: "M2M4GB"}); err != nil {
		t.Fatal(err)
	}
	out := logged.String()
	if !strings.Contains(out, PathActions+"activate") {
		t.Fatalf("the action was not logged: %s", out)
	}
	for _, secret := range []string{"csecret", "oauth-token", "session-1", "pw\""} {
		if strings.Contains(out, secret) {
			t.Fatalf("log contains %q:\n%s", secret, out)
		}
	}
}

func TestNewValidatesConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{ClientID: "a", ClientSecret: "b", Username: "c"}, "password"},
		{Config{BaseURL: "ftp://x", ClientID: "a", ClientSecret: "b", Username: "c", Password: "d"}, "https://"},
		{Config{BaseURL: "https://x/api", ClientID: "a", ClientSecret: "b", Username: "c", Password: "d"}, "scheme://host[:port] only"},
	} {
		_, err := New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error mentioning %q", tc.cfg, err, tc.want)
		}
	}
	if _, err := New(Config{BaseURL: "http://127.0.0.1:8442/", ClientID: "a", ClientSecret: "b", Username: "c", Password: "d"}); err != nil {
		t.Errorf("plain http with a port and trailing slash: %v", err)
	}
}

var netOpDialError = net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// capturedLog keeps what a test's client logs (callers log from several goroutines).
type capturedLog struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *capturedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *capturedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// withCapturedLog returns a context whose client logs, from level up, go to the capture.
func withCapturedLog(level slog.Level) (context.Context, *capturedLog) {
	l := &capturedLog{}
	return WithLogger(context.Background(), slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: level}))), l
}

// A Config logged by a caller shows no secret.
func TestLoggedConfigHidesSecrets(t *testing.T) {
	var buf strings.Builder
	log := slog.New(slog.NewTextHandler(&buf, nil))
	log.Info("config", "cfg", Config{BaseURL: "https://x", ClientID: "cid", ClientSecret: "csecret", Username: "user", Password: "hunter2"})
	out := buf.String()
	for _, secret := range []string{"csecret", "hunter2"} {
		if strings.Contains(out, secret) {
			t.Fatalf("log shows %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{"client_id=cid", "password=(redacted)"} {
		if !strings.Contains(out, want) {
			t.Fatalf("log lacks %q:\n%s", want, out)
		}
	}
}

func TestRateLimited429SaysWhenAndWhyItWaits(t *testing.T) {
	f := newFake(t)
	c := f.client(t)
	recordWaits(c)
	ctx, logged := withCapturedLog(slog.LevelInfo)
	n := 0
	f.onAction = func(_ int, _ string, _ tsapi.ProfileRequest, w http.ResponseWriter) bool {
		n++
		if n > 1 {
			return false
		}
		w.Header().Set("Retry-After", "7")
		writeJSON(w, 429, tsapi.ErrorResponse{ErrorCode: "UnifiedWebService.REQUEST_FAILED.TooManyRequests", ErrorMessage: "slow down"})
		return true
	}
	if _, err := c.Activate(ctx, tsapi.ActivateRequest{Devices: Devices(testDevice()), AccountName: testAccount, ServicePlan: "M2M4GB"}); err != nil {
		t.Fatal(err)
	}
	out := logged.String()
	for _, want := range []string{"level=INFO", "HTTP 429", "retry_in=7s", "retry_at=", `wait_from="ThingSpace's Retry-After: 7"`, "attempt=1"} {
		if !strings.Contains(out, want) {
			t.Errorf("the 429 log lacks %s:\n%s", want, out)
		}
	}
}

// TestRateLimitWaitIsLogged: a call that must wait a second or more for the provider's own
// rate limit says so, with the rate, so that a long plan does not look stuck.
func TestRateLimitWaitIsLogged(t *testing.T) {
	t.Parallel() // it waits out the limiter for seconds
	f := newFake(t)
	c := f.client(t, func(cfg *Config) { cfg.RequestsPerSecond, cfg.Burst = 0.5, 1 })
	ctx, logged := withCapturedLog(slog.LevelInfo)
	// The first call takes the only token (and the token calls of the login): the next one
	// waits about two seconds at half a request per second.
	for range 2 {
		if _, err := c.ServicePlans(ctx, testAccount); err != nil {
			t.Fatal(err)
		}
	}
	out := logged.String()
	for _, want := range []string{"level=INFO", "waiting for the provider's rate limit", "requests_per_second=0.5", "path=/api/m2m/v1/plans/"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %s:\n%s", want, out)
		}
	}
}
