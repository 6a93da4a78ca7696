package provider

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
	"github.com/hashicorp/terraform-plugin-log/tflogtest"

	"github.com/fleetform/terraform-provider-thingspace/internal/sim"
)

// protoCore plays the part of Terraform's core against the provider's protocol server, for
// tests that drive thousands of CRUD calls (a CLI run per step would take seconds each): it
// validates, refreshes, plans (with the proposed new state Terraform computes), replaces
// tainted instances, applies, and keeps state and private state as Terraform would, including
// the state an apply that failed returns. Every apply starts a fresh provider "process" (a new
// server), as each Terraform command does.
type protoCore struct {
	providerCfg map[string]tftypes.Value
	typeName    string

	mu     sync.Mutex
	srv    tfprotov6.ProviderServer
	schema *tfprotov6.Schema
	typ    tftypes.Object
	state  map[string]*coreInstance
	// rpc is the context of the call in flight; interrupt cancels it.
	rpc *triggerCtx
}

// coreInstance is one resource instance in the emulated state.
type coreInstance struct {
	val     tftypes.Value
	private []byte
	tainted bool
}

// coreConfig is one resource block: attribute name to Go value (string, bool); an absent
// attribute is null.
type coreConfig map[string]any

func newProtoCore(typeName string, providerCfg map[string]tftypes.Value) *protoCore {
	return &protoCore{providerCfg: providerCfg, typeName: typeName, state: map[string]*coreInstance{}}
}

// start begins a new provider process and configures it.
func (c *protoCore) start(ctx context.Context) error {
	srv, err := providerserver.NewProtocol6WithError(New("test")())()
	if err != nil {
		return err
	}
	sch, err := srv.GetProviderSchema(ctx, &tfprotov6.GetProviderSchemaRequest{})
	if err != nil {
		return err
	}
	psch := sch.Provider.ValueType().(tftypes.Object)
	vals := map[string]tftypes.Value{}
	for name, t := range psch.AttributeTypes {
		if v, ok := c.providerCfg[name]; ok {
			vals[name] = v
		} else {
			vals[name] = tftypes.NewValue(t, nil)
		}
	}
	dv, err := tfprotov6.NewDynamicValue(psch, tftypes.NewValue(psch, vals))
	if err != nil {
		return err
	}
	resp, err := srv.ConfigureProvider(ctx, &tfprotov6.ConfigureProviderRequest{TerraformVersion: "1.11.4", Config: &dv})
	if err != nil {
		return err
	}
	if msg := diagErrors(resp.Diagnostics); msg != "" {
		return fmt.Errorf("configure: %s", msg)
	}
	c.mu.Lock()
	c.srv, c.schema = srv, sch.ResourceSchemas[c.typeName]
	c.typ = c.schema.ValueType().(tftypes.Object)
	c.mu.Unlock()
	return nil
}

func diagErrors(ds []*tfprotov6.Diagnostic) string {
	var out []string
	for _, d := range ds {
		if d.Severity == tfprotov6.DiagnosticSeverityError {
			out = append(out, d.Summary+": "+d.Detail)
		}
	}
	return strings.Join(out, "\n")
}

// object builds a value of the resource's type from a configuration.
func (c *protoCore) object(cfg coreConfig) tftypes.Value {
	vals := map[string]tftypes.Value{}
	for name, t := range c.typ.AttributeTypes {
		v, ok := cfg[name]
		if !ok {
			v = nil
		}
		vals[name] = tftypes.NewValue(t, v)
	}
	return tftypes.NewValue(c.typ, vals)
}

// proposed is Terraform's proposed new state: configured values, and prior values for computed
// attributes left unset.
func (c *protoCore) proposed(prior, config tftypes.Value) tftypes.Value {
	var cfg, pri map[string]tftypes.Value
	_ = config.As(&cfg)
	if !prior.IsNull() {
		_ = prior.As(&pri)
	}
	out := map[string]tftypes.Value{}
	for name, t := range c.typ.AttributeTypes {
		v := cfg[name]
		if v.IsNull() && c.computed(name) && pri != nil {
			v = pri[name]
		}
		if v.Type() == nil {
			v = tftypes.NewValue(t, nil)
		}
		out[name] = v
	}
	return tftypes.NewValue(c.typ, out)
}

