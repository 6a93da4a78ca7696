terraform {
  required_version = ">= 1.5.0"
  required_providers {
    thingspace = {
      source = "fleetform/thingspace"
    }
  }
}

# The whole fleet is one thingspace_esim_fleet, keyed by EID: adding a device to the map
# activates it, removing one deactivates it (unless deletion_protection), and a change of the
# fleet's plan is one bulk serviceplan request for every device on it. The names of var.devices
# live only in this module's outputs, so renaming a device sends nothing.
resource "thingspace_esim_fleet" "this" {
  profile_type        = var.profile_type
  service_plan        = var.service_plan
  global_service_plan = var.global_service_plan
  mdn_zip_code        = var.mdn_zip_code
  deletion_protection = var.deletion_protection

  devices = { for name, eid in var.devices : eid => {} }
}
