package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/relay"
)

// The test binary doubles as the relay: with THINGSPACE_RELAY_EXEC=1 it runs the command line
// instead of the tests, so the crash test can SIGKILL a real process without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("THINGSPACE_RELAY_EXEC") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
	}
	os.Exit(m.Run())
}

type proc struct {
	cmd                *exec.Cmd
	ingest, api, admin string
	stderr             *bytes.Buffer
	done               chan error
}

var firstLine = regexp.MustCompile(`^thingspace-relay ingest on (\S+), api on (\S+), admin on (\S+)$`)

type lockedBuffer struct {
	mu sync.Mutex
	bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Buffer.Write(p)
}

// start runs "thingspace-relay serve" with loopback listeners on free ports.
func start(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	all := append([]string{"serve", "-ingest-addr", "127.0.0.1:0", "-api-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0"}, args...)
	cmd := exec.Command(os.Args[0], all...)
	cmd.Env = append(append(os.Environ(), "THINGSPACE_RELAY_EXEC=1"), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, stderr: &stderr.Buffer, done: make(chan error, 1)}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("relay did not start: %v\n%s", err, stderr.String())
	}
	m := firstLine.FindStringSubmatch(strings.TrimSpace(line))
	if m == nil {
		cmd.Process.Kill()
		t.Fatalf("first line %q", line)
	}
	p.ingest, p.api, p.admin = m[1], m[2], m[3]
	go func() {
		io.Copy(io.Discard, stdout)
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
	})
	return p
}

// wait waits for the process to exit (bounded: a stuck relay fails the test, not the suite).
func (p *proc) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(60 * time.Second):
		t.Fatal("relay did not exit")
		return nil
	}
}

const crashCallbacks = 10000

func callback(req string, dev int, count int) string {
	return fmt.Sprintf(`{"username":"ts","password":"pw","requestId":%q,"deviceIds":[{"kind":"eid","id":"E%05d"}],"status":"Success","callbackCount":%d,"maxCallbackThreshold":4}`, req, dev, count)
}

func apiGet(t *testing.T, url, token string, out any) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == 200 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
	}
	return resp.StatusCode
}

type callbacksPage struct {
	Callbacks []struct {
		Seq  int64 `json:"seq"`
		Body struct {
			DeviceIDs []struct{ ID string } `json:"deviceIds"`
		} `json:"body"`
	} `json:"callbacks"`
	NextAfter int64 `json:"next_after"`
}

