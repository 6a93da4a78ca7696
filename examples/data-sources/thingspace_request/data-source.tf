# The per-device status of a ThingSpace request, such as the last action sent for a profile.
variable "gateway_request_id" {
  description = "A request id, for example thingspace_esim_profile.gateway.last_request_id."
  type        = string
}

data "thingspace_request" "last_activation" {
  request_id = var.gateway_request_id
}

output "last_activation" {
  value = {
    state = data.thingspace_request.last_activation.state
    # Devices without a final result yet, and devices that failed (by EID).
    pending = [for d in data.thingspace_request.last_activation.devices : d.ids if !d.terminal]
    failed  = [for d in data.thingspace_request.last_activation.devices : d.eid if lower(d.status) == "failed"]
  }
}

# A request of another account, by its id.
data "thingspace_request" "bulk_plan_change" {
  account_name = "0000123456-00002"
  request_id   = "595f5c44-c31c-4552-8670-020a1545a84d"
}
