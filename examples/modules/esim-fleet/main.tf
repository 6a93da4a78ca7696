terraform {
  required_version = ">= 1.5.0"
  required_providers {
    thingspace = {
      source = "fleetform/thingspace"
    }
  }
}

# One profile per device, keyed by the device's name: adding a device to the map activates
# it, removing one deactivates it (unless deletion_protection), and renaming one is a remove
# and an add. With -parallelism at or above the fleet's size, the provider merges the
# devices' activations into one bulk call.
resource "thingspace_esim_profile" "device" {
  for_each = var.devices

  eid                 = each.value
  profile_type        = var.profile_type
  service_plan        = var.service_plan
  global_service_plan = var.global_service_plan
  mdn_zip_code        = var.mdn_zip_code
  deletion_protection = var.deletion_protection
}
