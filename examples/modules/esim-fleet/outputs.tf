output "status" {
  description = "Each device's service state (active, suspended, ...) by name, as last read from ThingSpace."
  value       = { for name, eid in var.devices : name => thingspace_esim_fleet.this.device_status[eid].state }
}

output "devices" {
  description = "Each device by name: its EID and ICCID, its state and plan, the last carrier action and request, and the error of a device that is not as configured."
  value = {
    for name, eid in var.devices : name => {
      eid             = eid
      iccid           = thingspace_esim_fleet.this.devices[eid].iccid
      state           = thingspace_esim_fleet.this.device_status[eid].state
      service_plan    = thingspace_esim_fleet.this.device_status[eid].service_plan
      last_action     = thingspace_esim_fleet.this.device_status[eid].last_action
      last_request_id = thingspace_esim_fleet.this.device_status[eid].last_request_id
      error           = thingspace_esim_fleet.this.device_status[eid].error
    }
  }
}

output "fleet_id" {
  description = "The fleet resource's id, for an import block or a moved block in the calling module."
  value       = thingspace_esim_fleet.this.id
}
