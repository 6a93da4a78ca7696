package relay

import (
	"bytes"
	"testing"
)

// TestScrubLiteralsCannotRebuildASecret: replacements are made of a byte no secret contains, so
// they never combine with what surrounds them into a secret (a "[REDACTED]" mark, or "***" when
// a secret holds '*', could).
func TestScrubLiteralsCannotRebuildASecret(t *testing.T) {
	s := newSecretSet([]Credential{{Username: "ED]x", Password: "a*b"}, {Username: "u", Password: "**"}})
	for _, body := range []string{"ED]x", "ED]xx", "[REDACTED]x", "a*b**a*b", "x*ED]xa*b*", "password=ED]x&p=**"} {
		out, ok := s.scrubBytes([]byte(body))
		if !ok {
			t.Fatalf("%q: withheld", body)
		}
		for _, v := range []string{"ED]x", "a*b", "**"} {
			if bytes.Contains(out, []byte(v)) {
				t.Fatalf("%q scrubbed to %q still holds %q", body, out, v)
			}
		}
	}
}

// TestScrubPatternsKeepsTheRest: only the values after credential keys go; the rest of a body
// stays readable for whoever inspects the quarantine.
func TestScrubPatternsKeepsTheRest(t *testing.T) {
	for in, want := range map[string]string{
		`requestId=R1&password=x&status=ok`:                    `requestId=R1&password=[REDACTED]&status=ok`,
		`{"status":"ok","Password" : "x\"y", "n": 1`:           `{"status":"ok","Password" : "[REDACTED]", "n": 1`,
		`{"deviceCredential":{"a":"}","b":[1]},"status":"ok"}`: `{"deviceCredential":[REDACTED],"status":"ok"}`,
		`<r><passwd a="1">x</passwd><s>ok</s></r>`:             `<r><passwd a="1">[REDACTED]</passwd><s>ok</s></r>`,
		`no credential here, just a password word`:             `no credential here, just a password word`,
		"X-Api-Key: k1\r\nok: 1":                               "X-Api-Key: [REDACTED]\r\nok: 1",
	} {
		if got := string(scrubPatterns([]byte(in))); got != want {
			t.Errorf("%q:\n got %q\nwant %q", in, got, want)
		}
	}
}
