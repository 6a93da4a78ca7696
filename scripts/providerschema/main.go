// Command providerschema prints the provider's schema in the format of
// `terraform providers schema -json`, read from the provider in-process: the provider, the
// resources, the data sources and the provider-defined functions.
//
// `make generate` gives it to tfplugindocs (--providers-schema) so that the generated docs do
// not depend on the Terraform CLI installed: a Terraform older than 1.11 (such as the v1.8.5
// that scripts/terraform-path.sh builds on a machine with only Go) leaves `write_only` out of
// its schema JSON, and the docs it would produce differ from the committed ones.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/fleetform/terraform-provider-thingspace/internal/provider"
)

// defaultAddress is the address the registry and main.go serve the provider at.
const defaultAddress = "registry.terraform.io/fleetform/thingspace"

// The types below mirror Terraform's JSON schema format (its internal/command/jsonprovider),
// field for field, with the same omitempty rules.

type providerSchemas struct {
	FormatVersion string                     `json:"format_version"`
	Schemas       map[string]*providerSchema `json:"provider_schemas"`
}

type providerSchema struct {
	Provider                *schema                       `json:"provider,omitempty"`
	ResourceSchemas         map[string]*schema            `json:"resource_schemas,omitempty"`
	DataSourceSchemas       map[string]*schema            `json:"data_source_schemas,omitempty"`
	Functions               map[string]*functionSignature `json:"functions,omitempty"`
	ResourceIdentitySchemas map[string]*identitySchema    `json:"resource_identity_schemas,omitempty"`
	ListResourceSchemas     map[string]*schema            `json:"list_resource_schemas,omitempty"`
}

// identitySchema and identityAttribute are the entries of `resource_identity_schemas`.
type identitySchema struct {
	Version    int64                         `json:"version"`
	Attributes map[string]*identityAttribute `json:"attributes,omitempty"`
}

type identityAttribute struct {
	IdentityType      json.RawMessage `json:"type,omitempty"`
	Description       string          `json:"description,omitempty"`
	RequiredForImport bool            `json:"required_for_import,omitempty"`
	OptionalForImport bool            `json:"optional_for_import,omitempty"`
}

// functionSignature and functionParameter are the entries of `functions` in
// `terraform providers schema -json`, field for field.
type functionSignature struct {
	Description        string               `json:"description,omitempty"`
	Summary            string               `json:"summary,omitempty"`
	DeprecationMessage string               `json:"deprecation_message,omitempty"`
	ReturnType         json.RawMessage      `json:"return_type"`
	Parameters         []*functionParameter `json:"parameters,omitempty"`
	VariadicParameter  *functionParameter   `json:"variadic_parameter,omitempty"`
}

type functionParameter struct {
	Name        string          `json:"name,omitempty"`
	Description string          `json:"description,omitempty"`
	IsNullable  bool            `json:"is_nullable,omitempty"`
	Type        json.RawMessage `json:"type"`
}

type schema struct {
	Version int64  `json:"version"`
	Block   *block `json:"block,omitempty"`
}

type block struct {
	Attributes      map[string]*attribute `json:"attributes,omitempty"`
	BlockTypes      map[string]*blockType `json:"block_types,omitempty"`
	Description     string                `json:"description,omitempty"`
	DescriptionKind string                `json:"description_kind,omitempty"`
	Deprecated      bool                  `json:"deprecated,omitempty"`
}

type blockType struct {
	NestingMode string `json:"nesting_mode,omitempty"`
	Block       *block `json:"block,omitempty"`
	MinItems    int64  `json:"min_items,omitempty"`
	MaxItems    int64  `json:"max_items,omitempty"`
}

type attribute struct {
	AttributeType       json.RawMessage `json:"type,omitempty"`
	AttributeNestedType *nestedType     `json:"nested_type,omitempty"`
	Description         string          `json:"description,omitempty"`
	DescriptionKind     string          `json:"description_kind,omitempty"`
	Deprecated          bool            `json:"deprecated,omitempty"`
	Required            bool            `json:"required,omitempty"`
	Optional            bool            `json:"optional,omitempty"`
	Computed            bool            `json:"computed,omitempty"`
	Sensitive           bool            `json:"sensitive,omitempty"`
	WriteOnly           bool            `json:"write_only,omitempty"`
}

type nestedType struct {
	Attributes  map[string]*attribute `json:"attributes,omitempty"`
	NestingMode string                `json:"nesting_mode,omitempty"`
}

func main() {
	// tfplugindocs looks the schema up by the provider's short name ("thingspace") or under
	// registry.terraform.io/hashicorp/, never under the real address: `make generate` passes
	// -address thingspace.
	address := flag.String("address", defaultAddress, "key of the provider in provider_schemas")
	flag.Parse()
	schemas, err := readSchemas(*address)
	if err == nil {
		err = json.NewEncoder(os.Stdout).Encode(schemas)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "providerschema:", err)
		os.Exit(1)
	}
}

