# A Verizon US profile: Create sends `activate` and waits for the device's callback.
resource "thingspace_esim_profile" "gateway" {
  eid          = "89049032995470350104029245072940"
  service_plan = "M2M4GB"
  mdn_zip_code = "94105"

  primary_place_of_use = {
    customer_name = {
      first_name = "Ada"
      last_name  = "Lovelace"
    }
    address = {
      address_line1 = "1 Market St"
      city          = "San Francisco"
      state         = "CA"
      zip           = "94105"
    }
  }

  # A device taken out of service is deactivated on destroy; keep this one.
  deletion_protection = true
}

# A fleet: one instance per EID. With -parallelism at or above the fleet's size, the
# provider merges the instances' activations into one bulk call.
variable "fleet_eids" {
  description = "EIDs of pre-active devices."
  type        = set(string)
}

resource "thingspace_esim_profile" "fleet" {
  for_each = var.fleet_eids

  eid          = each.value
  service_plan = "M2M4GB"

  # On destroy: `deactivate` with these values, always sent explicitly.
  etf_waiver  = false
  reason_code = "FF"

  timeouts = {
    create = "45m"
    delete = "20m"
  }
}

# A Global profile: `activate` with the US plan, then `download_enable` of the Global
# profile. The device must be powered on and connected for the download.
resource "thingspace_esim_profile" "roaming_tracker" {
  eid                 = "89049032995470350104029245073037"
  profile_type        = "global"
  service_plan        = "M2M4GB"
  global_service_plan = "GLOBAL1GB"

  # On destroy, `delete` the Global profile from the device once `deactivate` is confirmed.
  delete_profile = true
}

# Suspended: `device_suspend` for a Verizon US profile (`profile_suspend` for a Global one);
# setting it back to false resumes it.
resource "thingspace_esim_profile" "seasonal" {
  eid          = "89049032995470350104029245073134"
  service_plan = "M2M10GB"
  suspended    = true
}
