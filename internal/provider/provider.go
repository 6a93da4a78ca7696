// Package provider implements the Terraform provider for Verizon ThingSpace eSIM profiles with
// terraform-plugin-framework. It never builds HTTP requests itself: every ThingSpace call goes
// through internal/thingspace.
package provider

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/float64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/function"
	"github.com/hashicorp/terraform-plugin-framework/list"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/fleetform/terraform-provider-thingspace/internal/ids"
	"github.com/fleetform/terraform-provider-thingspace/internal/reconcile"
	"github.com/fleetform/terraform-provider-thingspace/internal/relayapi"
	"github.com/fleetform/terraform-provider-thingspace/internal/thingspace"
	"github.com/fleetform/terraform-provider-thingspace/internal/wait"
)

var (
	_ provider.Provider                  = &ThingSpaceProvider{}
	_ provider.ProviderWithFunctions     = &ThingSpaceProvider{}
	_ provider.ProviderWithListResources = &ThingSpaceProvider{}
)

// enginePoll is the decision engine's first polling interval (0: its default); tests shorten it.
var enginePoll time.Duration

// Defaults of the provider's tuning knobs.
const (
	defaultBatchWindow     = 250 * time.Millisecond
	defaultStatusPollAfter = 10 * time.Minute
)

// ThingSpaceProvider is the thingspace provider.
type ThingSpaceProvider struct {
	version string
}

// New returns a constructor of the provider for providerserver.
func New(version string) func() provider.Provider {
	return func() provider.Provider { return &ThingSpaceProvider{version: version} }
}

// providerModel is the provider block.
type providerModel struct {
	BaseURL           types.String  `tfsdk:"base_url"`
	ClientID          types.String  `tfsdk:"client_id"`
	ClientSecret      types.String  `tfsdk:"client_secret"`
	Username          types.String  `tfsdk:"username"`
	Password          types.String  `tfsdk:"password"`
	AccountName       types.String  `tfsdk:"account_name"`
	RelayURL          types.String  `tfsdk:"relay_url"`
	RelayToken        types.String  `tfsdk:"relay_token"`
	RequestsPerSecond types.Float64 `tfsdk:"requests_per_second"`
	BulkSize          types.Int64   `tfsdk:"bulk_size"`
	BatchWindow       types.String  `tfsdk:"batch_window"`
	StatusPollAfter   types.String  `tfsdk:"status_poll_after"`
	OutcomeHorizon    types.String  `tfsdk:"outcome_horizon"`
}

// Config is what resources and data sources receive from the provider's Configure.
type Config struct {
	Client          *thingspace.Client
	AccountName     string // default account for resources that set none ("" if unset)
	RelayURL        string // "" = wait by polling the request status
	RelayToken      string
	BatchWindow     time.Duration
	StatusPollAfter time.Duration
	// OutcomeHorizon is how long an action whose outcome is unknown blocks its devices before
	// it may be sent once more (see reconcile.DefaultHorizon).
	OutcomeHorizon time.Duration
	// EnginePoll is the decision engine's first interval of looking again while it waits on a
	// device (0: the engine's default).
	EnginePoll time.Duration
	HTTPClient *http.Client
	// Registration tracks the callback-registration check per account (see registration.go).
	Registration *registrationGuard

	// Relay is the relay API client (nil without relay_url); Waiter waits for per-device
	// outcomes, one long-poll per request id for the whole process; Coalescer merges the
	// instances' identical actions into bulk calls and registers each accepted one at the relay.
	Relay     *relayapi.Client
	Waiter    *wait.Waiter
	Coalescer *thingspace.Coalescer
	// journal records every action before it is sent (see journal.go).
	journal *journal

	plans  planCache
	claims claims
}

func (p *ThingSpaceProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "thingspace"
	resp.Version = p.version
}

// envName is the environment variable that backs a provider attribute.
func envName(attr string) string { return "THINGSPACE_" + strings.ToUpper(attr) }

func describe(text, attr string) string {
	return fmt.Sprintf("%s Can also be set with the `%s` environment variable.", text, envName(attr))
}

