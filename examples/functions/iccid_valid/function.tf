terraform {
  required_version = ">= 1.8.0"
  required_providers {
    thingspace = {
      source = "fleetform/thingspace"
    }
  }
}

# Optional input: null means "read the ICCID from ThingSpace", so only a given ICCID is
# checked. The conditional, not `||`, keeps a null away from the function (which refuses
# null): older Terraform versions evaluate both sides of `||`.
variable "iccid" {
  description = "ICCID of the device's lead profile, when the caller knows it."
  type        = string
  default     = null

  validation {
    condition     = var.iccid == null ? true : provider::thingspace::iccid_valid(var.iccid)
    error_message = "iccid = ${jsonencode(var.iccid)} is not an ICCID: 19 or 20 digits, the last a Luhn check digit, without spaces or dashes."
  }
}

output "iccid_checks" {
  value = {
    valid_20_digits  = provider::thingspace::iccid_valid("89148000001234567898")     # true
    wrong_luhn_digit = provider::thingspace::iccid_valid("89148000001234567899")     # false
    with_dashes      = provider::thingspace::iccid_valid("8914-8000-0012-3456-7898") # false
  }
}
