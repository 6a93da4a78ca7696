// Package reconcile is the provider's decision engine: for each device it decides the next
// carrier action, or a wait, from what is observed, and runs those decisions to completion.
//
// The rule it exists for: what to send for a device is a function of
//
//   - the desired settings (the configuration),
//   - the device's carrier state, read from ThingSpace's synchronous device list, and
//   - the ledger: what the relay (or, without a relay, the provider's own journal) records for
//     any of the device's identifiers: requests still open, intents whose outcome is unknown,
//     and the latest final callback per action, which is where a profile's status and role
//     live (the device list does not show them).
//
// Terraform's prior state is never an input for "what was already sent" or "what is already
// enabled": it is written by a process that may have been killed, or by an apply that timed
// out, and deciding from it repeats or reverses actions. It is an input only for what the
// carrier cannot show (activation-time settings such as the ZIP code of the number).
//
// Decide is a pure function of those values. Run observes, decides, acts through a World
// (ThingSpace and the relay, as the provider wires them), waits for the callbacks, confirms, and
// observes again, until every device is done, refused, or out of time. It never sends the same
// change twice in one run, never acts while a request or an intent for the device is open, and
// confirms every success by a fresh observation before it reports it.
//
// The package imports nothing from Terraform: the provider translates its models into Desired
// values and Results back into state.
package reconcile
