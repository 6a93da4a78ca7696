//go:build linux

// Package pgtest starts throwaway PostgreSQL servers for tests.
//
// Start returns a DSN to a fresh, empty database on a server shared by the whole test binary;
// NewServer starts a dedicated server that a test may stop and start again (fault injection).
// Servers listen on a random 127.0.0.1 port, keep fsync on (durability tests rely on it), and run
// as the "postgres" user when the tests run as root (initdb and postgres refuse root).
//
// Every server is a direct child of the test binary with a parent-death signal, so it stops even
// when the test binary is killed. Call Main from TestMain to also remove the data folders:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// When PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb and no initdb on PATH;
// PGTEST_BIN may name the bin folder) the tests calling Start or NewServer are skipped.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// StartTimeout bounds the wait for a server to accept connections.
const StartTimeout = 30 * time.Second

var (
	sharedOnce sync.Once
	shared     *Server
	sharedErr  error
	skipMsg    string

	mu      sync.Mutex
	servers []*Server // every server started, for Main's cleanup

	dbCounter atomic.Int64
)

// Main runs the tests, stops every server this package started and removes their folders, then
// exits with the tests' code. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	StopAll()
	os.Exit(code)
}

// StopAll stops every server started by this package and removes its folder.
func StopAll() {
	mu.Lock()
	all := servers
	servers = nil
	mu.Unlock()
	for _, s := range all {
		s.shutdown(syscall.SIGQUIT)
		os.RemoveAll(s.base)
	}
}

// Start returns the DSN of a fresh database on the test binary's shared server, starting the
// server on first use. It skips the test when PostgreSQL is not installed.
func Start(t testing.TB) string {
	t.Helper()
	sharedOnce.Do(func() {
		bin, msg := findBin()
		if bin == "" {
			skipMsg = msg
			return
		}
		shared, sharedErr = newServer(bin)
		if sharedErr == nil {
			shared.keepSpare()
		}
	})
	if skipMsg != "" {
		t.Skip(skipMsg)
	}
	if sharedErr != nil {
		t.Fatalf("pgtest: start shared PostgreSQL: %v", sharedErr)
	}
	return shared.NewDatabase(t)
}

// Server is one throwaway PostgreSQL server.
type Server struct {
	bin  string
	base string // folder holding data/, the socket and server.log
	port int
	cred *syscall.Credential

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the running postmaster exited

	spare chan string // a database made ahead (shared server only)
}

// NewServer starts a dedicated server, stopped and removed when the test ends. It skips the test
// when PostgreSQL is not installed.
func NewServer(t testing.TB) *Server {
	t.Helper()
	bin, msg := findBin()
	if bin == "" {
		t.Skip(msg)
	}
	s, err := newServer(bin)
	if err != nil {
		t.Fatalf("pgtest: start PostgreSQL: %v", err)
	}
	t.Cleanup(func() {
		s.shutdown(syscall.SIGQUIT)
		os.RemoveAll(s.base)
		mu.Lock()
		for i, x := range servers {
			if x == s {
				servers = append(servers[:i], servers[i+1:]...)
				break
			}
		}
		mu.Unlock()
	})
	return s
}

// Port is the server's TCP port on 127.0.0.1 (unchanged across Stop and Start).
func (s *Server) Port() int { return s.port }

// DSN returns the URL of a database on this server.
func (s *Server) DSN(database string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, database)
}

// NewDatabase creates a fresh database and returns its DSN.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	if s.spare != nil {
		select {
		case dsn := <-s.spare:
			if dsn != "" {
				return dsn
			}
		case <-time.After(StartTimeout):
		}
	}
	dsn, err := s.createDatabase()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return dsn
}

// createDatabase makes a new, empty database (CREATE DATABASE costs a few hundred milliseconds
// with fsync on, so the shared server keeps one made ahead of time).
func (s *Server) createDatabase() (string, error) {
	name := fmt.Sprintf("t%d_%d_%d", os.Getpid(), dbCounter.Add(1), time.Now().UnixNano()%1e6)
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return "", fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database: %w", err)
	}
	return s.DSN(name), nil
}

// keepSpare keeps one database ready in s.spare; it sends "" when creating one failed (the
// caller then creates its own and reports the error).
func (s *Server) keepSpare() {
	s.spare = make(chan string, 1)
	go func() {
		for {
			dsn, err := s.createDatabase()
			if err != nil {
				dsn = ""
			}
			s.spare <- dsn
		}
	}()
}

