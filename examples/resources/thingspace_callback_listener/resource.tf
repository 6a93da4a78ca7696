# Point the account's DeviceProfileService callbacks at the relay's ingest URL, so that the
# provider can wait for the results of eSIM profile actions.
variable "relay_ingest_url" {
  description = "The relay's public ingest URL (RELAY_PUBLIC_URL), with its path token."
  type        = string
  sensitive   = true
}

variable "relay_callback_password" {
  description = "The password the relay expects in every callback."
  type        = string
  sensitive   = true
}

resource "thingspace_callback_listener" "relay" {
  url      = var.relay_ingest_url
  username = "thingspace"

  # Write-only (Terraform or OpenTofu 1.11 and later): sent to ThingSpace, never stored in the
  # state. Bump the version to send a new password.
  password_wo         = var.relay_callback_password
  password_wo_version = 1
}
