terraform {
  required_version = ">= 1.8.0"
  required_providers {
    thingspace = {
      source = "fleetform/thingspace"
    }
  }
}

variable "imeis" {
  description = "IMEI of each device's module, by EID."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for eid, imei in var.imeis : provider::thingspace::imei_valid(imei)])
    error_message = "Not an IMEI (15 digits with a Luhn check digit, or a 16-digit IMEISV): ${join(", ", [for eid, imei in var.imeis : jsonencode(imei) if !provider::thingspace::imei_valid(imei)])}."
  }
}

output "imei_checks" {
  value = {
    valid            = provider::thingspace::imei_valid("353492001234568")  # true
    imeisv           = provider::thingspace::imei_valid("3534920012345601") # true: an IMEISV has no check digit
    wrong_luhn_digit = provider::thingspace::imei_valid("353492001234567")  # false
    fourteen_digits  = provider::thingspace::imei_valid("35349200123456")   # false
  }
}
