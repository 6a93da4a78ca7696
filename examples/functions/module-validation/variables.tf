variable "eids" {
  description = "The fleet: the EID of each device, by a name of your choice."
  type        = map(string)

  validation {
    # A null EID counts as invalid here rather than failing the plan with the function's
    # "argument must not be null".
    condition = alltrue([for name, eid in var.eids : eid == null ? false : provider::thingspace::eid_valid(eid)])
    error_message = format(
      "Not an EID: %s. An EID has 32 digits, the last two ISO 7064 MOD 97-10 check digits, without spaces or dashes.",
      join(", ", [for name, eid in var.eids : "${name} = ${jsonencode(eid)}" if !(eid == null ? false : provider::thingspace::eid_valid(eid))]),
    )
  }
}

variable "service_plan" {
  description = "The service plan code of every device, one of the account's (data source thingspace_service_plans)."
  type        = string
}
