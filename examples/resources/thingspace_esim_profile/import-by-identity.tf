# Terraform 1.12 and later (OpenTofu 1.12 too): import by the resource's identity. The
# account_name defaults to the provider's.
import {
  to = thingspace_esim_profile.gateway
  identity = {
    eid = "89049032995470350104029245072940"
  }
}
