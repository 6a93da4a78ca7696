package provider

// Helpers shared by the thingspace_callback_listener tests.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	acc "github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/fleetform/terraform-provider-thingspace/internal/sim"
	"github.com/fleetform/terraform-provider-thingspace/internal/thingspace"
	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// listenerEnv is a simulator plus a ThingSpace client of its own, standing for whoever else
// changes the account's callback registration.
type listenerEnv struct {
	*testEnv
	client *thingspace.Client
}

func newListenerEnv(t *testing.T) *listenerEnv {
	t.Helper()
	env := newTestEnv(t, envOptions{Devices: 4})
	o := sim.DefaultOptions()
	c, err := thingspace.New(thingspace.Config{BaseURL: env.SimURL, ClientID: o.ClientID, ClientSecret: o.ClientSecret,
		Username: o.Username, Password: o.Password, RequestsPerSecond: 500})
	if err != nil {
		t.Fatal(err)
	}
	return &listenerEnv{testEnv: env, client: c}
}

// registration returns the account's DeviceProfileService registration, nil if none.
func (e *listenerEnv) registration(t *testing.T) *tsapi.CallbackRegistration {
	t.Helper()
	regs, err := e.client.ListCallbacks(context.Background(), e.Sim.Account())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range regs {
		if r.ServiceName == tsapi.ServiceDeviceProfile {
			return &r
		}
	}
	return nil
}

func (e *listenerEnv) register(t *testing.T, url, user, password string) {
	t.Helper()
	if _, err := e.client.RegisterCallback(context.Background(), e.Sim.Account(), tsapi.RegisterCallbackRequest{
		Name: tsapi.ServiceDeviceProfile, URL: url, Username: user, Password: password,
	}); err != nil {
		t.Fatal(err)
	}
}

func (e *listenerEnv) unregister(t *testing.T) {
	t.Helper()
	if _, err := e.client.DeleteCallback(context.Background(), e.Sim.Account(), tsapi.ServiceDeviceProfile); err != nil {
		t.Fatal(err)
	}
}

// expectRegistration checks, after a step, what ThingSpace has registered.
func (e *listenerEnv) expectRegistration(t *testing.T, url, user, password string) acc.TestCheckFunc {
	return func(*terraform.State) error {
		r := e.registration(t)
		switch {
		case r == nil:
			return fmt.Errorf("no %s registration", tsapi.ServiceDeviceProfile)
		case r.URL != url || r.Username != user || r.Password != password:
			return fmt.Errorf("registration is %s user %q password %q; want %s user %q password %q",
				urlOrigin(r.URL), r.Username, r.Password, urlOrigin(url), user, password)
		}
		return nil
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func testAccCallbackListenerConfig_basic(e *listenerEnv, body string) string {
	return e.providerBlock() + fmt.Sprintf(`
resource "thingspace_callback_listener" "relay" {
  url = %q
%s
}
`, relayURL, body)
}

func hasWarning(diags diag.Diagnostics, summary string) bool {
	for _, d := range diags {
		if d.Severity() == diag.SeverityWarning && strings.Contains(d.Summary(), summary) {
			return true
		}
	}
	return false
}
