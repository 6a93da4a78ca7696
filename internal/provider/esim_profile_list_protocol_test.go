package provider

import (
	"context"
	"testing"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// The list resource through the provider's protocol server, without a CLI (so also where the
// CLI under test has no `terraform query`): the filters and the limit, and, for every listed
// device, that importing it by the listed identity and reading it gives exactly the listed
// resource and identity. That equality is what makes the configuration -generate-config-out
// writes from the listed resource plan with no change.
func TestESIMProfileList_matchesImport(t *testing.T) {
	env := newTestEnv(t, envOptions{Devices: 60, Preactivated: 20})
	ctx := context.Background()
	srv, schemas := configuredServer(t, env, "1.15.9", nil)
	str := func(s string) tftypes.Value { return tftypes.NewValue(tftypes.String, s) }

	const typeName = "thingspace_esim_profile"
	listSchema := schemas.ListResourceSchemas[typeName]
	if listSchema == nil {
		t.Fatal("no thingspace_esim_profile list resource schema")
	}
	rtype := schemas.ResourceSchemas[typeName].ValueType()
	lister, ok := srv.(tfprotov6.ListResourceServer)
	if !ok {
		t.Fatalf("the provider server (%T) does not serve list resources", srv)
	}
	list := func(filters map[string]tftypes.Value, include bool, limit int64) []tfprotov6.ListResourceResult {
		t.Helper()
		stream, err := lister.ListResource(ctx, &tfprotov6.ListResourceRequest{TypeName: typeName,
			Config: dynamicValue(t, objectWith(listSchema.ValueType(), filters)), IncludeResource: include, Limit: limit})
		if err != nil {
			t.Fatal(err)
		}
		var out []tfprotov6.ListResourceResult
		for r := range stream.Results {
			noErrors(t, "list", r.Diagnostics)
			out = append(out, r)
		}
		return out
	}

	active := 0
	for _, d := range env.Sim.Devices() {
		if d.State == "active" {
			active++
		}
	}
	for _, c := range []struct {
		name    string
		filters map[string]tftypes.Value
		limit   int64
		want    int
	}{
		{"all", nil, 1000, 60},
		{"active", map[string]tftypes.Value{"state": str("active")}, 1000, active},
		{"pre-active", map[string]tftypes.Value{"state": str("pre-active")}, 1000, 60 - active},
		{"global", map[string]tftypes.Value{"profile_type": str("global")}, 1000, 0},
		{"limit", nil, 5, 5},
	} {
		if got := len(list(c.filters, false, c.limit)); got != c.want {
			t.Errorf("%s: %d results, want %d", c.name, got, c.want)
		}
	}

	results := list(map[string]tftypes.Value{"state": str("active")}, true, 1000)
	if len(results) != 20 {
		t.Fatalf("%d active devices listed, want 20", len(results))
	}
	for _, r := range results {
		if r.Resource == nil || r.Identity == nil || r.DisplayName == "" {
			t.Fatalf("result %+v: want a resource, an identity and a display name", r)
		}
		listed, err := r.Resource.Unmarshal(rtype)
		if err != nil {
			t.Fatal(err)
		}
		imp, err := srv.ImportResourceState(ctx, &tfprotov6.ImportResourceStateRequest{TypeName: typeName, Identity: r.Identity})
		if err != nil {
			t.Fatal(err)
		}
		noErrors(t, "import "+r.DisplayName, imp.Diagnostics)
		if len(imp.ImportedResources) != 1 {
			t.Fatalf("import %s: %d resources", r.DisplayName, len(imp.ImportedResources))
		}
		in := imp.ImportedResources[0]
		read, err := srv.ReadResource(ctx, &tfprotov6.ReadResourceRequest{TypeName: typeName, CurrentState: in.State,
			Private: in.Private, CurrentIdentity: in.Identity})
		if err != nil {
			t.Fatal(err)
		}
		noErrors(t, "read "+r.DisplayName, read.Diagnostics)
		got, err := read.NewState.Unmarshal(rtype)
		if err != nil {
			t.Fatal(err)
		}
		if d := diffAttrs(listed, got); d != "" || !listed.Equal(got) {
			t.Errorf("%s: the imported resource differs from the listed one: %s", r.DisplayName, d)
		}
		if read.NewIdentity == nil || !identityEqual(t, read.NewIdentity, r.Identity) {
			t.Errorf("%s: identity after import and read = %+v, want the listed one", r.DisplayName, read.NewIdentity)
		}
	}
	expectActions(t, env.Sim, nil)
}
