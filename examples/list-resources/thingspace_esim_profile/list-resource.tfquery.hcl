# Every active device of the provider's account (Terraform 1.14 and later). In a file ending in
# .tfquery.hcl, next to the configuration that has the provider block:
#   terraform query                                        lists them
#   terraform query -generate-config-out=generated.tf      writes a resource and an import block for each
list "thingspace_esim_profile" "active" {
  provider = thingspace
  limit    = 10000 # Terraform's default is 100

  config {
    state = "active"
  }
}

# The active devices on one plan, in another account.
list "thingspace_esim_profile" "meters" {
  provider = thingspace

  config {
    account_name = "0000123456-00002"
    state        = "active"
    service_plan = "M2M10GB"
    profile_type = "verizon_us"
  }
}
