package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// dataSourceConfig is embedded by every data source: it keeps the provider's Config
// (Configure) and reads a data source's configuration with its account (readConfig).
type dataSourceConfig struct {
	cfg *Config
}

func (d *dataSourceConfig) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.cfg = configFrom(req.ProviderData, &resp.Diagnostics)
}

// readConfig reads the configuration into m and resolves its account_name, accountName
// pointing into m: the configured account, else the provider's. It sets accountName to the
// account it returns (every data source shows the account it read). False: it added an error.
func (d *dataSourceConfig) readConfig(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse, m any, accountName *types.String) (string, bool) {
	resp.Diagnostics.Append(req.Config.Get(ctx, m)...)
	if resp.Diagnostics.HasError() {
		return "", false
	}
	account, err := d.cfg.accountOr(*accountName)
	if err != nil {
		resp.Diagnostics.AddError("No ThingSpace account", err.Error())
		return "", false
	}
	*accountName = types.StringValue(account)
	return account, true
}
