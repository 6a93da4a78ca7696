package provider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/fleetform/terraform-provider-thingspace/internal/ids"
	"github.com/fleetform/terraform-provider-thingspace/internal/thingspace"
	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

var (
	_ resource.Resource                = &callbackListenerResource{}
	_ resource.ResourceWithConfigure   = &callbackListenerResource{}
	_ resource.ResourceWithModifyPlan  = &callbackListenerResource{}
	_ resource.ResourceWithImportState = &callbackListenerResource{}
)

// NewCallbackListenerResource returns the thingspace_callback_listener resource.
func NewCallbackListenerResource() resource.Resource { return &callbackListenerResource{} }

// callbackListenerResource registers the URL ThingSpace sends an account's callbacks of one
// service to (normally the relay's ingest URL). The registration is account-wide: one URL per
// account and service, whoever set it. So Create refuses to replace another URL unless told
// to, Read lets go of a registration that now points elsewhere, and Delete removes the
// registration only while it still points at this resource's URL.
type callbackListenerResource struct {
	cfg *Config
}

type callbackListenerModel struct {
	ID                types.String `tfsdk:"id"`
	AccountName       types.String `tfsdk:"account_name"`
	ServiceName       types.String `tfsdk:"service_name"`
	URL               types.String `tfsdk:"url"`
	Username          types.String `tfsdk:"username"`
	Password          types.String `tfsdk:"password"`
	PasswordWO        types.String `tfsdk:"password_wo"`
	PasswordWOVersion types.Int64  `tfsdk:"password_wo_version"`
	OverwriteExisting types.Bool   `tfsdk:"overwrite_existing"`
	PasswordSHA256    types.String `tfsdk:"password_sha256"`
}

func (r *callbackListenerResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_callback_listener"
}

func (r *callbackListenerResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Registers the URL ThingSpace sends an account's callbacks to, for one callback service " +
			"(`POST /api/m2m/v1/callbacks/{account}`). Point `DeviceProfileService` at the ingest URL of a `thingspace-relay` " +
			"so that the provider can wait for the results of profile actions.\n\n" +
			"The registration is account-wide: ThingSpace keeps one URL per account and service, whoever registered it. " +
			"Creating this resource fails when another URL is registered for the service, unless `overwrite_existing = true`; " +
			"when another URL takes the registration over later, Terraform forgets the resource (the next plan shows a create); " +
			"and destroying it removes the registration only while it still points at `url`.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "`<account_name>/<service_name>`.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"account_name": schema.StringAttribute{
				Optional: true, Computed: true,
				MarkdownDescription: "Account whose callbacks are registered; defaults to the provider's `account_name`. Once created, " +
					"the resource keeps its account when the provider's default changes; setting a different value replaces it.",
				Validators: []validator.String{accountNameValidator()},
				PlanModifiers: []planmodifier.String{
					stringplanmodifier.UseStateForUnknown(),
					stringplanmodifier.RequiresReplaceIfConfigured(),
				},
			},
			"service_name": schema.StringAttribute{
				Optional: true, Computed: true,
				Default: stringdefault.StaticString(tsapi.ServiceDeviceProfile),
				MarkdownDescription: "ThingSpace callback service (default `" + tsapi.ServiceDeviceProfile + "`, which carries " +
					"the results of every eSIM profile action). Changing it replaces the resource.",
				Validators:    []validator.String{stringvalidator.LengthAtLeast(1), callbackServiceValidator{}},
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"url": schema.StringAttribute{
				Required: true, Sensitive: true,
				MarkdownDescription: "URL ThingSpace posts the callbacks to: the relay's public ingest URL " +
					"(`https://<host>[:<port>]/callbacks/v1/thingspace/<path-token>`). Sensitive, because the path token authenticates " +
					"the sender. `http://` and any port are accepted; ThingSpace documents only ports 80, 443, 9001-9006, 28200-28220 and " +
					"50551-50559 for new registrations, so other ports get a warning.",
				Validators: []validator.String{callbackURLValidator{}},
			},
			"username": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "User name ThingSpace puts in every callback body (the relay's callback username).",
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"password": schema.StringAttribute{
				Optional: true, Sensitive: true,
				MarkdownDescription: "Password ThingSpace puts in every callback body, stored in the Terraform state as configured. " +
					"Prefer `password_wo` (Terraform or OpenTofu 1.11 and later), which is never stored. Conflicts with `password_wo`.",
				Validators: []validator.String{
					stringvalidator.LengthAtLeast(1),
					stringvalidator.ConflictsWith(path.MatchRoot("password_wo")),
				},
			},
			"password_wo": schema.StringAttribute{
				Optional: true, Sensitive: true, WriteOnly: true,
				MarkdownDescription: "Write-only password ThingSpace puts in every callback body: sent at create and update, never " +
					"stored in the state (Terraform or OpenTofu 1.11 and later). A changed value shows as an update through `password_sha256`; " +
					"when the value is not known at plan time, bump `password_wo_version` to send it. Conflicts with `password`.",
				Validators: []validator.String{
					stringvalidator.LengthAtLeast(1),
					stringvalidator.ConflictsWith(path.MatchRoot("password")),
				},
			},
			"password_wo_version": schema.Int64Attribute{
				Optional:            true,
				MarkdownDescription: "Any number; changing it registers `password_wo` again.",
				Validators:          []validator.Int64{int64validator.AlsoRequires(path.MatchRoot("password_wo"))},
			},
			"overwrite_existing": schema.BoolAttribute{
				Optional: true, Computed: true,
				Default: booldefault.StaticBool(false),
				MarkdownDescription: "Replace a registration that points at another URL (default `false`: creating the resource " +
					"then fails and names the other URL's scheme and host).",
			},
			"password_sha256": schema.StringAttribute{
				Computed: true, Sensitive: true,
				MarkdownDescription: "Lower-case hex SHA-256 of the password ThingSpace has registered (null without a password). " +
					"Refreshed from ThingSpace's listing, so a password changed outside Terraform shows as an update; the " +
					"password read back is never written to the state.",
			},
		},
	}
}