// readSchemas asks the provider for its schemas, in-process, and converts them.
func readSchemas(address string) (*providerSchemas, error) {
	server := providerserver.NewProtocol6(provider.New("dev")())()
	resp, err := server.GetProviderSchema(context.Background(), &tfprotov6.GetProviderSchemaRequest{})
	if err != nil {
		return nil, err
	}
	for _, d := range resp.Diagnostics {
		if d.Severity == tfprotov6.DiagnosticSeverityError {
			return nil, fmt.Errorf("%s: %s", d.Summary, d.Detail)
		}
	}
	ps := &providerSchema{ResourceSchemas: map[string]*schema{}, DataSourceSchemas: map[string]*schema{}}
	if ps.Provider, err = convertSchema(resp.Provider); err != nil {
		return nil, fmt.Errorf("provider: %w", err)
	}
	for name, s := range resp.ResourceSchemas {
		if ps.ResourceSchemas[name], err = convertSchema(s); err != nil {
			return nil, fmt.Errorf("resource %s: %w", name, err)
		}
	}
	for name, s := range resp.DataSourceSchemas {
		if ps.DataSourceSchemas[name], err = convertSchema(s); err != nil {
			return nil, fmt.Errorf("data source %s: %w", name, err)
		}
	}
	for name, s := range resp.ListResourceSchemas {
		if ps.ListResourceSchemas == nil {
			ps.ListResourceSchemas = map[string]*schema{}
		}
		if ps.ListResourceSchemas[name], err = convertSchema(s); err != nil {
			return nil, fmt.Errorf("list resource %s: %w", name, err)
		}
	}
	ids, err := server.GetResourceIdentitySchemas(context.Background(), &tfprotov6.GetResourceIdentitySchemasRequest{})
	if err != nil {
		return nil, err
	}
	for _, d := range ids.Diagnostics {
		if d.Severity == tfprotov6.DiagnosticSeverityError {
			return nil, fmt.Errorf("%s: %s", d.Summary, d.Detail)
		}
	}
	for name, s := range ids.IdentitySchemas {
		if ps.ResourceIdentitySchemas == nil {
			ps.ResourceIdentitySchemas = map[string]*identitySchema{}
		}
		out := &identitySchema{Version: s.Version, Attributes: map[string]*identityAttribute{}}
		for _, a := range s.IdentityAttributes {
			t, err := typeRawJSON(a.Type)
			if err != nil {
				return nil, fmt.Errorf("identity of %s, %s: %w", name, a.Name, err)
			}
			out.Attributes[a.Name] = &identityAttribute{IdentityType: t, Description: a.Description,
				RequiredForImport: a.RequiredForImport, OptionalForImport: a.OptionalForImport}
		}
		ps.ResourceIdentitySchemas[name] = out
	}
	if len(resp.Functions) > 0 {
		ps.Functions = map[string]*functionSignature{}
	}
	for name, f := range resp.Functions {
		if ps.Functions[name], err = convertFunction(f); err != nil {
			return nil, fmt.Errorf("function %s: %w", name, err)
		}
	}
	return &providerSchemas{FormatVersion: "1.0", Schemas: map[string]*providerSchema{address: ps}}, nil
}

func convertFunction(f *tfprotov6.Function) (*functionSignature, error) {
	if f.Return == nil || f.Return.Type == nil {
		return nil, fmt.Errorf("no return type")
	}
	out := &functionSignature{Description: f.Description, Summary: f.Summary, DeprecationMessage: f.DeprecationMessage}
	var err error
	if out.ReturnType, err = typeRawJSON(f.Return.Type); err != nil {
		return nil, fmt.Errorf("return: %w", err)
	}
	for _, p := range f.Parameters {
		conv, err := convertParameter(p)
		if err != nil {
			return nil, fmt.Errorf("parameter %s: %w", p.Name, err)
		}
		out.Parameters = append(out.Parameters, conv)
	}
	if f.VariadicParameter != nil {
		if out.VariadicParameter, err = convertParameter(f.VariadicParameter); err != nil {
			return nil, fmt.Errorf("parameter %s: %w", f.VariadicParameter.Name, err)
		}
	}
	return out, nil
}

func convertParameter(p *tfprotov6.FunctionParameter) (*functionParameter, error) {
	t, err := typeRawJSON(p.Type)
	if err != nil {
		return nil, err
	}
	return &functionParameter{Name: p.Name, Description: p.Description, IsNullable: p.AllowNullValue, Type: t}, nil
}

