variable "devices" {
  description = "The fleet: each device's EID, by a name of your choice (the names are only for the outputs)."
  type        = map(string)

  validation {
    # The provider checks the check digits too; this catches a paste error before any plan.
    condition     = alltrue([for name, eid in var.devices : can(regex("^[0-9]{32}$", eid))])
    error_message = "Every EID has 32 digits, without spaces or dashes."
  }

  validation {
    # The fleet is keyed by EID: two names for one device would be one device twice.
    condition     = length(distinct(values(var.devices))) == length(var.devices)
    error_message = "Each EID appears once in devices: two names map to the same device."
  }
}

variable "service_plan" {
  description = "The Verizon (US) service plan code of every device, one of the account's (data source thingspace_service_plans)."
  type        = string
}

variable "profile_type" {
  description = "verizon_us (activate) or global (activate with service_plan, then download_enable with global_service_plan)."
  type        = string
  default     = "verizon_us"
  nullable    = false

  validation {
    condition     = contains(["verizon_us", "global"], var.profile_type)
    error_message = "profile_type is verizon_us or global."
  }
}

variable "global_service_plan" {
  description = "The Global service plan of every device; required when profile_type is global."
  type        = string
  default     = null
}

variable "mdn_zip_code" {
  description = "Billing ZIP code for the MDNs assigned at activation (optional)."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "Refuse to deactivate a device removed from the map, or on destroy."
  type        = bool
  default     = false
  nullable    = false
}
