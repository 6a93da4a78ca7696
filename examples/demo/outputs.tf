output "profile_count" {
  description = "How many thingspace_esim_profile instances exist."
  value       = length(thingspace_esim_profile.fleet)
}

output "profile_states" {
  description = "How many profiles are in each service state, as the last device read showed."
  value = {
    for state in distinct([for p in thingspace_esim_profile.fleet : p.state]) :
    state => length([for p in thingspace_esim_profile.fleet : p if p.state == state])
  }
}

output "profile_plans" {
  description = "How many profiles are on each service plan."
  value = {
    for plan in distinct([for p in thingspace_esim_profile.fleet : p.service_plan]) :
    plan => length([for p in thingspace_esim_profile.fleet : p if p.service_plan == plan])
  }
}

output "pool" {
  description = "The plan assignment: its plan and how many devices it holds."
  value = {
    service_plan = thingspace_service_plan_assignment.pool.service_plan
    devices      = length(thingspace_service_plan_assignment.pool.devices)
  }
}
