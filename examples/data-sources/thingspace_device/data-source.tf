# Look a device up by exactly one of eid, iccid, imei or mdn.
data "thingspace_device" "gateway" {
  eid = "89049032000001000000012345678901"
}

output "gateway_line" {
  value = {
    state        = data.thingspace_device.gateway.state
    service_plan = data.thingspace_device.gateway.service_plan
    mdn          = data.thingspace_device.gateway.mdn
  }
}
