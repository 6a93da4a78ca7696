package store

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// NormalizeKey lower-cases an identifier's kind and trims both its kind and its id.
func NormalizeKey(k DeviceKey) DeviceKey {
	return DeviceKey{Kind: strings.ToLower(strings.TrimSpace(k.Kind)), ID: strings.TrimSpace(k.ID)}
}

// NormalizeKeys normalises every identifier (NormalizeKey) and drops empty ids and repeated
// identifiers, keeping the order.
func NormalizeKeys(keys []DeviceKey) []DeviceKey {
	out := make([]DeviceKey, 0, len(keys))
	for _, k := range keys {
		k = NormalizeKey(k)
		if k.ID == "" || slices.Contains(out, k) {
			continue
		}
		out = append(out, k)
	}
	return out
}

// NormalizeEach normalises every device's identifiers, as Register does: a device may be left
// without any.
func NormalizeEach(devs [][]DeviceKey) [][]DeviceKey {
	out := make([][]DeviceKey, len(devs))
	for i, d := range devs {
		out[i] = NormalizeKeys(d)
	}
	return out
}

// NormalizeDevices normalises every device's identifiers, as an intent needs them: a device
// left without any is an error naming its position.
func NormalizeDevices(devs [][]DeviceKey) ([][]DeviceKey, error) {
	out := NormalizeEach(devs)
	for i, d := range out {
		if len(d) == 0 {
			return nil, fmt.Errorf("%w: device %d has no identifier", ErrInvalid, i)
		}
	}
	return out, nil
}

// SameDevices reports whether two device lists name the same devices with the same
// identifiers, in any order.
func SameDevices(a, b [][]DeviceKey) bool {
	if len(a) != len(b) {
		return false
	}
	key := func(d []DeviceKey) string {
		parts := make([]string, len(d))
		for i, k := range d {
			parts[i] = k.Kind + "\x00" + k.ID
		}
		slices.Sort(parts)
		return strings.Join(parts, "\x01")
	}
	ka, kb := make([]string, len(a)), make([]string, len(b))
	for i := range a {
		ka[i], kb[i] = key(a[i]), key(b[i])
	}
	slices.Sort(ka)
	slices.Sort(kb)
	return slices.Equal(ka, kb)
}

// KeysJSON is a list of identifiers as both stores keep it in a text column (a callback's
// devices; a registered device's ids in SQLite): a JSON array of {kind, id}, [] for none.
func KeysJSON(keys []DeviceKey) string {
	if keys == nil {
		keys = []DeviceKey{}
	}
	b, _ := json.Marshal(keys)
	return string(b)
}