func (r *callbackListenerResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.cfg = configFrom(req.ProviderData, &resp.Diagnostics)
}

func (r *callbackListenerResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan, config callbackListenerModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	if resp.Diagnostics.HasError() {
		return
	}
	r.apply(ctx, plan, config, nil, resp.Identity, &resp.State, &resp.Diagnostics)
}

func (r *callbackListenerResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	ctx = withLogger(ctx)
	state, account, service, current, ok := r.findRegistrationOfState(ctx, req.State, &resp.Diagnostics)
	if !ok {
		return
	}
	// Also when the registration is gone: the framework wants an identity after every Read.
	resp.Diagnostics.Append(setIdentity(ctx, resp.Identity, listenerIdentity(account, service))...)
	switch {
	case current == nil:
		tflog.Info(ctx, "callback listener no longer registered; removing it from the state", map[string]any{"account": account, "service": service})
		resp.State.RemoveResource(ctx)
		return
	case state.URL.IsNull():
		// Import: adopt the registered URL.
		state.URL = types.StringValue(current.URL)
	case !sameURL(current.URL, state.URL.ValueString()):
		// Someone else owns the registration now. Forget it rather than overwrite it: the next
		// plan shows a create, which refuses to replace it without overwrite_existing.
		resp.Diagnostics.AddWarning("Callback registration taken over",
			fmt.Sprintf("The %s registration of account %s now points at another URL (%s; path and credentials not shown), "+
				"so Terraform no longer manages it. Applying this resource again fails unless `overwrite_existing = true`.",
				service, account, urlOrigin(current.URL)))
		resp.State.RemoveResource(ctx)
		return
	}

	state.ID = types.StringValue(listenerID(account, service))
	state.AccountName = types.StringValue(account)
	switch {
	case current.Username != "":
		state.Username = types.StringValue(current.Username)
	case !state.Username.IsNull():
		state.Username = types.StringValue("")
	}
	// Only the hash of the listed password goes to the state, never its plain text. An empty
	// listed password keeps the last hash: it cannot tell "no password" from a listing that
	// leaves passwords out, and taking it for "no password" would show an update on every plan.
	if current.Password != "" {
		state.PasswordSHA256 = passwordSHA256(current.Password)
	} else if state.PasswordSHA256.IsUnknown() {
		state.PasswordSHA256 = types.StringNull()
	}
	if state.OverwriteExisting.IsNull() {
		state.OverwriteExisting = types.BoolValue(false)
	}
	state.PasswordWO = types.StringNull()
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *callbackListenerResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, prior, config callbackListenerModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &prior)...)
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	if resp.Diagnostics.HasError() {
		return
	}
	r.apply(ctx, plan, config, &prior, resp.Identity, &resp.State, &resp.Diagnostics)
}

