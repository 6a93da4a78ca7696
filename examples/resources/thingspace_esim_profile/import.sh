# A profile is imported by the device's EID (its lead profile)...
terraform import thingspace_esim_profile.gateway 89049032995470350104029245072940

# ...or by EID/ICCID, to name one profile of the device.
terraform import thingspace_esim_profile.gateway 89049032995470350104029245072940/89148045072900000008
