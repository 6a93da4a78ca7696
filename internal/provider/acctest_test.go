package provider

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/sim"
)

// testEnv is a ThingSpace simulator (and, where a test asks for it, a relay) started inside
// the test process on 127.0.0.1, for acceptance tests that run the real Terraform CLI.
type testEnv struct {
	Sim    *sim.Simulator
	SimURL string
}

// envOptions tunes the simulator of one test.
type envOptions struct {
	Devices      int
	Preactivated int
	Faults       string
	Seed         int64
}

func newTestEnv(t *testing.T, o envOptions) *testEnv {
	t.Helper()
	clearProviderEnv(t)
	opts := sim.DefaultOptions()
	opts.Addr = "127.0.0.1:0"
	if o.Devices > 0 {
		opts.Devices = o.Devices
	} else {
		opts.Devices = 60
	}
	opts.Preactivated = o.Preactivated
	opts.Faults = o.Faults
	if o.Seed != 0 {
		opts.Seed = o.Seed
	}
	opts.CallbackDelayMin, opts.CallbackDelayMax = 20*time.Millisecond, 80*time.Millisecond
	opts.CallbackRetryInterval = 200 * time.Millisecond
	s, err := sim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	url, err := s.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return &testEnv{Sim: s, SimURL: url}
}

// providerBlock is a provider configuration pointing at the simulator; extra lines are added
// inside the block.
func (e *testEnv) providerBlock(extra ...string) string {
	o := sim.DefaultOptions()
	return fmt.Sprintf(`
provider "thingspace" {
  base_url            = %q
  client_id           = %q
  client_secret       = %q
  username            = %q
  password            = %q
  account_name        = %q
  requests_per_second = 500
%s
}
`, e.SimURL, o.ClientID, o.ClientSecret, o.Username, o.Password, e.Sim.Account(), strings.Join(extra, "\n"))
}