func typeRawJSON(t tftypes.Type) (json.RawMessage, error) {
	if t == nil {
		return nil, fmt.Errorf("no type")
	}
	v, err := typeJSON(t)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

func convertSchema(s *tfprotov6.Schema) (*schema, error) {
	if s == nil {
		return nil, nil
	}
	b, err := convertBlock(s.Block)
	if err != nil {
		return nil, err
	}
	return &schema{Version: s.Version, Block: b}, nil
}

func convertBlock(b *tfprotov6.SchemaBlock) (*block, error) {
	if b == nil {
		return &block{DescriptionKind: "plain"}, nil
	}
	out := &block{Description: b.Description, DescriptionKind: stringKind(b.DescriptionKind), Deprecated: b.Deprecated}
	if len(b.Attributes) > 0 {
		out.Attributes = map[string]*attribute{}
	}
	for _, a := range b.Attributes {
		conv, err := convertAttribute(a)
		if err != nil {
			return nil, fmt.Errorf("attribute %s: %w", a.Name, err)
		}
		out.Attributes[a.Name] = conv
	}
	if len(b.BlockTypes) > 0 {
		out.BlockTypes = map[string]*blockType{}
	}
	for _, nb := range b.BlockTypes {
		inner, err := convertBlock(nb.Block)
		if err != nil {
			return nil, fmt.Errorf("block %s: %w", nb.TypeName, err)
		}
		mode, ok := blockNesting[nb.Nesting]
		if !ok {
			return nil, fmt.Errorf("block %s: unknown nesting mode %v", nb.TypeName, nb.Nesting)
		}
		out.BlockTypes[nb.TypeName] = &blockType{NestingMode: mode, Block: inner, MinItems: nb.MinItems, MaxItems: nb.MaxItems}
	}
	return out, nil
}

func convertAttribute(a *tfprotov6.SchemaAttribute) (*attribute, error) {
	out := &attribute{
		Description: a.Description, DescriptionKind: stringKind(a.DescriptionKind), Deprecated: a.Deprecated,
		Required: a.Required, Optional: a.Optional, Computed: a.Computed, Sensitive: a.Sensitive, WriteOnly: a.WriteOnly,
	}
	if a.NestedType != nil {
		mode, ok := objectNesting[a.NestedType.Nesting]
		if !ok {
			return nil, fmt.Errorf("unknown nesting mode %v", a.NestedType.Nesting)
		}
		out.AttributeNestedType = &nestedType{Attributes: map[string]*attribute{}, NestingMode: mode}
		for _, na := range a.NestedType.Attributes {
			conv, err := convertAttribute(na)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", na.Name, err)
			}
			out.AttributeNestedType.Attributes[na.Name] = conv
		}
		return out, nil
	}
	if a.Type == nil {
		return nil, fmt.Errorf("no type")
	}
	var err error
	if out.AttributeType, err = typeRawJSON(a.Type); err != nil {
		return nil, err
	}
	return out, nil
}

// typeJSON writes a type as Terraform's JSON does (cty's type JSON): "string",
// ["list","string"], ["object",{"a":"bool"}] (with a third element naming optional attributes).
func typeJSON(t tftypes.Type) (any, error) {
	switch {
	case t.Is(tftypes.String):
		return "string", nil
	case t.Is(tftypes.Number):
		return "number", nil
	case t.Is(tftypes.Bool):
		return "bool", nil
	case t.Is(tftypes.DynamicPseudoType):
		return "dynamic", nil
	}
	switch t := t.(type) {
	case tftypes.List:
		return collectionJSON("list", t.ElementType)
	case tftypes.Set:
		return collectionJSON("set", t.ElementType)
	case tftypes.Map:
		return collectionJSON("map", t.ElementType)
	case tftypes.Tuple:
		elems := make([]any, len(t.ElementTypes))
		for i, e := range t.ElementTypes {
			var err error
			if elems[i], err = typeJSON(e); err != nil {
				return nil, err
			}
		}
		return []any{"tuple", elems}, nil
	case tftypes.Object:
		attrs := make(map[string]any, len(t.AttributeTypes))
		for name, at := range t.AttributeTypes {
			var err error
			if attrs[name], err = typeJSON(at); err != nil {
				return nil, err
			}
		}
		if len(t.OptionalAttributes) == 0 {
			return []any{"object", attrs}, nil
		}
		optional := make([]string, 0, len(t.OptionalAttributes))
		for name := range t.OptionalAttributes {
			optional = append(optional, name)
		}
		slices.Sort(optional)
		return []any{"object", attrs, optional}, nil
	}
	return nil, fmt.Errorf("unsupported type %s", t)
}

func collectionJSON(kind string, elem tftypes.Type) (any, error) {
	e, err := typeJSON(elem)
	if err != nil {
		return nil, err
	}
	return []any{kind, e}, nil
}

func stringKind(k tfprotov6.StringKind) string {
	if k == tfprotov6.StringKindMarkdown {
		return "markdown"
	}
	return "plain"
}

var blockNesting = map[tfprotov6.SchemaNestedBlockNestingMode]string{
	tfprotov6.SchemaNestedBlockNestingModeSingle: "single",
	tfprotov6.SchemaNestedBlockNestingModeList:   "list",
	tfprotov6.SchemaNestedBlockNestingModeSet:    "set",
	tfprotov6.SchemaNestedBlockNestingModeMap:    "map",
	tfprotov6.SchemaNestedBlockNestingModeGroup:  "group",
}

var objectNesting = map[tfprotov6.SchemaObjectNestingMode]string{
	tfprotov6.SchemaObjectNestingModeSingle: "single",
	tfprotov6.SchemaObjectNestingModeList:   "list",
	tfprotov6.SchemaObjectNestingModeSet:    "set",
	tfprotov6.SchemaObjectNestingModeMap:    "map",
}
