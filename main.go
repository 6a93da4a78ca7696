// Command terraform-provider-thingspace is the Terraform provider for Verizon ThingSpace eSIM
// profiles.
package main

import (
	"context"
	"flag"
	"log"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"github.com/fleetform/terraform-provider-thingspace/internal/provider"
)

// version is set by goreleaser (-X main.version=...).
var version = "dev"

func main() {
	var debug bool
	flag.BoolVar(&debug, "debug", false, "run the provider with support for debuggers like delve")
	flag.Parse()

	err := providerserver.Serve(context.Background(), provider.New(version), providerserver.ServeOpts{
		Address: "registry.terraform.io/fleetform/thingspace",
		Debug:   debug,
	})
	if err != nil {
		log.Fatal(err.Error())
	}
}