// TestCrashKeepsAcknowledgedCallbacks: SIGKILL during a storm of 10,000 callbacks from 32
// senders, then restart on the same file: every callback answered 200 is there, seqs gap-free.
func TestCrashKeepsAcknowledgedCallbacks(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "data", "relay.db")
	tokenFile := filepath.Join(dir, "path-token")
	os.WriteFile(tokenFile, []byte("# rotation list\ncrash-token\n"), 0o600)
	env := []string{"RELAY_PATH_TOKEN_FILE=" + tokenFile, "RELAY_CALLBACK_CREDENTIALS=ts:pw;account=acme", "RELAY_API_TOKEN=apitok", "RELAY_STORE=sqlite:" + db}
	p := start(t, env)

	const requests = 10
	key := func(i int) string { return fmt.Sprintf("REQ-%d/E%05d", i%requests, i) } // as found below
	acked := storm(t, p, 32, crashCallbacks, int64(1000+rand.IntN(5000)), http.StatusOK, func(c *http.Client, i int) (int, error) {
		body := callback(fmt.Sprintf("REQ-%d", i%requests), i, 1)
		resp, err := c.Post(p.ingest+"/callbacks/v1/thingspace/crash-token", "application/json", strings.NewReader(body))
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	})
	t.Logf("killed after %d acknowledged callbacks", len(acked))

	p2 := start(t, env)
	found := map[string]bool{}
	for r := range requests {
		after := int64(0)
		for range 100 {
			var page callbacksPage
			if code := apiGet(t, fmt.Sprintf("%s/v1/requests/REQ-%d/callbacks?after=%d&wait=0s&limit=10000", p2.api, r, after), "apitok", &page); code != 200 {
				t.Fatalf("GET callbacks: %d", code)
			}
			for _, c := range page.Callbacks {
				if c.Seq != after+1 {
					t.Fatalf("REQ-%d: seq %d after %d", r, c.Seq, after)
				}
				after = c.Seq
				for _, d := range c.Body.DeviceIDs {
					found[fmt.Sprintf("REQ-%d/%s", r, d.ID)] = true
				}
			}
			if len(page.Callbacks) == 0 {
				break
			}
		}
	}
	missing := 0
	for i := range acked {
		if !found[key(i)] {
			missing++
			if missing < 5 {
				t.Errorf("acknowledged callback %s lost", key(i))
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d acknowledged callbacks lost", missing)
	}
	// A redelivery of an acknowledged callback after the restart is a duplicate.
	var some string
	for i := range acked {
		some = key(i)
		break
	}
	req, dev, _ := strings.Cut(some, "/E")
	var n int
	fmt.Sscanf(dev, "%d", &n)
	resp, err := http.Post(p2.ingest+"/callbacks/v1/thingspace/crash-token", "application/json", strings.NewReader(callback(req, n, 2)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"duplicate"`) {
		t.Fatalf("redelivery after restart: %s", b)
	}
}

// TestSIGTERMAnswersLongPolls: SIGTERM with a long-poll open answers it and exits 0.
func TestSIGTERMAnswersLongPolls(t *testing.T) {
	dir := t.TempDir()
	p := start(t, []string{"RELAY_PATH_TOKEN=tok", "RELAY_API_TOKEN=apitok"}, "-store", "sqlite:"+filepath.Join(dir, "r.db"))
	codes := make(chan int, 1)
	go func() {
		codes <- apiGet(t, p.api+"/v1/requests/R1/callbacks?after=0&wait=5m", "apitok", nil)
	}()
	re := regexp.MustCompile(`(?m)^thingspace_relay_waiters 1$`)
	for i := 0; ; i++ {
		resp, err := http.Get(p.admin + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if re.Match(b) {
			break
		}
		if i > 400 {
			t.Fatal("the long-poll never started waiting")
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := <-codes; code != 200 {
		t.Fatalf("long-poll answered %d", code)
	}
	if err := p.wait(t); err != nil {
		t.Fatalf("exit: %v\n%s", err, p.stderr.String())
	}
}

func TestHealthcheckAndVersion(t *testing.T) {
	p := start(t, []string{"RELAY_PATH_TOKEN=tok"}, "-store", "sqlite:"+filepath.Join(t.TempDir(), "r.db"))
	var out, errb bytes.Buffer
	admin := strings.TrimPrefix(p.admin, "http://")
	if code := run([]string{"healthcheck", "-admin-addr", admin}, &out, &errb, func(string) string { return "" }); code != 0 {
		t.Fatalf("healthcheck: %d %s", code, errb.String())
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait(t)
	if code := run([]string{"healthcheck"}, &out, &errb, func(k string) string {
		if k == "RELAY_ADMIN_ADDR" {
			return admin
		}
		return ""
	}); code != 1 {
		t.Fatalf("healthcheck of a stopped relay: %d", code)
	}
	out.Reset()
	if code := run([]string{"version"}, &out, &errb, os.Getenv); code != 0 || !strings.HasPrefix(out.String(), "thingspace-relay ") {
		t.Fatalf("version: %d %q", code, out.String())
	}
	if code := run([]string{"bogus"}, &out, &errb, os.Getenv); code != 2 {
		t.Fatalf("unknown command: %d", code)
	}
}

func TestMigrate(t *testing.T) {
	db := filepath.Join(t.TempDir(), "m", "relay.db")
	var out, errb bytes.Buffer
	if code := run([]string{"migrate", "-store", "sqlite:" + db}, &out, &errb, func(string) string { return "" }); code != 0 {
		t.Fatalf("migrate: %s", errb.String())
	}
	if _, err := os.Stat(db); err != nil {
		t.Fatal(err)
	}
}

func TestServeRefusesPlainHTTPOnPublicAddress(t *testing.T) {
	var out, errb bytes.Buffer
	getenv := func(k string) string {
		if k == "RELAY_PATH_TOKEN" {
			return "tok"
		}
		return ""
	}
	code := run([]string{"serve", "-ingest-addr", "0.0.0.0:0", "-store", "sqlite:" + filepath.Join(t.TempDir(), "r.db")}, &out, &errb, getenv)
	if code == 0 || !strings.Contains(errb.String(), "refusing plain HTTP") {
		t.Fatalf("%d %s", code, errb.String())
	}
	errb.Reset()
	code = run([]string{"serve", "-ingest-addr", "127.0.0.1:0"}, &out, &errb, func(string) string { return "" })
	if code == 0 || !strings.Contains(errb.String(), "path token is required") {
		t.Fatalf("no path token: %d %s", code, errb.String())
	}
}

func TestOptionsFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	credFile := filepath.Join(dir, "creds")
	os.WriteFile(credFile, []byte("a:b;account=acme\n\nc:d\n"), 0o600)
	env := map[string]string{
		"RELAY_INGEST_ADDR":               "127.0.0.1:9005",
		"RELAY_API_TOKEN":                 "t1 t2=acme,globex",
		"RELAY_CALLBACK_CREDENTIALS_FILE": credFile,
		"RELAY_CALLBACK_CREDENTIALS":      "ignored:because-file-wins",
		"RELAY_MAX_WAIT":                  "90s",
		"RELAY_BEHIND_TLS_PROXY":          "true",
		"RELAY_PUBLIC_URL":                "https://a.example/x https://b.example/y",
		"RELAY_ALLOW_CIDR":                "10.0.0.0/8",
		"RELAY_REDACT_FIELD":              "imsi msisdn",
	}
	var errb bytes.Buffer
	o, err := parseOptions("serve", []string{"-api-addr", "127.0.0.1:7000", "-path-token", "fromflag", "-max-wait", "2m"}, &errb, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if o.ingestAddr != "127.0.0.1:9005" || o.apiAddr != "127.0.0.1:7000" || o.maxWait != 2*time.Minute || !o.behindTLSProxy {
		t.Fatalf("%+v", o)
	}
	if len(o.apiTokens) != 2 || o.apiTokens[1] != "t2=acme,globex" || len(o.credentials) != 2 || len(o.publicURLs) != 2 {
		t.Fatalf("%+v", o)
	}
	if len(o.warnings) != 1 || !strings.Contains(o.warnings[0], "RELAY_PATH_TOKEN_FILE") {
		t.Fatalf("warnings %q", o.warnings)
	}
	cfg, err := buildConfig(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"deviceCredential", "password", "imsi", "msisdn"} {
		if !slices.Contains(cfg.RedactFields, f) {
			t.Fatalf("redact fields %q lack %q", cfg.RedactFields, f)
		}
	}
	if cfg.Credentials[0].Account != "acme" || cfg.Credentials[1].Username != "c" || len(cfg.APITokens[1].Accounts) != 2 || len(cfg.AllowCIDRs) != 1 {
		t.Fatalf("%+v", cfg)
	}
	if isLoopback(":9001") || isLoopback("0.0.0.0:1") || !isLoopback("127.0.0.1:1") || !isLoopback("[::1]:1") || !isLoopback("localhost:1") {
		t.Fatal("isLoopback")
	}
	if got := redactStoreURL("postgres://u:secret@h/db"); strings.Contains(got, "secret") {
		t.Fatal(got)
	}
}

// TestServeTLS: with -tls-cert the ingest and API listeners speak TLS, the first line and the
// default public URL say https.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSelfSigned(t, certFile, keyFile)
	p := start(t, []string{"RELAY_PATH_TOKEN=tok", "RELAY_API_TOKEN=apitok"},
		"-store", "sqlite:"+filepath.Join(dir, "r.db"), "-tls-cert", certFile, "-tls-key", keyFile)
	if !strings.HasPrefix(p.ingest, "https://") || !strings.HasPrefix(p.api, "https://") {
		t.Fatalf("first line: %s %s", p.ingest, p.api)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := client.Post(p.ingest+"/callbacks/v1/thingspace/tok", "application/json", strings.NewReader(`{"requestId":"R1","status":"Success"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("ingest over TLS: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", p.api+"/v1/info", nil)
	req.Header.Set("Authorization", "Bearer apitok")
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Hashes []string `json:"ingest_url_sha256"`
	}
	json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	sum := sha256.Sum256([]byte(p.ingest + "/callbacks/v1/thingspace/tok"))
	if len(info.Hashes) != 1 || info.Hashes[0] != hex.EncodeToString(sum[:]) {
		t.Fatalf("info %v, want the hash of %s", info.Hashes, p.ingest+"/callbacks/v1/thingspace/tok")
	}
}

func writeSelfSigned(t *testing.T, certFile, keyFile string) {
	t.Helper()
	writeSelfSignedSerial(t, certFile, keyFile, 1)
}

func writeSelfSignedSerial(t *testing.T, certFile, keyFile string, serial int64) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
}

// apiSend sends a JSON body to the API and returns the status and the answer.
func apiSend(client *http.Client, method, url, token string, body any) (int, []byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

type crashIntent struct {
	IntentID  string `json:"intent_id"`
	State     string `json:"state"`
	RequestID string `json:"request_id"`
}

type crashRecord struct {
	OpenRequests []struct {
		RequestID string `json:"request_id"`
	} `json:"open_requests"`
	OpenIntents []crashIntent `json:"open_intents"`
}

// storm sends n calls from workers goroutines and SIGKILLs the relay right after the killAt-th
// call answered want; it returns the indexes of the calls answered want.
func storm(t *testing.T, p *proc, workers, n int, killAt int64, want int, call func(client *http.Client, i int) (int, error)) map[int]bool {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}, Timeout: 30 * time.Second}
	var mu sync.Mutex
	acked := map[int]bool{}
	var next, nAcked atomic.Int64
	var killed atomic.Bool
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || killed.Load() {
					return
				}
				code, err := call(client, i)
				if err != nil {
					continue // the relay is gone: this call's outcome is unknown
				}
				if code != want {
					t.Errorf("call %d answered %d, want %d", i, code, want)
					return
				}
				mu.Lock()
				acked[i] = true
				mu.Unlock()
				if nAcked.Add(1) == killAt {
					killed.Store(true)
					p.cmd.Process.Signal(syscall.SIGKILL)
				}
			}
		}()
	}
	wg.Wait()
	p.wait(t)
	if !killed.Load() {
		t.Fatalf("the calls ended before the kill (%d answered)", nAcked.Load())
	}
	return acked
}

