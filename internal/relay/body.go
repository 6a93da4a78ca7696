package relay

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"strings"
)

// DefaultRedactFields are removed at any depth of a body before it is hashed or stored, compared
// case-insensitively. The top-level "username" and "password" (the callback credentials
// ThingSpace copies into every message) are always removed.
var DefaultRedactFields = []string{"deviceCredential", "password"}

// hashIgnoredFields are top-level fields that differ between deliveries of the same callback.
var hashIgnoredFields = []string{"callbackCount", "maxCallbackThreshold"}

// decodeJSON decodes one JSON value keeping numbers as written. Trailing data is an error.
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the JSON value")
	}
	return v, nil
}

// Redact removes the credentials from a decoded JSON value, in place: the top-level username and
// password, and every key named in fields (case-insensitively) at any depth.
func Redact(v any, fields []string) any {
	if m, ok := v.(map[string]any); ok {
		for k := range m {
			if strings.EqualFold(k, "username") || strings.EqualFold(k, "password") {
				delete(m, k)
			}
		}
	}
	redactDeep(v, fields)
	return v
}

func redactDeep(v any, fields []string) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if matchAny(k, fields) {
				delete(t, k)
				continue
			}
			redactDeep(e, fields)
		}
	case []any:
		for _, e := range t {
			redactDeep(e, fields)
		}
	}
}

func matchAny(k string, fields []string) bool {
	for _, f := range fields {
		if strings.EqualFold(k, f) {
			return true
		}
	}
	return false
}

// marshalJSON writes v with sorted object keys, numbers as written and no HTML escaping.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// CanonicalHash is the hex SHA-256 of the canonical form of a redacted JSON value: object keys
// sorted, numbers as written, the top-level callbackCount and maxCallbackThreshold left out (they
// change with every delivery of the same callback). It does not modify v.
func CanonicalHash(v any) (string, error) {
	if m, ok := v.(map[string]any); ok {
		c := make(map[string]any, len(m))
		for k, e := range m {
			if !matchAny(k, hashIgnoredFields) {
				c[k] = e
			}
		}
		v = c
	}
	b, err := marshalJSON(v)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// preparedBody is a decoded body, redacted, with what ingest needs from it.
type preparedBody struct {
	value    any    // the redacted value
	stored   []byte // the redacted JSON as stored
	hash     string // CanonicalHash of value
	username string // top-level credentials, before redaction
	password string
	hasCreds bool
}

// prepareBody decodes, extracts the top-level credentials, redacts and hashes a JSON body.
func prepareBody(raw []byte, fields []string) (*preparedBody, error) {
	v, err := decodeJSON(raw)
	if err != nil {
		return nil, err
	}
	p := &preparedBody{}
	if m, ok := v.(map[string]any); ok {
		for k, e := range m {
			switch {
			case strings.EqualFold(k, "username"):
				p.username, _ = e.(string)
				p.hasCreds = true
			case strings.EqualFold(k, "password"):
				p.password, _ = e.(string)
				p.hasCreds = true
			}
		}
	}
	p.value = Redact(v, fields)
	if p.stored, err = marshalJSON(p.value); err != nil {
		return nil, err
	}
	if p.hash, err = CanonicalHash(p.value); err != nil {
		return nil, err
	}
	return p, nil
}