func (p *ThingSpaceProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	nonEmpty := []validator.String{stringvalidator.LengthAtLeast(1)}
	resp.Schema = schema.Schema{
		MarkdownDescription: "Manages eSIM profiles of cellular IoT fleets on Verizon ThingSpace (Connectivity Management). " +
			"Profile actions are asynchronous: the provider waits for ThingSpace's callbacks through a `thingspace-relay` " +
			"(`relay_url`), or polls the request status when no relay is configured.",
		Attributes: map[string]schema.Attribute{
			"base_url": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: describe("ThingSpace API endpoint as `scheme://host[:port]`, without a path; the provider appends "+
					"`/api/ts/v1/...` and `/api/m2m/...`. Defaults to `"+thingspace.DefaultBaseURL+"`. `http://` is accepted (for the simulator).", "base_url"),
				Validators: []validator.String{baseURLValidator{what: "base_url"}},
			},
			"client_id": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: describe("OAuth2 client ID (the ThingSpace API key).", "client_id"),
				Validators:          nonEmpty,
			},
			"client_secret": schema.StringAttribute{
				Optional:            true,
				Sensitive:           true,
				MarkdownDescription: describe("OAuth2 client secret.", "client_secret"),
				Validators:          nonEmpty,
			},
			"username": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: describe("Connectivity Management (UWS) API username for the M2M session.", "username"),
				Validators:          nonEmpty,
			},
			"password": schema.StringAttribute{
				Optional:  true,
				Sensitive: true,
				MarkdownDescription: describe("Password of `username`. A refused login is never retried: five failed logins lock a ThingSpace account.",
					"password"),
				Validators: nonEmpty,
			},
			"account_name": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: describe("Default billing account (e.g. `0000123456-00001`, leading zeros kept) for resources and data sources that set none.", "account_name"),
				Validators:          []validator.String{accountNameValidator()},
			},
			"relay_url": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: describe("Base URL of the `thingspace-relay` API listener (e.g. `https://relay.example.com:9090`). "+
					"Without it, the provider waits by polling ThingSpace's request-status endpoint.", "relay_url"),
				Validators: []validator.String{baseURLValidator{what: "relay_url", allowPath: true}},
			},
			"relay_token": schema.StringAttribute{
				Optional:            true,
				Sensitive:           true,
				MarkdownDescription: describe("Bearer token of the relay API.", "relay_token"),
				Validators:          nonEmpty,
			},
			"requests_per_second": schema.Float64Attribute{
				Optional: true,
				MarkdownDescription: describe(fmt.Sprintf("Provider-wide limit on ThingSpace API calls per second (default %d), "+
					"so that a plan over thousands of devices stays under the account's quota.", thingspace.DefaultRequestsPerSecond), "requests_per_second"),
				Validators: []validator.Float64{float64validator.Between(0.01, 10000)},
			},
			"bulk_size": schema.Int64Attribute{
				Optional: true,
				MarkdownDescription: describe(fmt.Sprintf("Largest number of devices sent in one bulk action (default %d, the documented limit). "+
					"The provider halves it by itself when ThingSpace refuses a call for its size.", thingspace.DefaultBulkSize), "bulk_size"),
				Validators: []validator.Int64{int64validator.Between(1, 10000)},
			},
			"batch_window": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: describe(fmt.Sprintf("Longest time concurrent changes of many resources wait to be coalesced into one bulk "+
					"call, as a Go duration (default `%s`). A batch is sent at once when no other change is coming.", defaultBatchWindow), "batch_window"),
				Validators: []validator.String{durationValidator{min: 0, max: time.Minute}},
			},
			"outcome_horizon": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: describe(fmt.Sprintf("How long an action whose outcome is unknown (ThingSpace answered 5xx, the "+
					"connection broke, or Terraform was killed after sending it) blocks further actions on its devices while the "+
					"provider waits for evidence: a callback, or the device's state. With no evidence after this long, the action is "+
					"sent once more, with a warning naming the device and the earlier attempt; never a third time. Go duration, "+
					"default `%s` (ThingSpace stops resending a callback after about four attempts five minutes apart).",
					reconcile.DefaultHorizon), "outcome_horizon"),
				Validators: []validator.String{durationValidator{min: time.Second, max: 7 * 24 * time.Hour}},
			},
			"status_poll_after": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: describe(fmt.Sprintf("Devices with no final callback after this long are also looked up in ThingSpace's request "+
					"status (ThingSpace stops resending a callback after about 4 attempts). Go duration, default `%s`.", defaultStatusPollAfter), "status_poll_after"),
				Validators: []validator.String{durationValidator{min: time.Second, max: 24 * time.Hour}},
			},
		},
	}
}

// setting resolves one attribute: the configuration, then the environment variable.
type setting struct {
	attr  string
	value types.String
}

func (s setting) resolve() (string, bool) {
	if !s.value.IsNull() && !s.value.IsUnknown() {
		return s.value.ValueString(), true
	}
	if v, ok := os.LookupEnv(envName(s.attr)); ok && v != "" {
		return v, true
	}
	return "", false
}

