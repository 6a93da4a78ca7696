# A fleet of trackers in one resource: every device takes the fleet's plan unless its entry
# says otherwise. Adding a device activates it; changing one entry sends one action for that
# device; removing an entry deactivates the device (once deletion_protection is false).
resource "thingspace_esim_fleet" "trackers" {
  service_plan = "M2M4GB"

  devices = {
    "89049032995470350104029245073231" = {}
    "89049032995470350104029245073328" = { iccid = "89148045072900000123", imei = "353492004507341" }
    # A device on a bigger plan, and one parked for the winter.
    "89049032995470350104029245073425" = { service_plan = "M2M10GB" }
    "89049032995470350104029245073522" = { suspended = true }
  }

  timeouts = {
    create = "90m"
  }
}

# Thousands of devices from a CSV file (eid,iccid,imei with a header line).
locals {
  fleet_csv = csvdecode(file("${path.module}/devices.csv"))
}

resource "thingspace_esim_fleet" "meters" {
  service_plan = "M2M10GB"
  devices      = { for d in local.fleet_csv : d.eid => { iccid = d.iccid, imei = d.imei } }
}

# What happened to each device.
output "meters_not_as_configured" {
  value = { for eid, s in thingspace_esim_fleet.meters.device_status : eid => s.error if s.error != "" }
}
