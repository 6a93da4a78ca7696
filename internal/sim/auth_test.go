package sim

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// A token lives one hour from its first issue: asked again within the hour, the token endpoint
// answers the same token with the time it has left; after the hour the token is refused and a
// new one is issued.
func TestTokenReusedWithinTheHour(t *testing.T) {
	var clock *fakeClock
	h := newHarness(t, func(o *Options) { clock = withFakeClock(o) })
	clock.advance(59 * time.Minute)
	again, left := h.tokenWithExpiry()
	if again != h.token || left != 60 {
		t.Fatalf("within the hour: token %q (first %q), expires_in %d, want the same token and 60", again, h.token, left)
	}
	clock.advance(time.Minute)
	if code, b := h.call("GET", "/api/m2m/v1/plans/"+h.s.opts.Account, nil, true); code != 401 || !strings.Contains(string(b), "900901") {
		t.Fatalf("token used after its hour: %d %s", code, b)
	}
	if fresh, left := h.tokenWithExpiry(); fresh == h.token || left != 3600 {
		t.Fatalf("after the hour: token %q (first %q), expires_in %d", fresh, h.token, left)
	}
}

func TestTokenBadCredentials(t *testing.T) {
	h := newHarness(t, nil)
	for _, c := range []struct {
		user, pass string
		basic      bool
		code       string
	}{{"sim-client", "wrong", true, "900901"}, {"x", "sim-secret", true, "900901"}, {"", "", false, "900902"}} {
		req, _ := http.NewRequest("POST", h.base+"/api/ts/v1/oauth2/token", strings.NewReader("grant_type=client_credentials"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if c.basic {
			req.SetBasicAuth(c.user, c.pass)
		}
		code, b := h.doReq(req)
		var f tsapi.GatewayFault
		mustJSON(t, b, &f)
		if code != 401 || string(f.Fault.Code) != c.code || f.Fault.Message == "" {
			t.Errorf("%+v: %d %s", c, code, b)
		}
	}
	req, _ := http.NewRequest("POST", h.base+"/api/ts/v1/oauth2/token", strings.NewReader("grant_type=password"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("sim-client", "sim-secret")
	if code, b := h.doReq(req); code != 400 || !strings.Contains(string(b), "unsupported_grant_type") {
		t.Errorf("grant type: %d %s", code, b)
	}
}

func TestBearerRequired(t *testing.T) {
	h := newHarness(t, nil)
	h.token = ""
	code, b := h.call("GET", "/api/m2m/v1/plans/"+h.s.opts.Account, nil, true)
	if code != 401 || !strings.Contains(string(b), `"code":"900902"`) {
		t.Fatalf("missing: %d %s", code, b)
	}
	h.token = "2b0c9a8e-0000-4000-8000-000000000000"
	code, b = h.call("GET", "/api/m2m/v1/plans/"+h.s.opts.Account, nil, true)
	if code != 401 || !strings.Contains(string(b), `"fault":{"code":"900901","description"`) && !strings.Contains(string(b), `"code":"900901"`) {
		t.Fatalf("invalid: %d %s", code, b)
	}
}

func TestTokenExpiryFault(t *testing.T) {
	var clock *fakeClock
	h := newHarness(t, func(o *Options) { clock = withFakeClock(o); o.Faults = "token-expiry=10m" })
	clock.advance(10*time.Minute - time.Second)
	if code, b := h.call("GET", "/api/m2m/v1/plans/"+h.s.opts.Account, nil, true); code != 200 {
		t.Fatalf("token refused before its expiry: %d %s", code, b)
	}
	clock.advance(time.Second)
	code, b := h.call("GET", "/api/m2m/v1/plans/"+h.s.opts.Account, nil, true)
	if code != 401 || !strings.Contains(string(b), "900901") {
		t.Fatalf("expired token accepted: %d %s", code, b)
	}
	if fresh := h.getToken(); fresh == h.token {
		t.Fatal("an expired token was issued again")
	}
}

func TestSessionHeaders(t *testing.T) {
	h := newHarness(t, nil)
	path := "/api/m2m/v1/plans/" + h.s.opts.Account
	code, b := h.call("GET", path, nil, false)
	if code != 400 || !strings.Contains(string(b), "UnifiedWebService.REQUEST_FAILED.SessionToken.Format") {
		t.Fatalf("missing session: %d %s", code, b)
	}
	h.session = "not-a-guid"
	code, b = h.call("GET", path, nil, true)
	if code != 400 || !strings.Contains(string(b), "UnifiedWebService.INPUT_INVALID.SessionToken.Invalid") {
		t.Fatalf("bad session: %d %s", code, b)
	}
	h.session = "2b0c9a8e-0000-4000-8000-000000000000"
	code, b = h.call("GET", path, nil, true)
	if code != 400 || !strings.Contains(string(b), "UnifiedWebService.REQUEST_FAILED.SessionToken.Expired") {
		t.Fatalf("unknown session: %d %s", code, b)
	}
}

func TestSessionIdleExpiryAndLogout(t *testing.T) {
	var clock *fakeClock
	h := newHarness(t, func(o *Options) { clock = withFakeClock(o) })
	path := "/api/m2m/v1/plans/" + h.s.opts.Account
	// Each use restarts the 20-minute idle timer.
	clock.advance(19 * time.Minute)
	if code, b := h.call("GET", path, nil, true); code != 200 {
		t.Fatalf("session used within 20 minutes: %d %s", code, b)
	}
	clock.advance(19 * time.Minute)
	if code, b := h.call("GET", path, nil, true); code != 200 {
		t.Fatalf("session used within 20 minutes of its last use: %d %s", code, b)
	}
	clock.advance(20 * time.Minute)
	code, b := h.call("GET", path, nil, true)
	var e tsapi.ErrorResponse
	mustJSON(t, b, &e)
	if code != 400 || e.ErrorCode != "UnifiedWebService.REQUEST_FAILED.SessionToken.Expired" {
		t.Fatalf("idle session: %d %s", code, b)
	}
	h.session = h.login("sim-user", "sim-pass")
	if code, b := h.call("GET", path, nil, true); code != 200 {
		t.Fatalf("fresh session: %d %s", code, b)
	}
	code, b = h.call("POST", "/api/m2m/v1/session/logout", nil, true)
	if code != 200 || !strings.Contains(string(b), h.session) {
		t.Fatalf("logout: %d %s", code, b)
	}
	if code, _ := h.call("GET", path, nil, true); code != 400 {
		t.Fatalf("session alive after logout: %d", code)
	}
}

func TestSessionExpiryFault(t *testing.T) {
	var clock *fakeClock
	h := newHarness(t, func(o *Options) { clock = withFakeClock(o); o.Faults = "session-expiry=60s" })
	path := "/api/m2m/v1/plans/" + h.s.opts.Account
	// Used all along, the session still expires 60 s after the login.
	for i := 0; i < 3; i++ {
		clock.advance(19 * time.Second)
		if code, _ := h.call("GET", path, nil, true); code != 200 {
			t.Fatalf("session refused %v after login", time.Duration(i+1)*19*time.Second)
		}
	}
	clock.advance(3 * time.Second)
	code, b := h.call("GET", path, nil, true)
	if code != 400 || !strings.Contains(string(b), "SessionToken.Expired") {
		t.Fatalf("forced expiry: %d %s", code, b)
	}
}

func TestLoginLockAfterFiveFailures(t *testing.T) {
	h := newHarness(t, nil)
	for i := 0; i < 5; i++ {
		code, b := h.call("POST", "/api/m2m/v1/session/login", tsapi.LoginRequest{Username: "sim-user", Password: "bad"}, false)
		if code != 400 || !strings.Contains(string(b), "UnifiedWebService.REQUEST_FAILED") {
			t.Fatalf("bad login %d: %d %s", i, code, b)
		}
	}
	code, b := h.call("POST", "/api/m2m/v1/session/login", tsapi.LoginRequest{Username: "sim-user", Password: "sim-pass"}, false)
	if code != 400 || !strings.Contains(string(b), "UserLocked") {
		t.Fatalf("locked user logged in: %d %s", code, b)
	}
	// Four failures and a success reset the count.
	h.s.Reset(false)
	for i := 0; i < 4; i++ {
		h.call("POST", "/api/m2m/v1/session/login", tsapi.LoginRequest{Username: "sim-user", Password: "bad"}, false)
	}
	h.login("sim-user", "sim-pass")
	h.call("POST", "/api/m2m/v1/session/login", tsapi.LoginRequest{Username: "sim-user", Password: "bad"}, false)
	h.login("sim-user", "sim-pass")
	// Login needs the Bearer token.
	h.token = ""
	if code, _ := h.call("POST", "/api/m2m/v1/session/login", tsapi.LoginRequest{Username: "sim-user", Password: "sim-pass"}, false); code != 401 {
		t.Fatalf("login without bearer: %d", code)
	}
}

func TestUnknownResource(t *testing.T) {
	h := newHarness(t, nil)
	code, b := h.call("POST", "/api/m2m/v1/devices/profile/actions/frobnicate", map[string]string{}, true)
	if code != 400 || !strings.Contains(string(b), "900906") {
		t.Fatalf("%d %s", code, b)
	}
}
