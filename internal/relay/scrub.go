package relay

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"html"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// A quarantined body is kept for a human to inspect, whatever its shape: truncated JSON, a form,
// XML, binary. Redact only knows how to clean a decoded JSON value, so such a body would otherwise
// be stored with the callback password ThingSpace copies into it. The scrubber below cleans any
// byte string in two passes:
//
//  1. Pattern pass: the value after anything that looks like a credential key ("password": "...",
//     password=..., <passwd>...</passwd>, "deviceCredential": {...}), up to the value's end or the
//     end of the body when it is cut short.
//  2. Literal pass: every configured callback credential (user names and passwords, and the
//     Basic-auth password sent with the body), raw and in the encodings a sender would plausibly
//     apply (URL, JSON, HTML escaping; base64 of user:password as in a Basic header), wherever
//     it appears.
//
// Whatever the body, the stored form then holds none of those secrets: the literal pass replaces
// each occurrence with a run of one byte that occurs in no secret, so no replacement can combine
// with its neighbours into a secret; a final check withholds the body entirely should one remain.

// scrubMark replaces a value found by the pattern pass.
const scrubMark = "[REDACTED]"

// credentialKey matches a key that names a credential, in any case: password, passwd,
// passphrase, pass, pwd, secret, deviceCredential, authorization, api keys and tokens.
var credentialKey = regexp.MustCompile(`(?i)[a-z0-9_.\-]*(?:pass|pwd|secret|credential|authorization|api[_\-]?key|token)[a-z0-9_.\-]*`)

// secretSet is the list of literal secrets the quarantine scrubber removes.
type secretSet struct {
	raw      []string // the secrets as configured or sent
	variants []string // raw and their encoded forms, longest first
}

// newSecretSet collects the configured callback credentials (user names and passwords) and any
// extra secrets (the Basic-auth password of one request).
func newSecretSet(creds []Credential, extra ...string) *secretSet {
	s := &secretSet{}
	add := func(v string) {
		if v != "" && !slices.Contains(s.raw, v) {
			s.raw = append(s.raw, v)
		}
	}
	for _, c := range creds {
		add(c.Username)
		add(c.Password)
	}
	for _, e := range extra {
		add(e)
	}
	seen := map[string]bool{}
	addVariant := func(v string) {
		if v != "" && !seen[v] {
			seen[v] = true
			s.variants = append(s.variants, v)
		}
	}
	for _, v := range s.raw {
		addVariant(v)
		addVariant(url.QueryEscape(v))
		addVariant(url.PathEscape(v))
		addVariant(html.EscapeString(v))
		addVariant(jsonEscaped(v, true))
		addVariant(jsonEscaped(v, false))
	}
	for _, c := range creds {
		if c.Username != "" || c.Password != "" {
			addVariant(base64.StdEncoding.EncodeToString([]byte(c.Username + ":" + c.Password)))
		}
	}
	// Longest first: a secret that contains another is replaced whole.
	slices.SortStableFunc(s.variants, func(a, b string) int { return len(b) - len(a) })
	return s
}

// jsonEscaped is v as it appears between the quotes of a JSON string.
func jsonEscaped(v string, escapeHTML bool) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(escapeHTML)
	if err := enc.Encode(v); err != nil {
		return ""
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	return string(b[1 : len(b)-1])
}

// contains reports whether b holds any of the secrets, raw or encoded.
func (s *secretSet) contains(b []byte) bool {
	for _, v := range s.variants {
		if bytes.Contains(b, []byte(v)) {
			return true
		}
	}
	return false
}

// fillByte is a byte that occurs in no secret (preferring readable ones), or false when every
// byte value occurs in some secret.
func (s *secretSet) fillByte() (byte, bool) {
	var used [256]bool
	for _, v := range s.variants {
		for i := 0; i < len(v); i++ {
			used[v[i]] = true
		}
	}
	for _, c := range []byte("*#~_X") {
		if !used[c] {
			return c, true
		}
	}
	for c := 0; c < 256; c++ {
		if !used[c] {
			return byte(c), true
		}
	}
	return 0, false
}

// scrubLiterals replaces every occurrence of every secret with a run of a byte found in no
// secret. Each replacement can only split the runs of other bytes, never join them, so once a
// secret is replaced no later replacement brings it back. It returns false when no such byte
// exists (the caller withholds the body).
func (s *secretSet) scrubLiterals(b []byte) ([]byte, bool) {
	if len(s.variants) == 0 {
		return b, true
	}
	c, ok := s.fillByte()
	if !ok {
		return nil, false
	}
	fill := []byte{c, c, c}
	for _, v := range s.variants {
		b = bytes.ReplaceAll(b, []byte(v), fill)
	}
	return b, !s.contains(b)
}