func (r *callbackListenerResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	ctx = withLogger(ctx)
	state, account, service, current, ok := r.findRegistrationOfState(ctx, req.State, &resp.Diagnostics)
	if !ok {
		return
	}
	defer r.cfg.Registration.Invalidate(account)
	switch {
	case current == nil:
		tflog.Info(ctx, "callback listener already unregistered", map[string]any{"account": account, "service": service})
	case sameURL(current.URL, state.URL.ValueString()):
		if _, err := r.cfg.Client.DeleteCallback(ctx, account, service); err != nil && !thingspace.IsCode(err, "CallbackNotFound") {
			resp.Diagnostics.AddError("Cannot delete the callback registration",
				fmt.Sprintf("Deleting the %s registration of account %s: %v", service, account, err))
			return
		}
		tflog.Info(ctx, "deleted callback listener", map[string]any{"account": account, "service": service})
	default:
		// Compare-and-delete: the registration is someone else's now.
		resp.Diagnostics.AddWarning("Callback registration left in place",
			fmt.Sprintf("The %s registration of account %s now points at another URL (%s; path and credentials not shown), "+
				"so it was not deleted. Terraform no longer manages it.", service, account, urlOrigin(current.URL)))
	}
}

// ImportState takes `<account>/<service_name>`, or `<service_name>` for the provider's account,
// or (Terraform 1.12 and later) an identity: `service_name`, and `account_name` unless it is the
// provider's.
func (r *callbackListenerResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	var account, service string
	var ident callbackListenerIdentity
	if importIdentity(ctx, req, &ident, &resp.Diagnostics) {
		if resp.Diagnostics.HasError() {
			return
		}
		service = knownString(ident.ServiceName)
		if service == "" {
			resp.Diagnostics.AddError("Invalid import identity", "The identity has no `service_name`, such as \""+
				tsapi.ServiceDeviceProfile+"\".")
			return
		}
		account = identityAccount(r.cfg, ident.AccountName, "thingspace_callback_listener", &resp.Diagnostics)
		if resp.Diagnostics.HasError() {
			return
		}
		r.importState(ctx, account, service, resp)
		return
	}
	switch parts := strings.Split(req.ID, "/"); len(parts) {
	case 1:
		service = parts[0]
		if account = r.cfg.defaultAccount(); account == "" {
			resp.Diagnostics.AddError("No ThingSpace account",
				fmt.Sprintf("Import ID %q names no account and the provider has no `account_name`: use `<account>/<service_name>`, "+
					"e.g. `0000123456-00001/%s`.", req.ID, tsapi.ServiceDeviceProfile))
			return
		}
	case 2:
		account, service = parts[0], parts[1]
		if err := ids.ValidateAccountName(account); err != nil {
			resp.Diagnostics.AddError("Invalid import ID", fmt.Sprintf("Import ID %q: %v.", req.ID, err))
			return
		}
	default:
		resp.Diagnostics.AddError("Invalid import ID",
			fmt.Sprintf("Import ID %q: expected `<account>/<service_name>` or `<service_name>`, e.g. `0000123456-00001/%s`.",
				req.ID, tsapi.ServiceDeviceProfile))
		return
	}
	if service == "" {
		resp.Diagnostics.AddError("Invalid import ID", fmt.Sprintf("Import ID %q has no service name.", req.ID))
		return
	}
	r.importState(ctx, account, service, resp)
}

// importState writes the imported listener's keys; Read fills in the rest.
func (r *callbackListenerResource) importState(ctx context.Context, account, service string, resp *resource.ImportStateResponse) {
	resp.Diagnostics.Append(setIdentity(ctx, resp.Identity, listenerIdentity(account, service))...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), listenerID(account, service))...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("account_name"), account)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("service_name"), service)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("overwrite_existing"), false)...)
}

