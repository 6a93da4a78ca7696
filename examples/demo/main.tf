# The configuration `make demo` applies (scripts/demo.sh): against thingspace-sim and a local
# thingspace-relay, it registers the relay as the account's callback listener, activates 25
# eSIM profiles with for_each, and moves 10 other, already active devices to another service
# plan with one thingspace_service_plan_assignment.
#
# scripts/demo.sh copies this folder to a temporary one, writes terraform.tfvars.json there
# with the simulator's devices and plans and the relay's ingest URL, and runs Terraform with a
# dev_overrides CLI configuration (no `terraform init`).

terraform {
  required_version = ">= 1.5"
  required_providers {
    thingspace = {
      source = "fleetform/thingspace"
    }
  }
}

# Every setting comes from the environment, as it should for secrets: scripts/demo.sh sets
# THINGSPACE_BASE_URL (the simulator), THINGSPACE_CLIENT_ID, THINGSPACE_CLIENT_SECRET,
# THINGSPACE_USERNAME, THINGSPACE_PASSWORD, THINGSPACE_ACCOUNT_NAME, THINGSPACE_RELAY_URL
# (the relay's API listener) and THINGSPACE_RELAY_TOKEN.
provider "thingspace" {}

# ThingSpace posts every profile action's per-device results to this URL: the relay's public
# ingest URL. The relay stores them durably and the provider long-polls the relay for them.
resource "thingspace_callback_listener" "relay" {
  url      = var.relay_ingest_url
  username = var.callback_username
  # `password_wo` (Terraform or OpenTofu 1.11 and later) keeps the password out of the state;
  # the demo uses `password` so that it also runs on the Terraform 1.5 that
  # scripts/terraform-path.sh builds.
  password = var.callback_password
}

# One profile per device. The 25 creates run in parallel (-parallelism=30), and the provider
# coalesces their activations into one bulk `activate` call, then waits for each device's
# callback through the relay and confirms it with a device read before writing state.
resource "thingspace_esim_profile" "fleet" {
  for_each = toset(var.profile_eids)

  eid          = each.value
  service_plan = var.profile_service_plan

  # The relay must be the registered listener before the first profile action: the provider
  # checks that at its first action and fails fast otherwise.
  depends_on = [thingspace_callback_listener.relay]
}

# One service plan across devices that are not managed as thingspace_esim_profile. Only the
# devices whose plan differs are sent, in one bulk `serviceplan` call. Destroying it sends
# nothing: a line always has a plan.
resource "thingspace_service_plan_assignment" "pool" {
  service_plan = var.pool_service_plan
  devices      = [for eid in var.pool_eids : { eid = eid }]

  depends_on = [thingspace_callback_listener.relay]
}
