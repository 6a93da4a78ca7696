// Package tsapi is the wire of Verizon ThingSpace's Connectivity Management (M2M) API: the
// JSON of its requests, answers and callbacks, and the facts that come with them (action
// names, device and profile states, identifier kinds, error codes), each with the tolerant
// parsing ThingSpace's many spellings need.
//
// It holds only what describes the JSON, never how to talk to ThingSpace: authentication,
// retries, the rate limit and bulk splitting belong to the client, internal/thingspace. The
// relay and the simulator parse and answer this wire without linking the client (and its
// OAuth2 and rate-limit modules); the provider and the client share the same types, so there
// is one definition of each. It imports the standard library only.
package tsapi
