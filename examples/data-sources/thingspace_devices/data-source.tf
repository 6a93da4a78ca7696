# Every device of the account that has not been activated yet.
data "thingspace_devices" "new" {
  state = "pre-active"
}

# Active devices with ICCIDs in one batch of SIMs.
data "thingspace_devices" "batch_42" {
  state = "active"
  identifier_filter = {
    kind     = "iccid"
    contains = "8914800000042"
  }
}

output "devices_to_activate" {
  value = data.thingspace_devices.new.eids
}
