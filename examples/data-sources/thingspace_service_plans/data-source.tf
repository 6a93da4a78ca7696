# The account's service plans: a `service_plan` must be one of their codes.
data "thingspace_service_plans" "all" {}

output "service_plan_codes" {
  value = data.thingspace_service_plans.all.codes
}

# Pick a plan by its name instead of hard-coding its code (one() fails when none or
# several match).
locals {
  plan_10gb = one([for p in data.thingspace_service_plans.all.plans : p.code if strcontains(p.name, "10GB")])
}

resource "thingspace_service_plan_assignment" "meters" {
  service_plan = local.plan_10gb
  devices      = [for eid in var.meter_eids : { eid = eid }]
}

variable "meter_eids" {
  description = "EIDs of active devices that are not managed as thingspace_esim_profile."
  type        = list(string)
}
