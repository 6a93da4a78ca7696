package main

import (
	"fmt"
	"strconv"
	"strings"
)

// device is one entry of the device map every configuration iterates over: EID → {iccid, imei}.
type device struct{ eid, iccid, imei string }

// hclString quotes s for HCL: Go's quoting, plus the template sequences HCL would expand.
func hclString(s string) string {
	q := strconv.Quote(s)
	q = strings.ReplaceAll(q, "${", "$${")
	return strings.ReplaceAll(q, "%{", "%%{")
}

// deviceMap writes the map's entries, one a line, at the given indentation.
func deviceMap(b *strings.Builder, devs []device, indent string) {
	for _, d := range devs {
		fmt.Fprintf(b, "%s%s = { iccid = %s, imei = %s }\n", indent, hclString(d.eid), hclString(d.iccid), hclString(d.imei))
	}
}

const providerHeader = `terraform {
  required_providers {
    thingspace = {
      source = "fleetform/thingspace"
    }
  }
}

# Every setting comes from the environment (THINGSPACE_*), as in scripts/demo.sh.
provider "thingspace" {}
`

// listenerHCL registers the relay as the account's callback listener. It is applied once per
// scenario in a workspace of its own, so that the measured configurations hold only the
// resources being measured.
func listenerHCL(url, password string) string {
	return providerHeader + fmt.Sprintf(`
resource "thingspace_callback_listener" "relay" {
  url      = %s
  username = "thingspace"
  password = %s
}
`, hclString(url), hclString(password))
}

// localsHCL is the device map as a local value, which profiles and the floor iterate over.
func localsHCL(devs []device) string {
	var b strings.Builder
	b.WriteString("locals {\n  devices = {\n")
	deviceMap(&b, devs, "    ")
	b.WriteString("  }\n}\n")
	return b.String()
}

// profilesHCL: one thingspace_esim_profile per device, for_each over the map.
func profilesHCL(devs []device, plan string) string {
	return providerHeader + "\n" + localsHCL(devs) + fmt.Sprintf(`
resource "thingspace_esim_profile" "bench" {
  for_each = local.devices

  eid                 = each.key
  iccid               = each.value.iccid
  imei                = each.value.imei
  service_plan        = %s
  deletion_protection = false
}
`, hclString(plan))
}

// floorHCL is the floor: terraform_data with the same for_each over the same map, the cost
// Terraform itself has for that many instances. It needs no provider to install.
func floorHCL(devs []device) string {
	return localsHCL(devs) + `
resource "terraform_data" "floor" {
  for_each = local.devices

  input = each.value
}
`
}

// fleetHCL: one thingspace_esim_fleet with every device in its map.
func fleetHCL(devs []device, plan string) string {
	var b strings.Builder
	b.WriteString(providerHeader)
	fmt.Fprintf(&b, "\nresource \"thingspace_esim_fleet\" \"bench\" {\n  service_plan        = %s\n  deletion_protection = false\n  devices = {\n", hclString(plan))
	deviceMap(&b, devs, "    ")
	b.WriteString("  }\n}\n")
	return b.String()
}
