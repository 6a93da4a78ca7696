package provider

import (
	"context"
	"encoding/json"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// What the resources share with the plugin framework, whatever they manage: values that may be
// null or unknown, the private state that records whether a create was confirmed, operation
// timeouts, the provider's default account, and the plan-time check of service plans.

// known reports whether v holds a value: neither null nor unknown.
func known(v types.String) bool { return !v.IsNull() && !v.IsUnknown() }

// knownString is v's value, or "" when it is null or unknown.
func knownString(v types.String) string {
	if v.IsNull() || v.IsUnknown() {
		return ""
	}
	return v.ValueString()
}

// Private state: whether Create was confirmed.
const privateCreateKey = "create"

type privateSetter interface {
	SetKey(ctx context.Context, key string, value []byte) diag.Diagnostics
}

type privateGetter interface {
	GetKey(ctx context.Context, key string) ([]byte, diag.Diagnostics)
}

func setPrivateConfirmed(ctx context.Context, p privateSetter, confirmed bool) {
	b, _ := json.Marshal(map[string]bool{"confirmed": confirmed})
	_ = p.SetKey(ctx, privateCreateKey, b)
}

// privateConfirmed returns the recorded confirmation; ok is false when none was recorded.
func privateConfirmed(ctx context.Context, p privateGetter) (confirmed, ok bool) {
	b, diags := p.GetKey(ctx, privateCreateKey)
	if diags.HasError() || len(b) == 0 {
		return false, false
	}
	var v map[string]bool
	if err := json.Unmarshal(b, &v); err != nil {
		return false, false
	}
	c, ok := v["confirmed"]
	return c, ok
}

// timeoutContext bounds one operation by the resource's `timeouts`: timeout is the method of
// the operation (plan.Timeouts.Create, .Update or .Delete), def the resource's default when
// the configuration sets none.
func timeoutContext(ctx context.Context, timeout func(context.Context, time.Duration) (time.Duration, diag.Diagnostics),
	def time.Duration, diags *diag.Diagnostics) (context.Context, context.CancelFunc) {
	d, tdiags := timeout(ctx, def)
	diags.Append(tdiags...)
	return context.WithTimeout(ctx, d)
}

// nullTimeoutsIfUnset makes a null or unknown `timeouts` (an import's first Read has none) a
// typed null: Terraform refuses unknown values in a state.
func nullTimeoutsIfUnset(v *timeouts.Value) {
	if v.IsNull() || v.IsUnknown() {
		*v = timeouts.Value{Object: types.ObjectNull(v.Object.AttributeTypes(context.Background()))}
	}
}

// defaultAccount is the provider's `account_name`, "" when it has none or is not configured yet
// (an import may run before the provider is configured).
func (c *Config) defaultAccount() string {
	if c == nil {
		return ""
	}
	return c.AccountName
}

// planAttribute is a service plan attribute checked at plan time against the account's plans.
type planAttribute struct {
	path  path.Path
	value types.String
}

// checkServicePlans adds an error for each known plan the account does not have; empty values
// are left to the schema's validators.
func (c *Config) checkServicePlans(ctx context.Context, account string, diags *diag.Diagnostics, attrs ...planAttribute) {
	for _, a := range attrs {
		if v := knownString(a.value); v != "" {
			if err := c.checkServicePlan(ctx, account, v); err != nil {
				diags.AddAttributeError(a.path, "Unknown service plan", err.Error())
			}
		}
	}
}
