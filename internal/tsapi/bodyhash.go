package tsapi

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// BodyHash is the hex SHA-256 of an action's parameters without its devices: two chunks with
// the same hash ask ThingSpace for the same change. It is computed from the JSON the action
// sends, so it is a fact of the wire: an intent carries it (the relay's body_sha256) so that a
// later run can tell whether an open intent was the change it is about to send.
func BodyHash(action Action, body ProfileRequest) string {
	body.Devices = nil
	body.Attempt = 0
	b, _ := json.Marshal(body)
	sum := sha256.Sum256(append([]byte(string(action)+" "), b...))
	return hex.EncodeToString(sum[:])
}
