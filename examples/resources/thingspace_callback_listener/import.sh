# A listener is imported by account and service name; the service name alone uses the
# provider's account_name.
terraform import thingspace_callback_listener.relay 0000123456-00001/DeviceProfileService
