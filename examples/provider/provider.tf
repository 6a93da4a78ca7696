terraform {
  required_providers {
    thingspace = {
      source = "fleetform/thingspace"
    }
  }
}

# Secrets stay out of the configuration: the provider reads THINGSPACE_CLIENT_ID,
# THINGSPACE_CLIENT_SECRET, THINGSPACE_USERNAME, THINGSPACE_PASSWORD and
# THINGSPACE_RELAY_TOKEN from the environment when the arguments are not set.
provider "thingspace" {
  account_name = var.account_name
  relay_url    = var.relay_url
}

variable "account_name" {
  description = "The ThingSpace account, e.g. 0000123456-00001 (leading zeros kept)."
  type        = string
}

variable "relay_url" {
  description = "Base URL of thingspace-relay's API listener. Null: the provider polls the request status instead."
  type        = string
  default     = null
}
