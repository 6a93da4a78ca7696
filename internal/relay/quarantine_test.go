package relay_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/fleetform/terraform-provider-thingspace/internal/relay"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store/sqlite"
)

// quarantineRow is one row of the quarantine table, read back from the SQLite file.
type quarantineRow struct {
	id     int64
	reason string
	hash   string
	body   []byte
}

// fataler is what quarantineRows needs of a *testing.T or a *rapid.T.
type fataler interface {
	Fatal(args ...any)
}

// quarantineRows reads the quarantine rows with an id above after straight from the database
// file: what the store kept, not what the handler answered.
func quarantineRows(t fataler, dbPath string, after int64) []quarantineRow {
	db, err := sql.Open("sqlite", "file:"+dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT id, reason, content_hash, body FROM quarantine WHERE id > ? ORDER BY id`, after)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []quarantineRow
	for rows.Next() {
		var q quarantineRow
		if err := rows.Scan(&q.id, &q.reason, &q.hash, &q.body); err != nil {
			t.Fatal(err)
		}
		out = append(out, q)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// splitReader hands out a body in two reads cut at a given offset, so that the client sends it
// in two chunks (no Content-Length).
type splitReader struct {
	parts [][]byte
}

func (s *splitReader) Read(p []byte) (int, error) {
	if len(s.parts) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.parts[0])
	s.parts[0] = s.parts[0][n:]
	if len(s.parts[0]) == 0 {
		s.parts = s.parts[1:]
	}
	return n, nil
}

// TestQuarantineStoresNoCredential: bodies that are not callbacks, in every shape a broken or
// foreign sender produces, are quarantined (202) without any configured callback credential,
// the Basic-auth password, or a value that looks like a password: in the stored row, in its
// hash, and anywhere in the database files.
func TestQuarantineStoresNoCredential(t *testing.T) {
	const special = `Pa$$ w0rd&x="1"/<é>` // a password with characters every encoding changes
	e := newEnv(t, func(c *relay.Config) {
		c.Credentials = append(c.Credentials, relay.Credential{Username: "svc-user", Password: special, Account: "acme"})
	})
	configured := []string{"tspass", "otherpass", special, "tsuser", "svc-user"}
	basicOther := func(r *http.Request) { r.SetBasicAuth("other", "otherpass") }
	basicSvc := func(r *http.Request) { r.SetBasicAuth("svc-user", special) }
	cases := []struct {
		name   string
		body   string
		mod    func(*http.Request)
		absent []string // unconfigured secrets the patterns must remove too
	}{
		{name: "truncated JSON", body: `{"username":"tsuser","password":"tspass","requestId":"R1","status":"Succ`},
		{name: "truncated inside the password", body: `{"username":"tsuser","password":"tsp`, absent: []string{`"tsp`}},
		{name: "truncated inside the password, escaped quote", body: `{"username":"tsuser","password":"ts\"pa`, absent: []string{`ts\"pa`}},
		{name: "JSON with trailing data", body: `{"username":"tsuser","password":"tspass","requestId":"R1"} trailing`},
		{name: "JSON with a syntax error", body: `{"username":"tsuser","password":"tspass",,"requestId":"R1","status":"Success"}`},
		{name: "single-quoted pseudo JSON", body: `{'username': 'tsuser', 'password': 'tspass', 'requestId': 'R1'`},
		{name: "form-encoded", body: `username=tsuser&password=tspass&requestId=R1&status=Success`},
		{name: "form-encoded special password", body: "user=svc-user&pass=" + url.QueryEscape(special) + "&requestId=R1", mod: basicSvc},
		{name: "query string", body: "https://relay.example/cb?username=svc-user&password=" + url.PathEscape(special), mod: basicSvc},
		{name: "XML", body: `<callback><username>tsuser</username><password>tspass</password><requestId>R1</requestId></callback>`},
		{name: "XML, cut in the password", body: `<callback><username>tsuser</username><Password>tsp`, absent: []string{"tsp"}},
		{name: "XML-escaped special password", body: "<cb><note>" + strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;").Replace(special) + "</note>", mod: basicSvc},
		{name: "JSON-escaped special password in broken JSON", body: `{"note":` + mustJSON(special) + `,`, mod: basicSvc},
		{name: "binary with the password embedded", body: "\x00\xff\x10\x02tspass\x00\x01\xfe" + "otherpass" + "\x80"},
		{name: "unconfigured secrets under password-like keys", body: "passwd=hunter2&Secret=s3cr3t-value&PWD: pw-colon\n", absent: []string{"hunter2", "s3cr3t-value", "pw-colon"}},
		{name: "device credential object, truncated", body: `{"requestId":"R1","deviceCredential":{"username":"dev","password":"DEVICE-SECRET"`, absent: []string{"DEVICE-SECRET"}},
		{name: "device credential object in broken JSON", body: `{"deviceCredential": {"password": "DEVICE-SECRET-2", "x": [1, {"y": "}"}]}, oops}`, absent: []string{"DEVICE-SECRET-2"}},
		{name: "header-like lines", body: "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("tsuser:tspass")) + "\r\nX-Password: tspass\r\n"},
		{name: "base64 of the pair alone", body: "creds " + base64.StdEncoding.EncodeToString([]byte("other:otherpass")) + " end", mod: basicOther},
		{name: "multipart form", body: "--b\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\ntspass\r\n--b--\r\n"},
		{name: "Basic auth, password in the body", body: "hello otherpass, not JSON", mod: basicOther},
		{name: "valid JSON string holding a form", body: `"username=tsuser&password=tspass&passwd=hunter3"`, absent: []string{"hunter3"}},
		{name: "valid JSON array", body: `[{"password":"tspass"},"tspass",{"note":"secret=abc123"}]`, absent: []string{"abc123"}},
		{name: "JSON object without requestId, secret in another field", body: `{"username":"tsuser","password":"tspass","note":"my password is tspass","n":1}`},
		{name: "sent in two chunks, cut inside the password", body: "garbage password=tspass&more", mod: func(r *http.Request) {
			r.Body = io.NopCloser(&splitReader{parts: [][]byte{[]byte("garbage password=tsp"), []byte("ass&more")}})
			r.ContentLength = -1
		}},
	}
	var last int64
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mods := []func(*http.Request){}
			if tc.mod != nil {
				mods = append(mods, tc.mod)
			}
			code, out, _ := e.post(tc.body, mods...)
			if code != http.StatusAccepted || out["result"] != "quarantined" {
				t.Fatalf("answer %d %v, want 202 quarantined", code, out)
			}
			rows := quarantineRows(t, e.dbPath, last)
			if len(rows) != 1 {
				t.Fatalf("%d new quarantine rows, want 1", len(rows))
			}
			q := rows[0]
			last = q.id
			for _, s := range append(configured, tc.absent...) {
				if bytes.Contains(q.body, []byte(s)) {
					t.Errorf("stored body holds %q:\n%q", s, q.body)
				}
			}
			sum := sha256.Sum256(q.body)
			if q.hash != hex.EncodeToString(sum[:]) {
				t.Errorf("content hash %s is not the hash of the stored body (it must be computed after scrubbing)", q.hash)
			}
			if len(q.body) == 0 {
				t.Errorf("body withheld (%s); scrubbing should have kept the rest", q.reason)
			}
		})
	}
	// Nothing on disk holds a password.
	disk := e.diskBytes()
	for _, s := range []string{"tspass", "otherpass", special, "hunter2", "DEVICE-SECRET"} {
		if bytes.Contains(disk, []byte(s)) {
			t.Errorf("%q on disk", s)
		}
	}
}

