// Command terraform-provider-thingspace is the Terraform provider for Verizon ThingSpace eSIM
// profiles.
package main

import (
	"context"
	"flag"
	"log"
	"os"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"github.com/fleetform/terraform-provider-thingspace/internal/provider"
)

// version is set by goreleaser (-X main.version=...).
var version = "dev"

func main() {
	var debug bool
	flag.BoolVar(&debug, "debug", false, "run the provider with support for debuggers like delve")
	flag.Parse()
	quietFrameworkUnlessLogging()

	err := providerserver.Serve(context.Background(), provider.New(version), providerserver.ServeOpts{
		Address: "registry.terraform.io/fleetform/thingspace",
		Debug:   debug,
	})
	if err != nil {
		log.Fatal(err.Error())
	}
}

// quietFrameworkUnlessLogging keeps terraform-plugin-framework's trace and debug logs from
// being produced when nobody asked for logs. A provider's logs reach the user only through
// Terraform, which shows them when TF_LOG (or TF_LOG_PROVIDER, ...) is set and drops them
// otherwise; the framework logs at trace level by default, one line per map element on every
// plan, which for a fleet of ten thousand devices is a sixth of the provider's CPU time.
// With any TF_LOG* variable set, nothing changes.
func quietFrameworkUnlessLogging() {
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "TF_LOG") {
			return
		}
	}
	_ = os.Setenv("TF_LOG_SDK_FRAMEWORK", "WARN")
}