// scrubPatterns replaces the value after every credential-looking key: JSON-ish ("password":
// "x", 'secret': 'x', "deviceCredential": {...}), form-ish (password=x&...), header-ish
// (Authorization: Basic x) and XML-ish (<password>x</password>). A value cut off by the end of
// the body is redacted up to the end.
func scrubPatterns(b []byte) []byte {
	matches := credentialKey.FindAllIndex(b, -1)
	if matches == nil {
		return b
	}
	var out []byte
	last := 0
	for _, m := range matches {
		if m[0] < last {
			continue // inside a value already redacted
		}
		start, end, quote := credentialValue(b, m[0], m[1])
		if end <= start {
			continue
		}
		if out == nil {
			out = make([]byte, 0, len(b))
		}
		out = append(out, b[last:start]...)
		if quote != 0 {
			out = append(out, quote)
			out = append(out, scrubMark...)
			if end <= len(b) && b[end-1] == quote && end-1 > start {
				out = append(out, quote)
			}
		} else {
			out = append(out, scrubMark...)
		}
		last = end
	}
	if out == nil {
		return b
	}
	return append(out, b[last:]...)
}

// valueEnds end an unquoted value: the separators of forms, JSON, headers and tags.
const valueEnds = "&;,\r\n\"'<>{}[]"

// credentialValue finds the value that follows the key at b[ks:ke]: [start, end) of the value
// (quotes included), and the quote byte when it is a quoted string. end <= start: no value.
func credentialValue(b []byte, ks, ke int) (start, end int, quote byte) {
	i := ke
	quotedKey := false
	if ks > 0 && (b[ks-1] == '"' || b[ks-1] == '\'') && i < len(b) && b[i] == b[ks-1] {
		i++
		quotedKey = true
	}
	xml := ks > 0 && b[ks-1] == '<'
	skip := func(newlines bool) {
		for i < len(b) && (b[i] == ' ' || b[i] == '\t' || (newlines && (b[i] == '\r' || b[i] == '\n'))) {
			i++
		}
	}
	if xml {
		// <password attr="...">value</password>: the value runs to the next tag.
		for i < len(b) && b[i] != '>' {
			i++
		}
		if i >= len(b) {
			return 0, 0, 0
		}
		i++
		start = i
		for i < len(b) && b[i] != '<' {
			i++
		}
		return start, i, 0
	}
	skip(quotedKey)
	if i >= len(b) || (b[i] != ':' && b[i] != '=') {
		return 0, 0, 0
	}
	i++
	skip(quotedKey)
	if i >= len(b) {
		return 0, 0, 0
	}
	start = i
	switch c := b[i]; c {
	case '"', '\'':
		i++
		for i < len(b) && b[i] != c {
			if b[i] == '\\' {
				i++
			}
			i++
		}
		return start, min(i+1, len(b)), c
	case '{', '[':
		return start, balancedEnd(b, i), 0
	}
	for i < len(b) && strings.IndexByte(valueEnds, b[i]) < 0 {
		i++
	}
	// Trailing blanks belong to the separator, not to the value.
	end = i
	for end > start && (b[end-1] == ' ' || b[end-1] == '\t') {
		end--
	}
	return start, end, 0
}

// balancedEnd is the end of the object or array starting at b[i], skipping quoted strings; the
// end of b when it is cut short.
func balancedEnd(b []byte, i int) int {
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"', '\'':
			q := b[i]
			for i++; i < len(b) && b[i] != q; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1
			}
		}
	}
	return len(b)
}

// scrubBytes removes credentials from a body of any shape (see the top of this file). ok is
// false when a secret could not be removed: the body must not be stored.
func (s *secretSet) scrubBytes(b []byte) (out []byte, ok bool) {
	return s.scrubLiterals(scrubPatterns(slices.Clone(b)))
}

// scrubJSON removes credentials from every string, number and key of a decoded (and already
// redacted) JSON value, in place where it can, and returns the result.
func (s *secretSet) scrubJSON(v any) any {
	str := func(x string) (string, bool) {
		b, ok := s.scrubBytes([]byte(x))
		if !ok {
			return scrubMark, true
		}
		return string(b), string(b) != x
	}
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			nk, _ := str(k)
			out[nk] = s.scrubJSON(e)
		}
		return out
	case []any:
		for i, e := range t {
			t[i] = s.scrubJSON(e)
		}
		return t
	case string:
		x, _ := str(t)
		return x
	case json.Number:
		if x, changed := str(t.String()); changed {
			return x
		}
		return t
	}
	return v
}

// quarantineForm is what the quarantine table keeps of a body: the redacted, scrubbed JSON when
// it decoded (p non-nil), the scrubbed bytes otherwise. ok is false when the body must be
// withheld (a secret survived scrubbing).
func (s *secretSet) quarantineForm(raw []byte, p *preparedBody) (out []byte, ok bool) {
	if p != nil {
		if b, err := marshalJSON(s.scrubJSON(p.value)); err == nil {
			if !s.contains(b) {
				return b, true
			}
			// An escape sequence of the encoding spelled a secret: clean the bytes instead
			// (the result need not be JSON any more).
			return s.scrubLiterals(b)
		}
	}
	return s.scrubBytes(raw)
}
