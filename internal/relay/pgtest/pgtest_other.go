//go:build !linux

package pgtest

import (
	"os"
	"testing"
)

const skipMsg = "pgtest: throwaway PostgreSQL servers are supported on Linux only"

// Main runs the tests and exits with their code.
func Main(m *testing.M) { os.Exit(m.Run()) }

// StopAll does nothing on this platform.
func StopAll() {}

// Start skips the test: throwaway servers need Linux.
func Start(t testing.TB) string {
	t.Helper()
	t.Skip(skipMsg)
	return ""
}

// Server is a throwaway PostgreSQL server (Linux only).
type Server struct{}

// NewServer skips the test: throwaway servers need Linux.
func NewServer(t testing.TB) *Server {
	t.Helper()
	t.Skip(skipMsg)
	return nil
}

func (s *Server) Port() int                       { return 0 }
func (s *Server) DSN(database string) string      { return "" }
func (s *Server) NewDatabase(t testing.TB) string { t.Skip(skipMsg); return "" }
func (s *Server) Stop(t testing.TB)               { t.Skip(skipMsg) }
func (s *Server) Kill(t testing.TB)               { t.Skip(skipMsg) }
func (s *Server) Start(t testing.TB)              { t.Skip(skipMsg) }