func (c *protoCore) computed(name string) bool {
	for _, a := range c.schema.Block.Attributes {
		if a.Name == name {
			return a.Computed
		}
	}
	return false
}

func (c *protoCore) dv(v tftypes.Value) *tfprotov6.DynamicValue {
	d, err := tfprotov6.NewDynamicValue(c.typ, v)
	if err != nil {
		panic(err)
	}
	return &d
}

func (c *protoCore) value(d *tfprotov6.DynamicValue) tftypes.Value {
	if d == nil {
		return tftypes.NewValue(c.typ, nil)
	}
	v, err := d.Unmarshal(c.typ)
	if err != nil {
		panic(err)
	}
	return v
}

// triggerCtx is a context that a test ends from outside at a chosen moment, with the error of
// an interrupt (Canceled) or a time-out (DeadlineExceeded).
type triggerCtx struct {
	context.Context
	once sync.Once
	done chan struct{}
	mu   sync.Mutex
	err  error
}

func newTriggerCtx(parent context.Context) *triggerCtx {
	return &triggerCtx{Context: parent, done: make(chan struct{})}
}

func (t *triggerCtx) Done() <-chan struct{} { return t.done }

func (t *triggerCtx) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

func (t *triggerCtx) fire(err error) {
	t.once.Do(func() {
		t.mu.Lock()
		t.err = err
		t.mu.Unlock()
		close(t.done)
	})
}

// interrupt ends the call in flight (if any) with err.
func (c *protoCore) interrupt(err error) {
	c.mu.Lock()
	r := c.rpc
	c.mu.Unlock()
	if r != nil {
		r.fire(err)
	}
}

// call runs f on a context that interrupt can end, bounded by limit.
func (c *protoCore) call(parent context.Context, limit time.Duration, f func(ctx context.Context)) {
	if os.Getenv("CHAOS_LOG") != "" {
		parent = tflogtest.RootLogger(parent, os.Stderr)
	}
	ctx, cancel := context.WithTimeout(parent, limit)
	defer cancel()
	tc := newTriggerCtx(ctx)
	go func() {
		select {
		case <-ctx.Done():
			tc.fire(ctx.Err())
		case <-tc.done:
		}
	}()
	c.mu.Lock()
	c.rpc = tc
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.rpc = nil
		c.mu.Unlock()
		tc.fire(context.Canceled)
	}()
	f(tc)
}

// coreChange is one planned change.
type coreChange struct {
	name    string
	prior   tftypes.Value
	planned tftypes.Value
	config  tftypes.Value
	private []byte
	replace bool // destroy, then create
}

// applyResult is what one emulated `terraform apply` did.
type applyResult struct {
	PlanErr     string          // plan failed: nothing was applied
	Errs        []string        // apply errors, per instance
	Destroyed   map[string]bool // EIDs whose destroy was planned (including replacements)
	Killed      bool            // the provider was killed during the apply (responses lost)
	Interrupted bool
}

// applyHooks let a test interrupt or kill an apply.
type applyHooks struct {
	// killed reports, after each ApplyResourceChange, whether the provider "process" was
	// killed during it: its response is then lost (state unchanged) and the process restarts.
	killed func() bool
}

// refresh reads every instance, as Terraform does before planning.
func (c *protoCore) refresh(ctx context.Context) error {
	for _, name := range c.names() {
		in := c.state[name]
		resp, err := c.srv.ReadResource(ctx, &tfprotov6.ReadResourceRequest{TypeName: c.typeName,
			CurrentState: c.dv(in.val), Private: in.private})
		if err != nil {
			return err
		}
		if msg := diagErrors(resp.Diagnostics); msg != "" {
			return fmt.Errorf("refresh %s: %s", name, msg)
		}
		v := c.value(resp.NewState)
		if v.IsNull() {
			delete(c.state, name)
			continue
		}
		in.val, in.private = v, resp.Private
	}
	return nil
}

