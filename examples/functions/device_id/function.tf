terraform {
  required_version = ">= 1.8.0"
  required_providers {
    thingspace = {
      source = "fleetform/thingspace"
    }
  }
}

# Identifiers pasted from an inventory, of mixed kinds: device_id tells each one's kind by its
# number of digits and fails the plan, naming the value and the rule it breaks, when one is
# not a valid EID, ICCID, IMEI or MDN.
locals {
  pasted = [
    "89049032995470350104029245072940", # 32 digits: EID
    "89148000001234567898",             # 19 or 20 digits: ICCID
    "353492001234568",                  # 15 or 16 digits: IMEI
    "2025550123",                       # 10 digits: MDN
  ]
  devices = [for id in local.pasted : provider::thingspace::device_id(id)]
}

output "devices" {
  # [{ kind = "eid", value = "89049032995470350104029245072940" }, { kind = "iccid", ... }, ...]
  value = local.devices
}

output "eids" {
  value = [for d in local.devices : d.value if d.kind == "eid"]
}

# try() turns the error into a value, to sort identifiers instead of failing the plan.
output "not_identifiers" {
  value = [for id in ["2025550123", "202-555-0123", "12025550123"] : id if !can(provider::thingspace::device_id(id))]
  # ["202-555-0123", "12025550123"]: separators are refused, and an MDN has no country code
}
