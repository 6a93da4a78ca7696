# A fleet is imported by its account and the EIDs of its devices (comma separated), or by a
# device filter: every device of the account in that state (and on that plan). Without the
# account, the provider's account_name is used. The fleet's service_plan becomes the plan
# most devices have; the others get their own service_plan in the state. The import sends
# nothing, and deletion_protection is on.
terraform import thingspace_esim_fleet.trackers 0000123456-00001/89049032995470350104029245073231,89049032995470350104029245073328
terraform import thingspace_esim_fleet.meters 0000123456-00001/state=active,service_plan=M2M10GB
