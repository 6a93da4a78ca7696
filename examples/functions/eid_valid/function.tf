terraform {
  # Provider-defined functions need Terraform 1.8 (or OpenTofu 1.7) and the provider in
  # required_providers.
  required_version = ">= 1.8.0"
  required_providers {
    thingspace = {
      source = "fleetform/thingspace"
    }
  }
}

# A module input checked with the rule thingspace_esim_profile applies to its `eid`, so that a
# mistyped EID fails the plan with the module's own message before any resource sees it.
variable "eid" {
  description = "The device's EID."
  type        = string

  validation {
    condition     = provider::thingspace::eid_valid(var.eid)
    error_message = "eid = ${jsonencode(var.eid)} is not an EID: 32 digits, the last two ISO 7064 MOD 97-10 check digits, without spaces or dashes."
  }
}

output "eid_checks" {
  value = {
    valid             = provider::thingspace::eid_valid("89049032995470350104029245072940")        # true
    wrong_check_digit = provider::thingspace::eid_valid("89049032995470350104029245072941")        # false
    too_short         = provider::thingspace::eid_valid("8904903299547035010402924507294")         # false
    with_spaces       = provider::thingspace::eid_valid("8904 9032 9954 7035 0104 0292 4507 2940") # false
  }
}