// TestCrashKeepsAcknowledgedIntents: intents are as durable as callbacks. SIGKILL during a storm
// of intent writes, restart on the same file: every intent answered 201 is there and open (by
// GET and by the lookup of its devices). Then SIGKILL during a storm of accepts: every intent
// answered 200 is accepted and its request registered, and no intent is accepted without its
// request (the registration is in the same transaction).
func TestCrashKeepsAcknowledgedIntents(t *testing.T) {
	dir := t.TempDir()
	env := []string{"RELAY_PATH_TOKEN=tok", "RELAY_API_TOKEN=apitok", "RELAY_STORE=sqlite:" + filepath.Join(dir, "relay.db")}
	const n = 2000
	devices := func(i int) [][]map[string]string {
		return [][]map[string]string{
			{{"kind": "eid", "id": fmt.Sprintf("E%05d", i)}, {"kind": "iccid", "id": fmt.Sprintf("I%05d", i)}},
			{{"kind": "eid", "id": fmt.Sprintf("F%05d", i)}},
		}
	}
	hash := fmt.Sprintf("%064x", 42)

	p := start(t, env)
	written := storm(t, p, 16, n, int64(200+rand.IntN(600)), http.StatusCreated, func(c *http.Client, i int) (int, error) {
		code, _, err := apiSend(c, "PUT", fmt.Sprintf("%s/v1/intents/I-%d", p.api, i), "apitok",
			map[string]any{"account": "acme", "action": "serviceplan", "devices": devices(i), "body_sha256": hash})
		return code, err
	})
	t.Logf("killed after %d intents answered 201", len(written))

	p = start(t, env)
	var lookup []any
	var order []int
	for i := range written {
		lookup = append(lookup, devices(i)[0])
		order = append(order, i)
	}
	var recs struct {
		Devices []crashRecord `json:"devices"`
	}
	code, b, err := apiSend(http.DefaultClient, "POST", p.api+"/v1/devices/lookup", "apitok", map[string]any{"devices": lookup})
	if err != nil || code != 200 || json.Unmarshal(b, &recs) != nil || len(recs.Devices) != len(order) {
		t.Fatalf("lookup after the restart: %d %v %.200s", code, err, b)
	}
	for k, i := range order {
		var in crashIntent
		if code := apiGet(t, fmt.Sprintf("%s/v1/intents/I-%d", p.api, i), "apitok", &in); code != 200 || in.State != "open" {
			t.Fatalf("intent I-%d answered 201 before the kill: GET %d %+v", i, code, in)
		}
		if r := recs.Devices[k]; len(r.OpenIntents) != 1 || r.OpenIntents[0].IntentID != fmt.Sprintf("I-%d", i) {
			t.Fatalf("lookup of intent I-%d's device: %+v", i, r)
		}
	}

	// Accept every intent written, with request REQ-<i>; kill in the middle.
	var ids []int
	for i := range written {
		ids = append(ids, i)
	}
	slices.Sort(ids)
	accepted := storm(t, p, 16, len(ids), int64(len(ids)/4+rand.IntN(len(ids)/2)), http.StatusOK, func(c *http.Client, k int) (int, error) {
		code, _, err := apiSend(c, "PATCH", fmt.Sprintf("%s/v1/intents/I-%d", p.api, ids[k]), "apitok",
			map[string]any{"state": "accepted", "request_id": fmt.Sprintf("REQ-%d", ids[k])})
		return code, err
	})
	t.Logf("killed after %d accepts answered 200", len(accepted))

	p = start(t, env)
	nAccepted := 0
	for k, i := range ids {
		var in crashIntent
		if code := apiGet(t, fmt.Sprintf("%s/v1/intents/I-%d", p.api, i), "apitok", &in); code != 200 {
			t.Fatalf("intent I-%d: GET %d", i, code)
		}
		if accepted[k] && (in.State != "accepted" || in.RequestID != fmt.Sprintf("REQ-%d", i)) {
			t.Fatalf("intent I-%d was answered 200 (accepted) before the kill, is %+v after it", i, in)
		}
		var rq struct {
			State    string `json:"state"`
			Account  string `json:"account"`
			Action   string `json:"action"`
			Expected int    `json:"expected"`
		}
		apiGet(t, fmt.Sprintf("%s/v1/requests/REQ-%d", p.api, i), "apitok", &rq)
		switch in.State {
		case "accepted":
			nAccepted++
			if rq.State != "pending" || rq.Account != "acme" || rq.Action != "serviceplan" || rq.Expected != 2 {
				t.Fatalf("intent I-%d is accepted but its request is %+v", i, rq)
			}
		case "open":
			if rq.State != "unknown" {
				t.Fatalf("intent I-%d is open but its request is %+v", i, rq)
			}
		default:
			t.Fatalf("intent I-%d is %s", i, in.State)
		}
	}
	if nAccepted < len(accepted) {
		t.Fatalf("%d intents accepted after the restart, %d answered 200", nAccepted, len(accepted))
	}
	// The lookup shows an accepted intent's request, not the intent.
	some := -1
	for k, i := range ids {
		if accepted[k] {
			some = i
			break
		}
	}
	var rec struct {
		Devices []crashRecord `json:"devices"`
	}
	code, b, err = apiSend(http.DefaultClient, "POST", p.api+"/v1/devices/lookup", "apitok", map[string]any{"devices": []any{devices(some)[1]}})
	if err != nil || code != 200 || json.Unmarshal(b, &rec) != nil || len(rec.Devices) != 1 || len(rec.Devices[0].OpenIntents) != 0 ||
		len(rec.Devices[0].OpenRequests) != 1 || rec.Devices[0].OpenRequests[0].RequestID != fmt.Sprintf("REQ-%d", some) {
		t.Fatalf("lookup of an accepted intent's device: %d %v %s", code, err, b)
	}
}

