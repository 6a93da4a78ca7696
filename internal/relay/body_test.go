package relay

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestCanonicalHashIgnoresVolatileFields(t *testing.T) {
	a, err := prepareBody([]byte(`{"b":[1,2.50,{"y":1,"x":2}],"a":"<&>","callbackCount":1,"username":"u","password":"p"}`), DefaultRedactFields)
	if err != nil {
		t.Fatal(err)
	}
	b, err := prepareBody([]byte(`{"a":"<&>", "maxCallbackThreshold":4, "b":[1,2.50,{"x":2,"y":1}], "CallbackCount":"7", "Password":"q"}`), DefaultRedactFields)
	if err != nil {
		t.Fatal(err)
	}
	if a.hash != b.hash {
		t.Fatalf("hashes differ:\n%s\n%s", a.stored, b.stored)
	}
	c, _ := prepareBody([]byte(`{"a":"<&>","b":[1,2.5,{"x":2,"y":1}]}`), DefaultRedactFields)
	if c.hash == a.hash {
		t.Fatal("2.5 and 2.50 hash alike: numbers must be kept as written")
	}
	if !a.hasCreds || a.username != "u" || a.password != "p" || strings.Contains(string(a.stored), `"p"`) {
		t.Fatalf("%+v %s", a, a.stored)
	}
	if _, err := prepareBody([]byte(`{"a":1} {"b":2}`), nil); err == nil {
		t.Fatal("trailing data accepted")
	}
}

// FuzzPrepareBody: the body path never panics; when a body is a JSON object, its hash does not
// depend on callbackCount, maxCallbackThreshold or the credentials, and no redacted field
// survives in the stored form.
func FuzzPrepareBody(f *testing.F) {
	for _, s := range []string{
		`{"requestId":"r","deviceIds":[{"kind":"eid","id":"1"}],"status":"Success","callbackCount":1}`,
		`{"username":"u","password":"p","requestId":"r","deviceResponse":{"deviceProfileResponse":{"deviceCredential":{"password":"x"}}}}`,
		`[1,2,{"password":"x"}]`, `"str"`, `1e400`, `{"a":{"b":{"c":[{"Password":1}]}}}`, `not json`, `{"a":"\ud800"}`, ``,
	} {
		f.Add([]byte(s), 3)
	}
	f.Fuzz(func(t *testing.T, body []byte, count int) {
		p, err := prepareBody(body, DefaultRedactFields)
		if err != nil {
			return
		}
		if strings.Contains(strings.ToLower(string(p.stored)), `"password"`) || strings.Contains(strings.ToLower(string(p.stored)), `"devicecredential"`) {
			t.Fatalf("redacted field stored: %s", p.stored)
		}
		if !json.Valid(p.stored) {
			t.Fatalf("stored form is not JSON: %q", p.stored)
		}
		m, ok := p.value.(map[string]any)
		if !ok {
			return
		}
		// Re-encode with other volatile fields and credentials: same hash.
		m["callbackCount"] = json.Number("7")
		m["maxCallbackThreshold"] = count
		m["username"] = "someone"
		m["password"] = "secret"
		b, err := json.Marshal(m)
		if err != nil {
			return
		}
		q, err := prepareBody(b, DefaultRedactFields)
		if err != nil {
			t.Fatalf("re-encoded body rejected: %v", err)
		}
		if q.hash != p.hash {
			t.Fatalf("hash changed with volatile fields:\n%s\n%s", p.stored, q.stored)
		}
		// The stored form is canonical: hashing it again gives the same hash.
		r, err := prepareBody(p.stored, DefaultRedactFields)
		if err != nil || r.hash != p.hash {
			t.Fatalf("stored form hashes differently: %v", err)
		}
	})
}
