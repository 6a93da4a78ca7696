package main

import (
	"encoding/json"
	"testing"
)

// The point of this program: the schema it writes marks write-only attributes (Terraform older
// than 1.11 leaves write_only out of `terraform providers schema -json`), and keeps what
// tfplugindocs renders: types, nested attributes, sensitivity and descriptions.
func TestSchemaMarksWriteOnlyAndKeepsTypes(t *testing.T) {
	schemas, err := readSchemas("thingspace")
	if err != nil {
		t.Fatal(err)
	}
	ps := schemas.Schemas["thingspace"]
	if ps == nil || ps.Provider == nil || len(ps.ResourceSchemas) == 0 || len(ps.DataSourceSchemas) == 0 {
		t.Fatalf("schemas = %+v", schemas)
	}
	listener := ps.ResourceSchemas["thingspace_callback_listener"]
	if listener == nil {
		t.Fatal("no thingspace_callback_listener schema")
	}
	pw := listener.Block.Attributes["password_wo"]
	if pw == nil || !pw.WriteOnly || !pw.Sensitive || !pw.Optional || pw.Description == "" {
		t.Fatalf("password_wo = %+v, want optional, sensitive and write-only with a description", pw)
	}
	if got := string(pw.AttributeType); got != `"string"` {
		t.Fatalf("password_wo type = %s", got)
	}
	secret := ps.Provider.Block.Attributes["client_secret"]
	if secret == nil || !secret.Sensitive || secret.WriteOnly {
		t.Fatalf("provider client_secret = %+v, want sensitive and not write-only", secret)
	}
	b, err := json.Marshal(schemas)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil || back["format_version"] != "1.0" {
		t.Fatalf("format_version = %v (%v)", back["format_version"], err)
	}
}

// tfplugindocs documents the provider-defined functions from the `functions` key, in the
// format of Terraform's `providers schema -json`: signature, summary, description, types.
func TestSchemaHasFunctions(t *testing.T) {
	schemas, err := readSchemas("thingspace")
	if err != nil {
		t.Fatal(err)
	}
	fns := schemas.Schemas["thingspace"].Functions
	for _, name := range []string{"eid_valid", "iccid_valid", "imei_valid"} {
		f := fns[name]
		if f == nil || f.Summary == "" || f.Description == "" || string(f.ReturnType) != `"bool"` || len(f.Parameters) != 1 {
			t.Fatalf("%s = %+v, want a described function of one parameter returning bool", name, f)
		}
		p := f.Parameters[0]
		if p.Name == "" || p.Description == "" || string(p.Type) != `"string"` || p.IsNullable {
			t.Fatalf("%s parameter = %+v, want a named, described, non-nullable string", name, p)
		}
	}
	d := fns["device_id"]
	if d == nil || string(d.ReturnType) != `["object",{"kind":"string","value":"string"}]` {
		t.Fatalf("device_id = %+v, want an object of kind and value", d)
	}
	b, err := json.Marshal(schemas)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Schemas map[string]map[string]json.RawMessage `json:"provider_schemas"`
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if _, ok := back.Schemas["thingspace"]["functions"]; !ok {
		t.Fatalf("no functions key in %s", b)
	}
}

// tfplugindocs documents resource identity from `resource_identity_schemas` and list resources
// from `list_resource_schemas`.
func TestSchemaHasIdentityAndListResources(t *testing.T) {
	schemas, err := readSchemas("thingspace")
	if err != nil {
		t.Fatal(err)
	}
	ps := schemas.Schemas["thingspace"]
	id := ps.ResourceIdentitySchemas["thingspace_esim_profile"]
	if id == nil || id.Attributes["eid"] == nil || !id.Attributes["eid"].RequiredForImport ||
		id.Attributes["account_name"] == nil || !id.Attributes["account_name"].OptionalForImport ||
		string(id.Attributes["eid"].IdentityType) != `"string"` {
		t.Fatalf("thingspace_esim_profile identity = %+v", id)
	}
	if l := ps.ResourceIdentitySchemas["thingspace_callback_listener"]; l == nil || l.Attributes["service_name"] == nil {
		t.Fatalf("thingspace_callback_listener identity = %+v", l)
	}
	list := ps.ListResourceSchemas["thingspace_esim_profile"]
	if list == nil || list.Block.Attributes["state"] == nil || !list.Block.Attributes["state"].Optional {
		t.Fatalf("thingspace_esim_profile list resource = %+v", list)
	}
}
