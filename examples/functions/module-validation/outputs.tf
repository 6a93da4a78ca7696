output "iccids" {
  description = "The ICCID of each device's lead profile, by name."
  value       = { for name, profile in thingspace_esim_profile.device : name => profile.iccid }
}