func (p *ThingSpaceProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var m providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	// A value known only after apply (from another resource) cannot configure the client yet.
	unknown := map[string]bool{
		"base_url": m.BaseURL.IsUnknown(), "client_id": m.ClientID.IsUnknown(), "client_secret": m.ClientSecret.IsUnknown(),
		"username": m.Username.IsUnknown(), "password": m.Password.IsUnknown(), "account_name": m.AccountName.IsUnknown(),
		"relay_url": m.RelayURL.IsUnknown(), "relay_token": m.RelayToken.IsUnknown(),
	}
	for attr, u := range unknown {
		if u {
			resp.Diagnostics.AddAttributeError(path.Root(attr), "Unknown ThingSpace provider setting",
				fmt.Sprintf("`%s` depends on a value known only after apply. Set it statically or with the %s environment variable.", attr, envName(attr)))
		}
	}
	if resp.Diagnostics.HasError() {
		return
	}

	values := map[string]string{}
	for _, s := range []setting{
		{"base_url", m.BaseURL}, {"client_id", m.ClientID}, {"client_secret", m.ClientSecret},
		{"username", m.Username}, {"password", m.Password}, {"account_name", m.AccountName},
		{"relay_url", m.RelayURL}, {"relay_token", m.RelayToken},
		{"batch_window", m.BatchWindow}, {"status_poll_after", m.StatusPollAfter}, {"outcome_horizon", m.OutcomeHorizon},
	} {
		if v, ok := s.resolve(); ok {
			values[s.attr] = v
		}
	}
	for _, attr := range []string{"client_id", "client_secret", "username", "password"} {
		if values[attr] == "" {
			resp.Diagnostics.AddAttributeError(path.Root(attr), "Missing ThingSpace credential",
				fmt.Sprintf("The provider needs `%s`. Set it in the provider block or with the %s environment variable.", attr, envName(attr)))
		}
	}
	if values["relay_url"] != "" && values["relay_token"] == "" {
		resp.Diagnostics.AddAttributeError(path.Root("relay_token"), "Missing relay token",
			fmt.Sprintf("`relay_url` is set, so the provider needs the relay's API token: set `relay_token` or the %s environment variable.", envName("relay_token")))
	}

	// Environment values skip the schema validators: check them here with the same rules.
	if v := values["base_url"]; v != "" {
		if _, err := thingspace.ParseBaseURL(v); err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("base_url"), "Invalid ThingSpace base URL", err.Error())
		}
	} else {
		values["base_url"] = thingspace.DefaultBaseURL
	}
	if v := values["relay_url"]; v != "" {
		if err := checkURL(v, true); err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("relay_url"), "Invalid relay URL", err.Error())
		}
	}
	if v := values["account_name"]; v != "" {
		if err := ids.ValidateAccountName(v); err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("account_name"), "Invalid account name", err.Error())
		}
	}
	batchWindow := parseDurationSetting(values, "batch_window", defaultBatchWindow, &resp.Diagnostics)
	statusPollAfter := parseDurationSetting(values, "status_poll_after", defaultStatusPollAfter, &resp.Diagnostics)
	horizon := parseDurationSetting(values, "outcome_horizon", reconcile.DefaultHorizon, &resp.Diagnostics)

	rps := float64(thingspace.DefaultRequestsPerSecond)
	if !m.RequestsPerSecond.IsNull() && !m.RequestsPerSecond.IsUnknown() {
		rps = m.RequestsPerSecond.ValueFloat64()
	} else if v := os.Getenv(envName("requests_per_second")); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			resp.Diagnostics.AddAttributeError(path.Root("requests_per_second"), "Invalid requests_per_second",
				fmt.Sprintf("%s=%q must be a number greater than 0.", envName("requests_per_second"), v))
		} else {
			rps = f
		}
	}
	bulk := int64(thingspace.DefaultBulkSize)
	if !m.BulkSize.IsNull() && !m.BulkSize.IsUnknown() {
		bulk = m.BulkSize.ValueInt64()
	} else if v := os.Getenv(envName("bulk_size")); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 || n > 10000 {
			resp.Diagnostics.AddAttributeError(path.Root("bulk_size"), "Invalid bulk_size",
				fmt.Sprintf("%s=%q must be a whole number from 1 to 10000.", envName("bulk_size"), v))
		} else {
			bulk = n
		}
	}
	if resp.Diagnostics.HasError() {
		return
	}

	httpClient := &http.Client{Timeout: thingspace.DefaultHTTPTimeout}
	client, err := thingspace.New(thingspace.Config{
		BaseURL: values["base_url"], ClientID: values["client_id"], ClientSecret: values["client_secret"],
		Username: values["username"], Password: values["password"], HTTPClient: httpClient,
		UserAgent: fmt.Sprintf("terraform-provider-thingspace/%s (+https://registry.terraform.io/providers/fleetform/thingspace) Terraform/%s",
			p.version, req.TerraformVersion),
		RequestsPerSecond: rps, BulkSize: int(bulk),
	})
	if err != nil {
		resp.Diagnostics.AddError("Cannot configure the ThingSpace client", err.Error())
		return
	}
	tflog.Debug(ctx, "configured the ThingSpace provider", map[string]any{
		"base_url": values["base_url"], "account_name": values["account_name"], "relay": values["relay_url"] != "",
		"requests_per_second": rps, "bulk_size": bulk,
	})
	cfg := &Config{
		Client: client, AccountName: values["account_name"], RelayURL: strings.TrimSuffix(values["relay_url"], "/"),
		RelayToken: values["relay_token"], BatchWindow: batchWindow, StatusPollAfter: statusPollAfter, HTTPClient: httpClient,
		OutcomeHorizon: horizon, EnginePoll: enginePoll,
		Registration: &registrationGuard{checked: map[string]bool{}},
	}
	cfg.start()
	resp.DataSourceData = cfg
	resp.ResourceData = cfg
	resp.ListResourceData = cfg
}

