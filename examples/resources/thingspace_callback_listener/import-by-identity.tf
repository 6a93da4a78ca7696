# Terraform 1.12 and later (OpenTofu 1.12 too): import by the resource's identity. The
# account_name defaults to the provider's.
import {
  to = thingspace_callback_listener.relay
  identity = {
    account_name = "0000123456-00001"
    service_name = "DeviceProfileService"
  }
}