// TestQuarantineBasicPasswordWithoutConfiguredCredentials: with no callback credentials
// configured, a Basic-auth password sent with a body is not checked, but it is still a secret
// and never stored.
func TestQuarantineBasicPasswordWithoutConfiguredCredentials(t *testing.T) {
	e := newEnv(t, func(c *relay.Config) { c.Credentials = nil })
	code, _, _ := e.post("not json, basic-only-secret inside", func(r *http.Request) { r.SetBasicAuth("someone", "basic-only-secret") })
	if code != http.StatusAccepted {
		t.Fatalf("answer %d", code)
	}
	rows := quarantineRows(t, e.dbPath, 0)
	if len(rows) != 1 || bytes.Contains(rows[0].body, []byte("basic-only-secret")) || !bytes.Contains(rows[0].body, []byte("not json")) {
		t.Fatalf("rows %+v", rows)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestQuarantineNeverStoresSecretProperty: arbitrary bytes around embedded configured secrets
// (raw and in the encodings a sender may apply), mixed with fragments of credential syntax,
// posted with or without Basic auth: whatever the relay answers, no quarantine row it stored
// holds a configured user name or password.
func TestQuarantineNeverStoresSecretProperty(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "relay.db")
	st, err := sqlite.Open(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var last int64
	fragments := []string{`{`, `}`, `"`, `'`, `:`, `=`, `&`, `,`, "\n", `\`, `"password":"`, `"username":"`, `password=`,
		`passwd: `, `<password>`, `</password>`, `"deviceCredential":{"password":"`, `"requestId":`, `[`, `]`, `%`, " "}
	rapid.Check(t, func(rt *rapid.T) {
		user := rapid.StringMatching(`[^:\x00]{1,12}`).Draw(rt, "user")
		pass := string(rapid.SliceOfN(rapid.Byte(), 1, 16).Draw(rt, "pass"))
		creds := []relay.Credential{{Username: user, Password: pass, Account: "acme"}, {Username: "fixed-user", Password: "fixed-pass-1234"}}
		secrets := []string{user, pass, "fixed-pass-1234", "fixed-user"}
		encodings := []func(string) string{
			func(s string) string { return s },
			url.QueryEscape, url.PathEscape,
			func(s string) string { m := mustJSON(s); return m[1 : len(m)-1] },
		}
		var body []byte
		parts := rapid.IntRange(1, 12).Draw(rt, "parts")
		embedded := false
		for i := 0; i < parts || !embedded; i++ {
			switch rapid.IntRange(0, 2).Draw(rt, "kind") {
			case 0:
				body = append(body, rapid.SliceOfN(rapid.Byte(), 0, 24).Draw(rt, "bytes")...)
			case 1:
				body = append(body, rapid.SampledFrom(fragments).Draw(rt, "fragment")...)
			default:
				s := rapid.SampledFrom(secrets).Draw(rt, "secret")
				enc := rapid.IntRange(0, len(encodings)-1).Draw(rt, "encoding")
				body = append(body, encodings[enc](s)...)
				embedded = true
			}
		}
		basic := rapid.Bool().Draw(rt, "basic")

		r, err := relay.New(relay.Config{Store: st, PathTokens: []string{pathToken}, Credentials: creds})
		if err != nil {
			rt.Fatal(err)
		}
		defer r.Shutdown(context.Background())
		req := httptest.NewRequest("POST", relay.IngestPathPrefix+pathToken, bytes.NewReader(body))
		if basic {
			req.SetBasicAuth(user, pass)
		}
		rec := httptest.NewRecorder()
		r.IngestHandler().ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusAccepted, http.StatusUnauthorized, http.StatusOK:
		default:
			rt.Fatalf("answer %d %s", rec.Code, rec.Body)
		}
		rows := quarantineRows(rt, dbPath, last)
		for _, q := range rows {
			last = q.id
			for _, s := range secrets {
				for _, enc := range encodings {
					if v := enc(s); bytes.Contains(q.body, []byte(v)) {
						rt.Fatalf("stored body %q holds the secret %q (as %q); body sent %q", q.body, s, v, body)
					}
				}
			}
		}
		if rec.Code == http.StatusAccepted && len(rows) != 1 {
			rt.Fatalf("202 but %d rows stored", len(rows))
		}
	})
}
