// Package relayapi is thingspace-relay's provider-facing HTTP API: the JSON of each endpoint,
// defined once, and Client, the small client the provider waits and journals with. The relay
// (internal/relay) answers with these types and the client reads them, so the two cannot
// drift apart. It imports the standard library, internal/tsapi (devices are ThingSpace
// identifiers) and internal/retry only: the relay links it without any client machinery.
package relayapi
