package provider

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// Terraform interrupted (Ctrl-C cancels the provider's context) while Create waits for the
// activate's callback: Create returns the state with the request id and create_confirmed =
// false in private state, and the Delete of that instance resolves the request and sends no
// carrier action. This runs the provider through its protocol server, as Terraform does: the
// testing framework cannot interrupt an apply.
func TestESIMProfile_interruptedCreate(t *testing.T) {
	// The interrupt must land before the callback: a wide margin, since a loaded machine can
	// starve the interrupting goroutine for a while (the Delete below then waits it out).
	env := newTestEnv(t, envOptions{Relay: true, CallbackDelay: 10 * time.Second})
	us := env.plansOfType("US")
	dev := env.device(t, 0)
	ctx := context.Background()
	srv, schemas := configuredServer(t, env, "1.11.4", map[string]string{"relay_url": env.RelayAPIURL, "relay_token": testRelayToken})
	str := func(s string) tftypes.Value { return tftypes.NewValue(tftypes.String, s) }

	const typeName = "thingspace_esim_profile"
	rtype := schemas.ResourceSchemas[typeName].ValueType()
	null := tftypes.NewValue(rtype, nil)
	config := objectWith(rtype, map[string]tftypes.Value{"eid": str(dev.EID), "service_plan": str(us[0])})
	plan, err := srv.PlanResourceChange(ctx, &tfprotov6.PlanResourceChangeRequest{TypeName: typeName,
		PriorState: dynamicValue(t, null), ProposedNewState: dynamicValue(t, config), Config: dynamicValue(t, config)})
	if err != nil {
		t.Fatal(err)
	}
	noErrors(t, "plan", plan.Diagnostics)

	// Interrupt once ThingSpace accepted the activate (bounded wait).
	actx, interrupt := context.WithCancel(ctx)
	defer interrupt()
	go func() {
		waitFor(30*time.Second, func() bool { return env.actionCount("activate") > 0 })
		interrupt()
	}()
	created, err := srv.ApplyResourceChange(actx, &tfprotov6.ApplyResourceChangeRequest{TypeName: typeName,
		PriorState: dynamicValue(t, null), PlannedState: plan.PlannedState, Config: dynamicValue(t, config),
		PlannedPrivate: plan.PlannedPrivate})
	if err != nil {
		t.Fatal(err)
	}
	if len(created.Diagnostics) == 0 || !strings.Contains(created.Diagnostics[0].Detail, "interrupted") ||
		!strings.Contains(created.Diagnostics[0].Detail, "EID "+dev.EID) {
		t.Fatalf("create diagnostics = %+v, want the interrupt naming the EID", created.Diagnostics)
	}
	state, err := created.NewState.Unmarshal(rtype)
	if err != nil || state.IsNull() {
		t.Fatalf("create returned no state (%v): the accepted request would be forgotten", err)
	}
	var attrs map[string]tftypes.Value
	if err := state.As(&attrs); err != nil {
		t.Fatal(err)
	}
	var rid string
	if err := attrs["last_request_id"].As(&rid); err != nil || rid == "" || !strings.Contains(created.Diagnostics[0].Detail, rid) {
		t.Errorf("last_request_id = %q (%v), want the activate's request id, named in the error", rid, err)
	}
	var private map[string][]byte
	if err := json.Unmarshal(created.Private, &private); err != nil || string(private[privateCreateKey]) != `{"confirmed":false}` {
		t.Fatalf("private state = %s (%v), want create_confirmed = false", created.Private, err)
	}

	// Destroy the instance: its Delete waits for the request and sends nothing.
	destroy, err := srv.PlanResourceChange(ctx, &tfprotov6.PlanResourceChangeRequest{TypeName: typeName,
		PriorState: created.NewState, ProposedNewState: dynamicValue(t, null), Config: dynamicValue(t, null),
		PriorPrivate: created.Private})
	if err != nil {
		t.Fatal(err)
	}
	noErrors(t, "plan destroy", destroy.Diagnostics)
	dctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	deleted, err := srv.ApplyResourceChange(dctx, &tfprotov6.ApplyResourceChangeRequest{TypeName: typeName,
		PriorState: created.NewState, PlannedState: destroy.PlannedState, Config: dynamicValue(t, null),
		PlannedPrivate: destroy.PlannedPrivate})
	if err != nil {
		t.Fatal(err)
	}
	noErrors(t, "destroy", deleted.Diagnostics)
	expectDeviceActions(t, env.Sim, map[string][]string{dev.EID: {"activate"}}) // only the interrupted activate
	if v := env.deviceByEID(t, dev.EID); v.State != "active" {
		t.Errorf("device state after destroying the unconfirmed instance = %s, want active (left for the replacement to adopt)", v.State)
	}
}

// Ctrl-C during a real apply, with the CLI under test (Terraform or OpenTofu) running the
// provider as a plugin, as for a user: the CLI stops the provider, Create returns the instance
// with the request id, the CLI saves it as tainted, and the next apply finishes the job with the
// activate already sent: its replacement adopts the device. One activate in all; the plan after
// is empty.
func TestAccESIMProfile_interruptedApply(t *testing.T) {
	t.Parallel() // waits on slow callbacks: overlaps with the other waiting tests
	a := newStoppedApply(t)
	dev, w := a.dev, a.w
	output, err := a.run(t, nil, func(apply *exec.Cmd) {
		if err := apply.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
	}, func(apply *exec.Cmd) { _ = apply.Process.Kill() })
	text := output
	if i := strings.Index(text, "Creating..."); i >= 0 {
		text = text[i:]
	}
	t.Logf("interrupted %s apply: %v\n%s", w.cli.Name, err, text)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !strings.Contains(output, "interrupted") || !strings.Contains(output, dev.EID) {
		t.Fatalf("interrupted %s apply: %v, want an error naming the interrupt and EID %s", w.cli.Name, err, dev.EID)
	}

	shown, code := w.run("show", "-json")
	if code != 0 {
		t.Fatalf("show -json: exit code %d:\n%s", code, shown)
	}
	var state struct {
		Values struct {
			RootModule struct {
				Resources []struct {
					Address string         `json:"address"`
					Tainted bool           `json:"tainted"`
					Values  map[string]any `json:"values"`
				} `json:"resources"`
			} `json:"root_module"`
		} `json:"values"`
	}
	if err := json.Unmarshal([]byte(shown), &state); err != nil {
		t.Fatalf("show -json: %v:\n%s", err, shown)
	}
	rs := state.Values.RootModule.Resources
	if len(rs) != 1 || rs[0].Address != "thingspace_esim_profile.p" || !rs[0].Tainted || rs[0].Values["last_request_id"] == "" {
		t.Fatalf("state after the interrupt = %+v, want thingspace_esim_profile.p, tainted, with the activate's request id", rs)
	}

	a.expectFinished(t, "interrupt")
}
