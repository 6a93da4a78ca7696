package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/identityschema"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/fleetform/terraform-provider-thingspace/internal/ids"
)

// Resource identity (Terraform 1.12 and later): what names a thingspace_esim_profile and a
// thingspace_callback_listener at ThingSpace, as an object Terraform stores next to the state,
// that `import` blocks can give instead of an import id:
//
//	import {
//	  to       = thingspace_esim_profile.tracker
//	  identity = { eid = "89049032000000000000000000000123" }
//	}
//
// The account is optional on import (the provider's `account_name` otherwise), always set
// afterwards. thingspace_esim_fleet has none: see its documentation.

// esimProfileIdentity is thingspace_esim_profile's identity.
type esimProfileIdentity struct {
	AccountName types.String `tfsdk:"account_name"`
	EID         types.String `tfsdk:"eid"`
}

// callbackListenerIdentity is thingspace_callback_listener's identity.
type callbackListenerIdentity struct {
	AccountName types.String `tfsdk:"account_name"`
	ServiceName types.String `tfsdk:"service_name"`
}

var (
	_ resource.ResourceWithIdentity = &esimProfileResource{}
	_ resource.ResourceWithIdentity = &callbackListenerResource{}
)

const identityAccountDescription = "The billing account. Optional in an `import` block's `identity`: the provider's " +
	"`account_name` by default."

func (r *esimProfileResource) IdentitySchema(_ context.Context, _ resource.IdentitySchemaRequest, resp *resource.IdentitySchemaResponse) {
	resp.IdentitySchema = identityschema.Schema{
		Attributes: map[string]identityschema.Attribute{
			"account_name": identityschema.StringAttribute{OptionalForImport: true, Description: identityAccountDescription},
			"eid":          identityschema.StringAttribute{RequiredForImport: true, Description: "The device's EID."},
		},
	}
}

func (r *callbackListenerResource) IdentitySchema(_ context.Context, _ resource.IdentitySchemaRequest, resp *resource.IdentitySchemaResponse) {
	resp.IdentitySchema = identityschema.Schema{
		Attributes: map[string]identityschema.Attribute{
			"account_name": identityschema.StringAttribute{OptionalForImport: true, Description: identityAccountDescription},
			"service_name": identityschema.StringAttribute{RequiredForImport: true,
				Description: "The ThingSpace callback service, such as `DeviceProfileService`."},
		},
	}
}

// setIdentity sets a resource's identity; nothing when the request has none (a CLI without
// identity support still gets an identity object from the framework, so this is only a guard).
func setIdentity(ctx context.Context, identity *tfsdk.ResourceIdentity, v any) diag.Diagnostics {
	if identity == nil {
		return nil
	}
	return identity.Set(ctx, v)
}

func profileIdentity(account, eid string) esimProfileIdentity {
	return esimProfileIdentity{AccountName: types.StringValue(account), EID: types.StringValue(eid)}
}

func listenerIdentity(account, service string) callbackListenerIdentity {
	return callbackListenerIdentity{AccountName: types.StringValue(account), ServiceName: types.StringValue(service)}
}

// importIdentity is the import block's identity, when the import is by identity (req.ID is
// then empty); ok is false for an import by id.
func importIdentity(ctx context.Context, req resource.ImportStateRequest, v any, diags *diag.Diagnostics) (ok bool) {
	if req.ID != "" || req.Identity == nil || req.Identity.Raw.IsNull() {
		return false
	}
	diags.Append(req.Identity.Get(ctx, v)...)
	return true
}

// identityAccount is an identity's account, else the provider's default; it adds an error when
// there is neither, or when the account is not a ThingSpace account name.
func identityAccount(cfg *Config, v types.String, what string, diags *diag.Diagnostics) string {
	account := knownString(v)
	if account == "" {
		account = cfg.defaultAccount()
	}
	if account == "" {
		diags.AddError("No ThingSpace account",
			fmt.Sprintf("The import identity of %s names no `account_name` and the provider has none: add "+
				"`account_name = \"0000123456-00001\"` to the identity.", what))
		return ""
	}
	if err := ids.ValidateAccountName(account); err != nil {
		diags.AddError("Invalid import identity", fmt.Sprintf("account_name: %v.", err))
		return ""
	}
	return account
}
