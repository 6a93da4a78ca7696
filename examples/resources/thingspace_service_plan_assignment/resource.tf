# One service plan across active devices that are not managed as thingspace_esim_profile
# (a profile's service_plan owns its device). Only the devices whose plan differs are sent,
# in bulk `serviceplan` calls. Destroying the assignment sends nothing: the devices keep
# their plan.
resource "thingspace_service_plan_assignment" "meters" {
  service_plan = "M2M10GB"

  devices = [
    { eid = "89049032995470350104029245073231" },
    { eid = "89049032995470350104029245073328", iccid = "89148045072900000123" },
    {
      eid   = "89049032995470350104029245073425"
      iccid = "89148045072900000156"
      imei  = "353492004507341"
    },
  ]
}

# The devices from a data source: every active device in one device group.
data "thingspace_devices" "field_sensors" {
  state      = "active"
  group_name = "field-sensors"
}

resource "thingspace_service_plan_assignment" "field_sensors" {
  service_plan = "M2M4GB"
  devices      = [for eid in data.thingspace_devices.field_sensors.eids : { eid = eid }]
}
