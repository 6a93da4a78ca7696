package provider

import (
	"context"
	"encoding/json"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// What every resource shares with the plugin framework, whatever it manages: values that may
// be null or unknown, operation timeouts, and the private state that records whether a create
// was confirmed.

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
