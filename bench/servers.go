package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// How long a server may take to print its first line, and to stop after SIGTERM.
const (
	serverStartTimeout = 30 * time.Second
	serverStopTimeout  = 10 * time.Second
)

// server is a thingspace-sim or thingspace-relay process.
type server struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and been waited for
	log  string        // its stderr
}

// startServer starts bin in a process group of its own (a Ctrl-C reaches the harness only, which
// stops the server after Terraform), its stderr in dir/<name>.log, and returns it with the first
// line it prints on stdout, which both servers use to say where they listen.
func startServer(name, bin, dir string, env []string, args ...string) (*server, string, error) {
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, "", err
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stderr = logFile
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	ownProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("starting %s: %w", name, err)
	}
	s := &server{name: name, cmd: cmd, done: make(chan struct{}), log: logPath}
	first := make(chan string, 1)
	go func() {
		r := bufio.NewReader(out)
		line, _ := r.ReadString('\n')
		first <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, r) // keep the pipe drained until the process exits
		_ = cmd.Wait()
		close(s.done)
	}()
	select {
	case line := <-first:
		if line == "" {
			s.stop()
			return nil, "", fmt.Errorf("%s exited before it listened (see %s)", name, logPath)
		}
		return s, line, nil
	case <-time.After(serverStartTimeout):
		s.stop()
		return nil, "", fmt.Errorf("%s printed nothing within %s (see %s)", name, serverStartTimeout, logPath)
	}
}