// Help and version are questions answered (exit 0), at the top level and for each command.
func TestHelpAndVersionExitZero(t *testing.T) {
	env := func(string) string { return "" }
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}, {"serve", "-h"}, {"migrate", "-h"}, {"healthcheck", "-h"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb, env); code != 0 || out.Len()+errb.Len() == 0 {
			t.Errorf("%v: exit %d, no usage printed (%q %q)", args, code, out.String(), errb.String())
		}
	}
	for _, args := range [][]string{{"-version"}, {"--version"}, {"version"}} {
		var out bytes.Buffer
		if code := run(args, &out, io.Discard, env); code != 0 || out.String() != "thingspace-relay "+relay.Version+"\n" {
			t.Errorf("%v: exit %d, %q", args, code, out.String())
		}
	}
}

// TestForwardSurvivesSIGKILL: callbacks acknowledged while the forward target refuses them are
// delivered after the relay was killed (SIGKILL) and started again on the same database, with
// the Basic-auth credentials from a file, which never appear in the logs.
func TestForwardSurvivesSIGKILL(t *testing.T) {
	const n = 200
	var refusing atomic.Bool
	refusing.Store(true)
	var refused atomic.Int64
	var mu sync.Mutex
	received := map[string]int{}
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if u, p, _ := r.BasicAuth(); refusing.Load() || u != "platform" || p != "fwd-s3cret-pw" {
			refused.Add(1)
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		mu.Lock()
		received[r.Header.Get("Idempotency-Key")]++
		mu.Unlock()
	}))
	defer target.Close()
	dir := t.TempDir()
	authFile := filepath.Join(dir, "forward-auth")
	os.WriteFile(authFile, []byte("platform:fwd-s3cret-pw\n"), 0o600)
	env := []string{"RELAY_PATH_TOKEN=tok", "RELAY_API_TOKEN=apitok", "RELAY_STORE=sqlite:" + filepath.Join(dir, "relay.db"),
		"RELAY_FORWARD_TO=" + target.URL + "/cb", "RELAY_FORWARD_BASIC_AUTH_FILE=" + authFile,
		"RELAY_FORWARD_TIMEOUT=1s", "RELAY_FORWARD_MAX_BACKOFF=50ms"}
	p := start(t, env)
	acked := map[string]bool{}
	for i := range n {
		resp, err := http.Post(p.ingest+"/callbacks/v1/thingspace/tok", "application/json",
			strings.NewReader(callback(fmt.Sprintf("REQ-%d", i%7), i, 1)))
		if err != nil {
			t.Fatal(err)
		}
		var ans struct {
			Result string `json:"result"`
			Seq    int64  `json:"seq"`
		}
		json.NewDecoder(resp.Body).Decode(&ans)
		resp.Body.Close()
		if resp.StatusCode != 200 || ans.Result != "stored" {
			t.Fatalf("callback %d: %d %+v", i, resp.StatusCode, ans)
		}
		acked[fmt.Sprintf("REQ-%d/%d", i%7, ans.Seq)] = true
	}
	for i := 0; refused.Load() < n; i++ {
		if i == 600 {
			t.Fatalf("only %d refused attempts", refused.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.wait(t)
	logs := p.stderr.String()

	refusing.Store(false)
	p2 := start(t, env)
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(received)
	}
	for i := 0; count() < n; i++ {
		if i == 1200 {
			t.Fatalf("%d of %d acknowledged callbacks forwarded after the restart", count(), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	dups := 0
	for k, c := range received {
		if !acked[k] {
			t.Errorf("forwarded %s, never acknowledged", k)
		}
		dups += c - 1
	}
	mu.Unlock()
	p2.cmd.Process.Signal(syscall.SIGTERM)
	p2.wait(t)
	if strings.Contains(logs+p2.stderr.String(), "fwd-s3cret-pw") {
		t.Fatal("the forward password was logged")
	}
	t.Logf("acknowledged %d, refused attempts %d, forwarded %d distinct after SIGKILL and restart, %d duplicates", n, refused.Load(), count(), dups)
}

// TestServeTLSReloadsOnSIGHUP: a renewed certificate is served to new connections after SIGHUP,
// without a restart (internal/tlsreload tests that a broken renewal keeps the previous one).
func TestServeTLSReloadsOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSelfSignedSerial(t, certFile, keyFile, 1)
	p := start(t, []string{"RELAY_PATH_TOKEN=tok", "RELAY_API_TOKEN=apitok"},
		"-store", "sqlite:"+filepath.Join(dir, "r.db"), "-tls-cert", certFile, "-tls-key", keyFile)
	served := func(url string) int64 {
		// A new connection each time: open ones keep the certificate of their handshake.
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}}
		resp, err := client.Get(url + "/v1/info")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0].SerialNumber.Int64()
	}
	if s := served(p.api); s != 1 {
		t.Fatalf("serial %d before the renewal", s)
	}
	writeSelfSignedSerial(t, certFile, keyFile, 2)
	p.cmd.Process.Signal(syscall.SIGHUP)
	for i := 0; served(p.ingest) != 2 || served(p.api) != 2; i++ {
		if i == 200 {
			t.Fatalf("still serving the old certificate after SIGHUP\n%s", p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.wait(t); err != nil {
		t.Fatalf("relay exit: %v", err)
	}
	logs := p.stderr.String()
	if !strings.Contains(logs, "certificate reloaded") {
		t.Fatalf("no reload logged:\n%s", logs)
	}
}

// The forward settings: Basic auth without a target, or not user:password, is refused at start
// (without repeating the value); the secret given as a flag draws the _FILE warning.
func TestForwardOptions(t *testing.T) {
	env := func(string) string { return "" }
	o, err := parseOptions("serve", []string{"-path-token", "t", "-forward-to", "https://platform.example/cb", "-forward-basic-auth", "u:p4ss"}, io.Discard, env)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := buildConfig(o)
	if err != nil || cfg.Forward.URL != "https://platform.example/cb" || cfg.Forward.Username != "u" || cfg.Forward.Password != "p4ss" {
		t.Fatalf("%+v %v", cfg.Forward, err)
	}
	if !slices.ContainsFunc(o.warnings, func(w string) bool { return strings.Contains(w, "RELAY_FORWARD_BASIC_AUTH_FILE") }) {
		t.Fatalf("no warning for -forward-basic-auth on the command line: %q", o.warnings)
	}
	for _, args := range [][]string{{"-forward-basic-auth", "u:p4ss"}, {"-forward-to", "https://platform.example/cb", "-forward-basic-auth", "p4ss"}} {
		o, err := parseOptions("serve", append([]string{"-path-token", "t"}, args...), io.Discard, env)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := buildConfig(o); err == nil || strings.Contains(err.Error(), "p4ss") {
			t.Errorf("%v: %v", args, err)
		}
	}
}