// ModifyPlan resolves the account at plan time and plans password_sha256 from the configured
// password, so that a password changed in the configuration or outside Terraform (Read
// refreshed the hash from ThingSpace's listing) shows as an update, even for password_wo.
func (r *callbackListenerResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return // destroy
	}
	var plan, config callbackListenerModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	var state *callbackListenerModel
	if !req.State.Raw.IsNull() {
		state = &callbackListenerModel{}
		resp.Diagnostics.Append(req.State.Get(ctx, state)...)
	}
	if resp.Diagnostics.HasError() {
		return
	}

	if plan.AccountName.IsUnknown() && config.AccountName.IsNull() && r.cfg != nil {
		account, err := r.cfg.accountOr(types.StringNull())
		if err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("account_name"), "No ThingSpace account", err.Error())
			return
		}
		plan.AccountName = types.StringValue(account)
	}
	if known(plan.AccountName) && known(plan.ServiceName) {
		plan.ID = types.StringValue(listenerID(plan.AccountName.ValueString(), plan.ServiceName.ValueString()))
	}

	password, ok := configuredPassword(config)
	switch {
	case ok:
		plan.PasswordSHA256 = passwordSHA256(password)
	case state != nil && config.Password.IsNull() && plan.PasswordWOVersion.Equal(state.PasswordWOVersion) && plan.sameRegistration(*state):
		// password_wo is unknown until apply and nothing else changes: assume it is the
		// registered one rather than show an update on every plan. password_wo_version sends it.
		plan.PasswordSHA256 = state.PasswordSHA256
	default:
		plan.PasswordSHA256 = types.StringUnknown()
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

// apply registers the planned URL, for Create (prior nil) and Update, and saves the state and
// the identity. A registration that points at another URL (not the planned one, nor on update
// the prior one: someone else's) is replaced only with overwrite_existing.
func (r *callbackListenerResource) apply(ctx context.Context, plan, config callbackListenerModel, prior *callbackListenerModel,
	identity *tfsdk.ResourceIdentity, state *tfsdk.State, diags *diag.Diagnostics) {
	ctx = withLogger(ctx)
	account, service, current, ok := r.findRegistrationOf(ctx, plan, diags)
	if !ok {
		return
	}
	ours := current != nil && (sameURL(current.URL, plan.URL.ValueString()) || prior != nil && sameURL(current.URL, prior.URL.ValueString()))
	if current != nil && !ours {
		// Another URL took the registration (before the create, or since the last refresh).
		if !plan.OverwriteExisting.ValueBool() {
			diags.AddError("Another callback URL is registered", foreignRegistrationDetail(account, service, current.URL))
			return
		}
		detail := fmt.Sprintf("Account %s had %s registered for %s (path and credentials not shown); `overwrite_existing = true` "+
			"replaced it.", account, urlOrigin(current.URL), service)
		if prior == nil {
			detail += " Whatever listened there no longer receives these callbacks."
		}
		diags.AddWarning("Replaced another callback registration", detail)
	}
	password, _ := configuredPassword(config)
	if !r.register(ctx, account, service, plan, password, diags) {
		return
	}

	plan.ID = types.StringValue(listenerID(account, service))
	plan.AccountName = types.StringValue(account)
	plan.PasswordWO = types.StringNull()
	plan.PasswordSHA256 = passwordSHA256(password)
	diags.Append(setIdentity(ctx, identity, listenerIdentity(account, service))...)
	diags.Append(state.Set(ctx, &plan)...)
}

// findRegistrationOfState reads the state and finds its registration, as Read and Delete start;
// ok is false when either failed (with an error in diags).
func (r *callbackListenerResource) findRegistrationOfState(ctx context.Context, st tfsdk.State, diags *diag.Diagnostics) (
	state callbackListenerModel, account, service string, current *tsapi.CallbackRegistration, ok bool) {
	diags.Append(st.Get(ctx, &state)...)
	if diags.HasError() {
		return state, "", "", nil, false
	}
	account, service, current, ok = r.findRegistrationOf(ctx, state, diags)
	return state, account, service, current, ok
}

// findRegistrationOf resolves a listener's account (its own, else the provider's) and finds
// the registration of its service there (nil: none); ok is false after an error.
func (r *callbackListenerResource) findRegistrationOf(ctx context.Context, m callbackListenerModel, diags *diag.Diagnostics) (
	account, service string, current *tsapi.CallbackRegistration, ok bool) {
	account, err := r.cfg.accountOr(m.AccountName)
	if err != nil {
		diags.AddAttributeError(path.Root("account_name"), "No ThingSpace account", err.Error())
		return "", "", nil, false
	}
	service = m.ServiceName.ValueString()
	current, ok = r.findCallbackRegistration(ctx, account, service, diags)
	return account, service, current, ok
}

// findCallbackRegistration returns the account's registration for service, nil when there is none; ok is
// false when the listing failed (with an error in diags).
func (r *callbackListenerResource) findCallbackRegistration(ctx context.Context, account, service string, diags interface {
	AddError(string, string)
}) (reg *tsapi.CallbackRegistration, ok bool) {

	regs, err := r.cfg.Client.ListCallbacks(ctx, account)
	if err != nil {
		diags.AddError("Cannot list callback registrations", fmt.Sprintf("Listing the callback listeners of account %s: %v", account, err))
		return nil, false
	}
	for i := range regs {
		if strings.EqualFold(regs[i].ServiceName, service) {
			return &regs[i], true
		}
	}
	return nil, true
}

// register sends the registration and makes the next profile action check it again.
func (r *callbackListenerResource) register(ctx context.Context, account, service string, m callbackListenerModel, password string, diags interface {
	AddError(string, string)
}) bool {

	_, err := r.cfg.Client.RegisterCallback(ctx, account, tsapi.RegisterCallbackRequest{
		Name: service, URL: m.URL.ValueString(), Username: m.Username.ValueString(), Password: password,
	})
	// Invalidate even on error: a failed call may still have changed the registration.
	r.cfg.Registration.Invalidate(account)
	if err != nil {
		diags.AddError("Cannot register the callback listener",
			fmt.Sprintf("Registering %s (path not shown) for %s in account %s: %v", urlOrigin(m.URL.ValueString()), service, account, err))
		return false
	}
	tflog.Info(ctx, "registered callback listener", map[string]any{"account": account, "service": service, "origin": urlOrigin(m.URL.ValueString())})
	return true
}

// sameRegistration reports whether m and o register the same thing, apart from the password.
func (m callbackListenerModel) sameRegistration(o callbackListenerModel) bool {
	return m.AccountName.Equal(o.AccountName) && m.ServiceName.Equal(o.ServiceName) && m.URL.Equal(o.URL) &&
		m.Username.Equal(o.Username) && m.OverwriteExisting.Equal(o.OverwriteExisting)
}

// configuredPassword returns the password the configuration asks for ("" for none); ok is
// false while it is unknown.
func configuredPassword(config callbackListenerModel) (password string, ok bool) {
	if config.Password.IsUnknown() || config.PasswordWO.IsUnknown() {
		return "", false
	}
	if !config.Password.IsNull() {
		return config.Password.ValueString(), true
	}
	return config.PasswordWO.ValueString(), true
}

// passwordSHA256 is the lower-case hex SHA-256 of a password, null for none.
func passwordSHA256(password string) types.String {
	if password == "" {
		return types.StringNull()
	}
	sum := sha256.Sum256([]byte(password))
	return types.StringValue(hex.EncodeToString(sum[:]))
}

func listenerID(account, service string) string { return account + "/" + service }

// sameURL compares two callback URLs: scheme and host case-insensitively, the rest exactly.
func sameURL(a, b string) bool {
	if a == b {
		return true
	}
	ua, errA := url.Parse(a)
	ub, errB := url.Parse(b)
	if errA != nil || errB != nil {
		return false
	}
	return strings.EqualFold(ua.Scheme, ub.Scheme) && strings.EqualFold(ua.Host, ub.Host) &&
		ua.EscapedPath() == ub.EscapedPath() && ua.RawQuery == ub.RawQuery && ua.User.String() == ub.User.String()
}

// urlOrigin returns only the scheme and host of a callback URL: its path holds the relay's
// path token and its user info a credential, so neither may appear in a message.
func urlOrigin(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "a URL that does not parse"
	}
	return strings.ToLower(u.Scheme) + "://" + u.Host
}

// foreignRegistrationDetail explains the refusal to replace another URL's registration.
func foreignRegistrationDetail(account, service, otherURL string) string {
	return fmt.Sprintf("Account %s already has a different URL registered for callback service %s: %s (path and credentials "+
		"not shown). The registration is account-wide, so replacing it would take the callbacks away from whatever listens there.\n\n"+
		"To replace it, set `overwrite_existing = true`. To manage the existing registration instead, import it:\n"+
		"  terraform import thingspace_callback_listener.<name> %s", account, service, urlOrigin(otherURL), listenerID(account, service))
}