// stop sends SIGTERM (both servers shut down gracefully), then SIGKILL after serverStopTimeout.
func (s *server) stop() {
	if s == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(serverStopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// alive reports whether the server is still running.
func (s *server) alive() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// simOptions are the simulator's flags that a scenario sets.
type simOptions struct {
	devices       int
	callbackDelay time.Duration
	bulkLimit     int
}

// servers are the simulator and the relay of one scenario, and what Terraform needs to reach
// them.
type servers struct {
	sim, relay  *server
	simURL      string // http://127.0.0.1:PORT
	relayAPI    string // the relay's API listener, the provider's relay_url
	apiToken    string
	ingestURL   string // the relay's public ingest URL with its path token, registered at ThingSpace
	callbackPwd string
}

var relayLine = regexp.MustCompile(`ingest on (\S+), api on (\S+), admin on (\S+)$`)

// startServers starts thingspace-sim and thingspace-relay (embedded SQLite in dir) on free
// loopback ports, the way scripts/demo.sh does, and waits until the relay is ready.
func startServers(ctx context.Context, b binaries, dir string, o simOptions) (*servers, error) {
	s := &servers{}
	ok := false
	defer func() {
		if !ok {
			s.stop()
		}
	}()
	env := cleanEnv()
	var line string
	var err error
	args := []string{"-addr", "127.0.0.1:0", "-devices", strconv.Itoa(o.devices),
		"-callback-delay", o.callbackDelay.String(), "-log-level", "warn"}
	if o.bulkLimit > 0 {
		args = append(args, "-bulk-limit", strconv.Itoa(o.bulkLimit))
	}
	if s.sim, line, err = startServer("thingspace-sim", b.sim, dir, env, args...); err != nil {
		return nil, err
	}
	var found bool
	if s.simURL, found = strings.CutPrefix(line, "thingspace-sim listening on "); !found {
		return nil, fmt.Errorf("thingspace-sim: unexpected first line %q", line)
	}

	// The secrets go to the relay in files (RELAY_*_FILE), as in scripts/demo.sh.
	pathToken, user := randomHex(16), "thingspace"
	s.callbackPwd, s.apiToken = randomHex(12), randomHex(24)
	secrets := filepath.Join(dir, "secrets")
	if err := os.Mkdir(secrets, 0o700); err != nil {
		return nil, err
	}
	for name, v := range map[string]string{"path-token": pathToken, "callback-credentials": user + ":" + s.callbackPwd, "api-token": s.apiToken} {
		if err := os.WriteFile(filepath.Join(secrets, name), []byte(v+"\n"), 0o600); err != nil {
			return nil, err
		}
	}
	env = append(env, "RELAY_PATH_TOKEN_FILE="+filepath.Join(secrets, "path-token"),
		"RELAY_CALLBACK_CREDENTIALS_FILE="+filepath.Join(secrets, "callback-credentials"),
		"RELAY_API_TOKEN_FILE="+filepath.Join(secrets, "api-token"))
	// Port 0 for the ingest listener too: the listener resource then warns that ThingSpace
	// documents other ports, which changes nothing against the simulator.
	if s.relay, line, err = startServer("thingspace-relay", b.relay, dir, env, "serve",
		"-ingest-addr", "127.0.0.1:0", "-api-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0",
		"-store", "sqlite:"+filepath.Join(dir, "relay.db"), "-log-level", "warn"); err != nil {
		return nil, err
	}
	m := relayLine.FindStringSubmatch(line)
	if m == nil {
		return nil, fmt.Errorf("thingspace-relay: unexpected first line %q", line)
	}
	s.ingestURL, s.relayAPI = m[1]+"/callbacks/v1/thingspace/"+pathToken, m[2]
	if err := waitReady(ctx, m[3]+"/readyz", s.relay); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// waitReady polls url until it answers 200, for at most serverStartTimeout.
func waitReady(ctx context.Context, url string, s *server) error {
	deadline := time.Now().Add(serverStartTimeout)
	for time.Now().Before(deadline) {
		if !s.alive() {
			return fmt.Errorf("%s exited before it was ready (see %s)", s.name, s.log)
		}
		if err := httpJSON(ctx, http.MethodGet, url, nil, nil); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s was not ready within %s (%s)", s.name, serverStartTimeout, url)
}

// stop stops the relay, then the simulator.
func (s *servers) stop() {
	if s == nil {
		return
	}
	s.relay.stop()
	s.sim.stop()
}

// check fails when a server has exited: a Terraform failure then says why.
func (s *servers) check() error {
	for _, p := range []*server{s.sim, s.relay} {
		if !p.alive() {
			return fmt.Errorf("%s exited unexpectedly (see %s)", p.name, p.log)
		}
	}
	return nil
}

// providerEnv is the provider's configuration, from the environment as in scripts/demo.sh.
func (s *servers) providerEnv() []string {
	return []string{
		"THINGSPACE_BASE_URL=" + s.simURL,
		"THINGSPACE_CLIENT_ID=sim-client", "THINGSPACE_CLIENT_SECRET=sim-secret",
		"THINGSPACE_USERNAME=sim-user", "THINGSPACE_PASSWORD=sim-pass",
		"THINGSPACE_ACCOUNT_NAME=0000123456-00001",
		"THINGSPACE_RELAY_URL=" + s.relayAPI, "THINGSPACE_RELAY_TOKEN=" + s.apiToken,
	}
}

// The simulator's admin API (internal/sim/admin.go), only the fields the harness reads.

type simDevice struct {
	EID   string `json:"eid"`
	ICCID string `json:"iccid"`
	IMEI  string `json:"imei"`
	State string `json:"state"`
}

type simPlan struct {
	Code string `json:"code"`
	Type string `json:"type"`
}

type simStats struct {
	Requests     map[string]int `json:"requests"`
	ActionCounts map[string]int `json:"actionCounts"`
	Actions      []simAction    `json:"actions"`
}

type simAction struct {
	RequestID   string            `json:"requestId"`
	Action      string            `json:"action"`
	ServicePlan string            `json:"servicePlan"`
	Devices     []simActionDevice `json:"devices"`
}

type simActionDevice struct {
	EID                string `json:"eid"`
	StateBefore        string `json:"stateBefore"`
	ProfileStateBefore string `json:"profileStateBefore"`
	PlanBefore         string `json:"planBefore"`
	OpenRequestBefore  bool   `json:"openRequestBefore"`
}

func (s *servers) devices(ctx context.Context) ([]simDevice, error) {
	var d []simDevice
	return d, httpJSON(ctx, http.MethodGet, s.simURL+"/sim/v1/devices", nil, &d)
}

func (s *servers) plans(ctx context.Context) ([]simPlan, error) {
	var p []simPlan
	return p, httpJSON(ctx, http.MethodGet, s.simURL+"/sim/v1/plans", nil, &p)
}

func (s *servers) stats(ctx context.Context) (simStats, error) {
	var st simStats
	return st, httpJSON(ctx, http.MethodGet, s.simURL+"/sim/v1/stats", nil, &st)
}

// setFaults replaces the simulator's faults (PUT /sim/v1/faults).
func (s *servers) setFaults(ctx context.Context, spec string) error {
	return httpJSON(ctx, http.MethodPut, s.simURL+"/sim/v1/faults", map[string]string{"faults": spec}, nil)
}

// httpClient is for the loopback servers only; a large stats answer (every action with its
// devices) still takes well under this.
var httpClient = &http.Client{Timeout: 60 * time.Second}

// httpJSON sends body (JSON, when not nil) and decodes a 2xx answer into out (when not nil).
func httpJSON(ctx context.Context, method, url string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, bytes.TrimSpace(b))
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	return hex.EncodeToString(b)
}

// cleanEnv is the harness's environment without what would change a measured run behind its
// back: the provider's THINGSPACE_* settings, the relay's RELAY_* ones, Terraform's
// TF_CLI_ARGS*, TF_CLI_CONFIG_FILE, TF_DATA_DIR, TF_WORKSPACE, TF_VAR_* and the test
// framework's TF_ACC*, and the wrapper's variables. TF_LOG stays: it is how to look into a run.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "THINGSPACE_"), strings.HasPrefix(k, "RELAY_"),
			strings.HasPrefix(k, "TF_CLI_"), strings.HasPrefix(k, "TF_VAR_"), strings.HasPrefix(k, "TF_ACC"),
			k == "TF_DATA_DIR", k == "TF_WORKSPACE", k == "TF_INPUT", k == "TF_IN_AUTOMATION", k == "CHECKPOINT_DISABLE":
			continue
		}
		out = append(out, kv)
	}
	return out
}

var errInterrupted = errors.New("interrupted")
