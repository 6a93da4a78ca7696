# An assignment is imported by account, service plan and the EIDs of its devices (comma
# separated, in the order of the configuration's `devices`); without the account, the
# provider's account_name is used. Devices on another plan are left out of the imported
# state, so the next plan shows them being set. The import itself sends nothing.
terraform import thingspace_service_plan_assignment.meters 0000123456-00001/M2M10GB/89049032995470350104029245073231,89049032995470350104029245073328
