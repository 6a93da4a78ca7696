variable "relay_ingest_url" {
  description = "The relay's public ingest URL, with its path token (thingspace-relay -public-url)."
  type        = string
  sensitive   = true
}

variable "callback_username" {
  description = "User name ThingSpace sends in every callback (the relay's -callback-credentials user)."
  type        = string
  default     = "thingspace"
}

variable "callback_password" {
  description = "Password ThingSpace sends in every callback (the relay's -callback-credentials password)."
  type        = string
  sensitive   = true
}

variable "profile_eids" {
  description = "EIDs of pre-active devices to activate, one thingspace_esim_profile each."
  type        = list(string)
}

variable "profile_service_plan" {
  description = "The US service plan of the profiles."
  type        = string
}

variable "pool_eids" {
  description = "EIDs of active devices, not managed as profiles, whose plan thingspace_service_plan_assignment sets."
  type        = list(string)
}

variable "pool_service_plan" {
  description = "The US service plan of the pool's devices."
  type        = string
}
