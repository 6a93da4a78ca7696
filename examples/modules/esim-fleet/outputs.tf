output "status" {
  description = "Each device's service state (active, suspended, ...) by name, as last read from ThingSpace."
  value       = { for name, p in thingspace_esim_profile.device : name => p.state }
}

output "devices" {
  description = "Each device by name: its identifiers, state, profile status from the last callback, and the last carrier request."
  value = {
    for name, p in thingspace_esim_profile.device : name => {
      eid             = p.eid
      iccid           = p.iccid
      mdn             = p.mdn
      state           = p.state
      profile_status  = p.profile_status
      last_action     = p.last_action
      last_request_id = p.last_request_id
    }
  }
}