func parseDurationSetting(values map[string]string, attr string, def time.Duration, diags interface {
	AddAttributeError(path.Path, string, string)
}) time.Duration {
	v, ok := values[attr]
	if !ok || v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		diags.AddAttributeError(path.Root(attr), "Invalid "+attr,
			fmt.Sprintf("%q is not a duration such as \"250ms\" or \"10m\" (from the configuration or %s).", v, envName(attr)))
		return def
	}
	return d
}

func (p *ThingSpaceProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{
		NewCallbackListenerResource,
		NewESIMProfileResource,
		NewESIMFleetResource,
		NewServicePlanAssignmentResource,
	}
}

func (p *ThingSpaceProvider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{
		NewServicePlansDataSource,
		NewDeviceDataSource,
		NewDevicesDataSource,
		NewRequestDataSource,
	}
}

// ListResources are the list resources of `terraform query` (esim_profile_list.go): Terraform
// 1.14 and later.
func (p *ThingSpaceProvider) ListResources(context.Context) []func() list.ListResource {
	return []func() list.ListResource{
		NewESIMProfileListResource,
	}
}

// Functions are the provider-defined functions (functions.go): Terraform 1.8 and later.
func (p *ThingSpaceProvider) Functions(context.Context) []func() function.Function {
	return []func() function.Function{
		NewEIDValidFunction,
		NewICCIDValidFunction,
		NewIMEIValidFunction,
		NewDeviceIDFunction,
	}
}

// configFrom extracts the provider's Config in a resource's or data source's Configure. It
// returns nil (and no error) before the provider is configured, as during validation.
func configFrom(data any, diags interface{ AddError(string, string) }) *Config {
	if data == nil {
		return nil
	}
	cfg, ok := data.(*Config)
	if !ok {
		diags.AddError("Unexpected provider data", fmt.Sprintf("expected *provider.Config, got %T; this is a bug in the provider", data))
		return nil
	}
	return cfg
}

// accountOr returns the configured account, else the provider default, else an error text.
func (c *Config) accountOr(v types.String) (string, error) {
	if !v.IsNull() && !v.IsUnknown() && v.ValueString() != "" {
		return v.ValueString(), nil
	}
	if c.AccountName != "" {
		return c.AccountName, nil
	}
	return "", fmt.Errorf("no account: set `account_name` here or in the provider block (or %s)", envName("account_name"))
}

// plannedAccount resolves a resource's account_name when the plan does not know it yet (a
// create whose configuration leaves it out: UseStateForUnknown keeps it from state otherwise):
// the provider's default, known at plan time. Without one it adds the error and returns false.
func (c *Config) plannedAccount(ctx context.Context, planned types.String, config tfsdk.Config, diags *diag.Diagnostics) (types.String, bool) {
	if !planned.IsUnknown() {
		return planned, true
	}
	var configured types.String
	diags.Append(config.GetAttribute(ctx, path.Root("account_name"), &configured)...)
	switch {
	case c.AccountName != "" && configured.IsNull():
		return types.StringValue(c.AccountName), true
	case configured.IsNull():
		_, err := c.accountOr(configured)
		diags.AddAttributeError(path.Root("account_name"), "No ThingSpace account", err.Error())
		return planned, false
	}
	return planned, true
}

// start builds the relay client, the waiter and the coalescer of a configured provider.
func (c *Config) start() {
	if c.RelayURL != "" {
		// No global timeout: each long-poll bounds itself. The default transport keeps two idle
		// connections per host, fewer than the long-polls (one per request id) and the
		// open-request checks running at once: the rest would reconnect on every call.
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64
		c.Relay = relayapi.NewClient(c.RelayURL, c.RelayToken, &http.Client{Transport: t})
	}
	c.Waiter = wait.New(wait.Options{Relay: c.Relay, Status: c.Client, StatusPollAfter: c.StatusPollAfter})
	c.Coalescer = c.Client.NewCoalescer(c.BatchWindow)
	c.journal = &journal{relay: c.Relay, local: map[string][]journalEntry{}}
	c.Client.SetJournal(c.journal)
}
