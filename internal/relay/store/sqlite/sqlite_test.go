package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store/sqlite"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store/storetest"
)

func open(t *testing.T) store.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, open)
}

// TestMigrationBackfill: a database of schema version 1 (before intents) is migrated in place
// and answers the device lookup for the callbacks it held.
func TestMigrationBackfill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "relay.db")
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	storetest.MigrationBackfill(t, s, func(t *testing.T, s store.Store) store.Store {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		db, err := sql.Open("sqlite", "file:"+path)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{
			`ALTER TABLE device_keys DROP COLUMN term_seq`,
			`ALTER TABLE device_keys DROP COLUMN term_at`,
			`DROP TABLE intents`,
			`DROP TABLE intent_keys`,
			`DROP TABLE outbox`,
			`DELETE FROM schema_migrations WHERE version > 1`,
		} {
			if _, err := db.Exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		db.Close()
		s2, err := sqlite.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s2.Close() })
		return s2
	})
}

// A data directory the relay's user cannot write (a container volume or host directory owned by
// another user) is named in the error, with the user, instead of SQLite's "unable to open
// database file".
func TestOpenUnwritableDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes any directory")
	}
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	_, err := sqlite.Open(context.Background(), filepath.Join(dir, "relay.db"))
	if err == nil || !strings.Contains(err.Error(), "not writable by this user") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("Open in a read-only directory: %v", err)
	}
}
