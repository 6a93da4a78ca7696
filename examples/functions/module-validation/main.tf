# A module that activates the eSIM profile of every device of a fleet, and refuses a mistyped
# EID in its input before any plan reaches a resource: the `eids` validation (variables.tf)
# calls provider::thingspace::eid_valid, the rule thingspace_esim_profile applies to its own
# `eid`, and its message names each bad EID and the device it was given for.
#
#   module "fleet" {
#     source       = "./modules/fleet"
#     service_plan = "M2M4GB"
#     eids = {
#       gateway = "89049032995470350104029245072940"
#       tracker = "89049032995470350104029245073037"
#     }
#   }
#
# Provider-defined functions need Terraform 1.8 or later (OpenTofu 1.7 or later), and the
# provider in required_providers.

terraform {
  required_version = ">= 1.8.0"
  required_providers {
    thingspace = {
      source = "fleetform/thingspace"
    }
  }
}

resource "thingspace_esim_profile" "device" {
  for_each = var.eids

  eid          = each.value
  service_plan = var.service_plan
}