// Stop shuts the server down (fast shutdown: open connections are cut) and waits for it to exit.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if err := s.shutdown(syscall.SIGINT); err != nil {
		t.Fatalf("pgtest: stop: %v", err)
	}
}

// Kill crashes the server: SIGKILL to the postmaster and every backend at once. Start then
// runs crash recovery (WAL replay).
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	if err := s.shutdown(syscall.SIGKILL); err != nil {
		t.Fatalf("pgtest: kill: %v", err)
	}
}

// Start starts a stopped server again on the same port and data.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatalf("pgtest: start: %v", err)
	}
}

func findBin() (bin, skip string) {
	if d := os.Getenv("PGTEST_BIN"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, ""
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(matches, func(i, j int) bool { return pgVersion(matches[i]) > pgVersion(matches[j]) })
	if len(matches) > 0 {
		return filepath.Dir(matches[0]), ""
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), ""
	}
	return "", "PostgreSQL not installed: no /usr/lib/postgresql/*/bin/initdb and no initdb on PATH " +
		"(install the postgresql package, or set PGTEST_BIN to the folder holding initdb and postgres)"
}

func pgVersion(initdb string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return v
}

func newServer(bin string) (*Server, error) {
	s := &Server{bin: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs a postgres user to run the server as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	base, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	s.base = base
	if s.cred != nil {
		if err := os.Chown(base, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			os.RemoveAll(base)
			return nil, err
		}
	}
	if err := os.Chmod(base, 0o700); err != nil {
		os.RemoveAll(base)
		return nil, err
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", filepath.Join(base, "data"),
		"-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync")
	initdb.Dir = base
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGKILL}
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(base)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	mu.Lock()
	servers = append(servers, s)
	mu.Unlock()
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		s.port, err = freePort()
		if err != nil {
			return nil, err
		}
		if lastErr = s.start(); lastErr == nil {
			return s, nil
		}
	}
	return nil, lastErr
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs the postmaster as a direct child and waits until it accepts connections.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("already running")
	}
	logf, err := os.OpenFile(filepath.Join(s.base, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(s.bin, "postgres"), "-D", filepath.Join(s.base, "data"),
		"-p", strconv.Itoa(s.port), "-k", s.base,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=on", "-c", "synchronous_commit=on",
		"-c", "max_connections=300",
		"-c", "log_min_messages=warning")
	cmd.Dir = s.base
	cmd.Stdout = logf
	cmd.Stderr = logf
	// SIGQUIT on the parent's death: immediate shutdown even when the test binary is killed.
	// Its own process group, so that Kill can crash the postmaster and its backends at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGQUIT, Setpgid: true}
	started := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		// The parent-death signal fires when the thread that forked the child exits: keep this
		// goroutine, locked to its thread, alive for as long as the server runs.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			logf.Close()
			close(done)
			return
		}
		started <- nil
		cmd.Wait()
		logf.Close()
		close(done)
	}()
	if err := <-started; err != nil {
		return err
	}
	s.cmd, s.done = cmd, done

	deadline := time.Now().Add(StartTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, s.DSN("postgres"))
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		select {
		case <-done:
			s.cmd, s.done = nil, nil
			return fmt.Errorf("postgres exited during start: %s", s.logTail())
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Signal(syscall.SIGQUIT)
			<-done
			s.cmd, s.done = nil, nil
			return fmt.Errorf("postgres did not accept connections within %v: %v; %s", StartTimeout, err, s.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Server) shutdown(sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	if sig == syscall.SIGKILL {
		syscall.Kill(-s.cmd.Process.Pid, sig) // the whole group: postmaster and backends
	} else {
		s.cmd.Process.Signal(sig)
	}
	select {
	case <-s.done:
	case <-time.After(StartTimeout):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd, s.done = nil, nil
	if sig == syscall.SIGKILL {
		// Orphaned backends exit on their own once they notice the postmaster is gone; wait for
		// the shared memory to be released so that a new postmaster can start on this folder.
		s.waitOrphans()
	}
	return nil
}

// waitOrphans waits (bounded) until no process still has the data folder as its working folder.
func (s *Server) waitOrphans() {
	data := filepath.Join(s.base, "data")
	for i := 0; i < 200; i++ {
		if !anyProcessIn(data) {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func anyProcessIn(dir string) bool {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd")); err == nil && cwd == dir {
			return true
		}
	}
	return false
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.base, "server.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(bytes.TrimSpace(b))
}