func (c *protoCore) names() []string {
	names := make([]string, 0, len(c.state))
	for n := range c.state {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// plan plans every instance of cfg and every one in state but not in cfg.
func (c *protoCore) plan(ctx context.Context, cfg map[string]coreConfig) ([]coreChange, error) {
	all := map[string]bool{}
	for n := range cfg {
		all[n] = true
	}
	for n := range c.state {
		all[n] = true
	}
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)
	var changes []coreChange
	var errs []string
	for _, name := range names {
		in := c.state[name]
		prior, priv := tftypes.NewValue(c.typ, nil), []byte(nil)
		if in != nil {
			prior, priv = in.val, in.private
		}
		rc, ok := cfg[name]
		if !ok {
			// Destroy.
			resp, err := c.srv.PlanResourceChange(ctx, &tfprotov6.PlanResourceChangeRequest{TypeName: c.typeName,
				PriorState: c.dv(prior), ProposedNewState: c.dv(tftypes.NewValue(c.typ, nil)),
				Config: c.dv(tftypes.NewValue(c.typ, nil)), PriorPrivate: priv})
			if err != nil {
				return nil, err
			}
			if msg := diagErrors(resp.Diagnostics); msg != "" {
				errs = append(errs, name+": "+msg)
				continue
			}
			changes = append(changes, coreChange{name: name, prior: prior, planned: tftypes.NewValue(c.typ, nil),
				config: tftypes.NewValue(c.typ, nil), private: priv})
			continue
		}
		config := c.object(rc)
		vresp, err := c.srv.ValidateResourceConfig(ctx, &tfprotov6.ValidateResourceConfigRequest{TypeName: c.typeName, Config: c.dv(config)})
		if err != nil {
			return nil, err
		}
		if msg := diagErrors(vresp.Diagnostics); msg != "" {
			errs = append(errs, name+": "+msg)
			continue
		}
		replace := in != nil && in.tainted
		if in != nil && !in.tainted {
			resp, err := c.srv.PlanResourceChange(ctx, &tfprotov6.PlanResourceChangeRequest{TypeName: c.typeName,
				PriorState: c.dv(prior), ProposedNewState: c.dv(c.proposed(prior, config)), Config: c.dv(config), PriorPrivate: priv})
			if err != nil {
				return nil, err
			}
			if msg := diagErrors(resp.Diagnostics); msg != "" {
				errs = append(errs, name+": "+msg)
				continue
			}
			if len(resp.RequiresReplace) == 0 {
				planned := c.value(resp.PlannedState)
				if !planned.Equal(prior) {
					changes = append(changes, coreChange{name: name, prior: prior, planned: planned, config: config, private: resp.PlannedPrivate})
				}
				continue
			}
			replace = true
		}
		// Create (or the create half of a replacement), planned from no prior state.
		resp, err := c.srv.PlanResourceChange(ctx, &tfprotov6.PlanResourceChangeRequest{TypeName: c.typeName,
			PriorState: c.dv(tftypes.NewValue(c.typ, nil)), ProposedNewState: c.dv(c.proposed(tftypes.NewValue(c.typ, nil), config)),
			Config: c.dv(config)})
		if err != nil {
			return nil, err
		}
		if msg := diagErrors(resp.Diagnostics); msg != "" {
			errs = append(errs, name+": "+msg)
			continue
		}
		changes = append(changes, coreChange{name: name, prior: prior, planned: c.value(resp.PlannedState), config: config,
			private: resp.PlannedPrivate, replace: replace})
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return changes, nil
}

// apply emulates `terraform apply` of cfg: a new provider process, refresh, plan, then the
// changes one at a time (destroys first).
func (c *protoCore) apply(parent context.Context, cfg map[string]coreConfig, hooks applyHooks) applyResult {
	res := applyResult{Destroyed: map[string]bool{}}
	if err := c.start(parent); err != nil {
		res.Errs = append(res.Errs, err.Error())
		return res
	}
	var changes []coreChange
	var perr error
	c.call(parent, 2*time.Minute, func(ctx context.Context) {
		if perr = c.refresh(ctx); perr == nil {
			changes, perr = c.plan(ctx, cfg)
		}
	})
	if perr != nil {
		res.PlanErr = perr.Error()
		return res
	}
	for _, ch := range changes {
		if ch.planned.IsNull() || ch.replace {
			res.Destroyed[eidOf(ch.prior)] = true
		}
	}
	// Destroys (and the destroy half of replacements) first, as Terraform does by default.
	slices.SortStableFunc(changes, func(a, b coreChange) int {
		da, db := a.planned.IsNull() || a.replace, b.planned.IsNull() || b.replace
		switch {
		case da && !db:
			return -1
		case db && !da:
			return 1
		}
		return 0
	})
	var creates []coreChange
	for _, ch := range changes {
		if ch.replace || ch.planned.IsNull() {
			in := c.state[ch.name]
			priv := in.private
			if in.tainted {
				priv = nil // Terraform does not hand a tainted object's private state to its destroy
			}
			if !c.applyOne(parent, ch.name, ch.prior, tftypes.NewValue(c.typ, nil), tftypes.NewValue(c.typ, nil), priv, &res, hooks) {
				continue // a failed destroy leaves the instance (and its replacement is not created)
			}
			if ch.replace {
				creates = append(creates, ch)
			}
			continue
		}
		creates = append(creates, ch)
	}
	for _, ch := range creates {
		prior := ch.prior
		if ch.replace {
			prior = tftypes.NewValue(c.typ, nil)
		}
		c.applyOne(parent, ch.name, prior, ch.planned, ch.config, ch.private, &res, hooks)
	}
	return res
}

// applyOne applies one change and keeps the state Terraform would keep; it reports success.
func (c *protoCore) applyOne(parent context.Context, name string, prior, planned, config tftypes.Value, private []byte,
	res *applyResult, hooks applyHooks) bool {
	var resp *tfprotov6.ApplyResourceChangeResponse
	var err error
	c.call(parent, 2*time.Minute, func(ctx context.Context) {
		resp, err = c.srv.ApplyResourceChange(ctx, &tfprotov6.ApplyResourceChangeRequest{TypeName: c.typeName,
			PriorState: c.dv(prior), PlannedState: c.dv(planned), Config: c.dv(config), PlannedPrivate: private})
	})
	if hooks.killed != nil && hooks.killed() {
		// The process died during the call: Terraform never hears back, and its state is as
		// before. The next call goes to a new process.
		res.Killed = true
		res.Errs = append(res.Errs, name+": provider killed")
		if serr := c.start(parent); serr != nil {
			res.Errs = append(res.Errs, serr.Error())
		}
		return false
	}
	if err != nil {
		res.Errs = append(res.Errs, name+": "+err.Error())
		return false
	}
	msg := diagErrors(resp.Diagnostics)
	newState := c.value(resp.NewState)
	switch {
	case newState.IsNull():
		delete(c.state, name)
	case msg != "" && prior.IsNull():
		// A create that failed but returned state: Terraform saves it tainted.
		c.state[name] = &coreInstance{val: newState, private: resp.Private, tainted: true}
	default:
		in := c.state[name]
		if in == nil {
			in = &coreInstance{}
			c.state[name] = in
		}
		in.val, in.private = newState, resp.Private
	}
	if msg != "" {
		res.Errs = append(res.Errs, name+": "+msg)
		return false
	}
	return true
}

// planIsEmpty reports what a plan of cfg would change ("" when nothing).
func (c *protoCore) planIsEmpty(parent context.Context, cfg map[string]coreConfig) string {
	if err := c.start(parent); err != nil {
		return err.Error()
	}
	var changes []coreChange
	var err error
	c.call(parent, 2*time.Minute, func(ctx context.Context) {
		if err = c.refresh(ctx); err == nil {
			changes, err = c.plan(ctx, cfg)
		}
	})
	if err != nil {
		return "plan failed: " + err.Error()
	}
	var out []string
	for _, ch := range changes {
		switch {
		case ch.planned.IsNull():
			out = append(out, ch.name+" destroyed")
		case ch.prior.IsNull():
			out = append(out, ch.name+" created")
		case ch.replace:
			out = append(out, ch.name+" replaced")
		default:
			out = append(out, ch.name+" updated: "+diffAttrs(ch.prior, ch.planned))
		}
	}
	return strings.Join(out, "; ")
}

func diffAttrs(a, b tftypes.Value) string {
	var am, bm map[string]tftypes.Value
	_ = a.As(&am)
	_ = b.As(&bm)
	var out []string
	for k, v := range am {
		if !v.Equal(bm[k]) {
			out = append(out, fmt.Sprintf("%s %v -> %v", k, v, bm[k]))
		}
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// stateAttr reads a string or bool attribute of a state value ("" / false when null).
func stateAttr(v tftypes.Value, name string) any {
	var m map[string]tftypes.Value
	if v.IsNull() || v.As(&m) != nil {
		return nil
	}
	a := m[name]
	if a.IsNull() || !a.IsKnown() {
		return nil
	}
	switch {
	case a.Type().Is(tftypes.String):
		var s string
		_ = a.As(&s)
		return s
	case a.Type().Is(tftypes.Bool):
		var b bool
		_ = a.As(&b)
		return b
	}
	return nil
}

func eidOf(v tftypes.Value) string {
	s, _ := stateAttr(v, "eid").(string)
	return s
}

// configuredServer starts the provider as a protocol 6 server configured for env's simulator
// (its credentials and account) plus extra settings, as terraformVersion would configure it; it
// returns the server and its schemas.
func configuredServer(t *testing.T, env *testEnv, terraformVersion string, extra map[string]string) (
	tfprotov6.ProviderServer, *tfprotov6.GetProviderSchemaResponse) {
	t.Helper()
	ctx := context.Background()
	srv, err := providerserver.NewProtocol6WithError(New("test")())()
	if err != nil {
		t.Fatal(err)
	}
	schemas, err := srv.GetProviderSchema(ctx, &tfprotov6.GetProviderSchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	o := sim.DefaultOptions()
	settings := map[string]string{"base_url": env.SimURL, "client_id": o.ClientID, "client_secret": o.ClientSecret,
		"username": o.Username, "password": o.Password, "account_name": env.Sim.Account()}
	maps.Copy(settings, extra)
	vals := make(map[string]tftypes.Value, len(settings))
	for name, v := range settings {
		vals[name] = tftypes.NewValue(tftypes.String, v)
	}
	cresp, err := srv.ConfigureProvider(ctx, &tfprotov6.ConfigureProviderRequest{TerraformVersion: terraformVersion,
		Config: dynamicValue(t, objectWith(schemas.Provider.ValueType(), vals))})
	if err != nil {
		t.Fatal(err)
	}
	noErrors(t, "configure", cresp.Diagnostics)
	return srv, schemas
}

// objectWith is a value of the object type typ with the given attributes set and every other
// one null, as Terraform sends a configuration.
func objectWith(typ tftypes.Type, set map[string]tftypes.Value) tftypes.Value {
	obj := typ.(tftypes.Object)
	vals := make(map[string]tftypes.Value, len(obj.AttributeTypes))
	for name, at := range obj.AttributeTypes {
		if v, ok := set[name]; ok {
			vals[name] = v
		} else {
			vals[name] = tftypes.NewValue(at, nil)
		}
	}
	return tftypes.NewValue(obj, vals)
}

func dynamicValue(t *testing.T, v tftypes.Value) *tfprotov6.DynamicValue {
	t.Helper()
	dv, err := tfprotov6.NewDynamicValue(v.Type(), v)
	if err != nil {
		t.Fatal(err)
	}
	return &dv
}

func noErrors(t *testing.T, what string, diags []*tfprotov6.Diagnostic) {
	t.Helper()
	for _, d := range diags {
		if d.Severity == tfprotov6.DiagnosticSeverityError {
			t.Fatalf("%s: %s: %s", what, d.Summary, d.Detail)
		}
	}
}

func identityEqual(t *testing.T, a, b *tfprotov6.ResourceIdentityData) bool {
	t.Helper()
	typ := tftypes.Object{AttributeTypes: map[string]tftypes.Type{"account_name": tftypes.String, "eid": tftypes.String}}
	av, err := a.IdentityData.Unmarshal(typ)
	if err != nil {
		t.Fatal(err)
	}
	bv, err := b.IdentityData.Unmarshal(typ)
	if err != nil {
		t.Fatal(err)
	}
	return av.Equal(bv)
}
