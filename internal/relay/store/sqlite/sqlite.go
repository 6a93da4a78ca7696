// Package sqlite is the relay's embedded store: one SQLite file (modernc.org/sqlite, pure Go) in
// WAL mode with synchronous=FULL, so a commit is on disk when Append returns.
//
// Writes go through one connection (SQLite has one writer anyway; serialising them in Go avoids
// busy waits), reads through a separate pool that WAL lets run beside the writer. Each request
// has a gap-free sequence: last_seq on the request row, incremented inside the writer
// transaction, so commit order equals sequence order.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store"
)

// Store implements store.Store on one SQLite file.
type Store struct {
	path string
	w    *sql.DB // the single writer connection
	r    *sql.DB // readers

	mu        sync.Mutex // serialises write transactions (the writer pool has one connection anyway)
	subs      subscribers
	ckpt      *sql.DB // the checkpointer's connection
	closeOnce sync.Once
	stopCkpt  chan struct{}
	ckptDone  chan struct{}
	prepared  map[string]*sql.Stmt // writer statements
	readStmts map[string]*sql.Stmt // reader statements
}

var _ store.Store = (*Store)(nil)

// Open opens (creating it if needed) the database at path and migrates its schema.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: empty path")
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("sqlite: %w", err)
		}
		// SQLite creates the database and its -wal and -shm files beside each other; a directory
		// the user cannot write (a volume owned by root, the relay not) otherwise surfaces as
		// "unable to open database file (14)".
		f, err := os.CreateTemp(dir, ".relay-write-check-*")
		if err != nil {
			return nil, fmt.Errorf("sqlite: the directory %s is not writable by this user (uid %d): %w", dir, os.Getuid(), err)
		}
		f.Close()
		os.Remove(f.Name())
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(OFF)")
	// No checkpoint inside a commit (it would stall the acknowledgements of the whole batch
	// while it copies pages and fsyncs the database): a background checkpointer on its own
	// connection runs them beside the writer.
	q.Add("_pragma", "wal_autocheckpoint(0)")
	q.Add("_pragma", "journal_size_limit(67108864)")
	wq := url.Values{}
	for k, v := range q {
		wq[k] = v
	}
	wq.Set("_txlock", "immediate")
	w, err := sql.Open("sqlite", "file:"+path+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	s := &Store{path: path, w: w}
	if err := s.Migrate(ctx); err != nil {
		w.Close()
		return nil, err
	}
	if err := s.prepare(ctx); err != nil {
		w.Close()
		return nil, err
	}
	rq := url.Values{}
	for k, v := range q {
		rq[k] = v
	}
	rq.Add("_pragma", "query_only(1)")
	r, err := sql.Open("sqlite", "file:"+path+"?"+rq.Encode())
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	s.r = r
	c, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	c.SetMaxOpenConns(1)
	s.ckpt = c
	s.stopCkpt = make(chan struct{})
	s.ckptDone = make(chan struct{})
	go s.checkpointer()
	s.readStmts = map[string]*sql.Stmt{}
	for _, q := range readQueries {
		st, err := r.PrepareContext(ctx, q)
		if err != nil {
			r.Close()
			w.Close()
			return nil, fmt.Errorf("sqlite: prepare: %w", err)
		}
		s.readStmts[q] = st
	}
	return s, nil
}

// migrations are applied in order; schema_migrations records each version applied.
var migrations = []string{
	1: `
CREATE TABLE requests (
  request_id     TEXT PRIMARY KEY,
  account        TEXT NOT NULL DEFAULT '',
  action         TEXT NOT NULL DEFAULT '',
  registered     INTEGER NOT NULL DEFAULT 0,
  expected       INTEGER NOT NULL DEFAULT 0,
  terminal_count INTEGER NOT NULL DEFAULT 0,
  any_terminal   INTEGER NOT NULL DEFAULT 0,
  last_seq       INTEGER NOT NULL DEFAULT 0,
  state          TEXT NOT NULL DEFAULT 'pending',
  created_at     INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL
);
CREATE TABLE callbacks (
  request_id       TEXT NOT NULL,
  seq              INTEGER NOT NULL,
  content_hash     TEXT NOT NULL,
  account          TEXT NOT NULL DEFAULT '',
  status           TEXT NOT NULL,
  terminal         INTEGER NOT NULL,
  devices          TEXT NOT NULL,
  body             BLOB NOT NULL,
  received_at      INTEGER NOT NULL,
  last_received_at INTEGER NOT NULL,
  deliveries       INTEGER NOT NULL DEFAULT 1,
  PRIMARY KEY (request_id, seq),
  UNIQUE (request_id, content_hash)
) WITHOUT ROWID;
CREATE TABLE devices (
  request_id TEXT NOT NULL,
  idx        INTEGER NOT NULL,
  ids        TEXT NOT NULL,
  status     TEXT NOT NULL DEFAULT 'pending',
  terminal   INTEGER NOT NULL DEFAULT 0,
  status_seq INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (request_id, idx)
) WITHOUT ROWID;
-- Every identifier of every callback and of every registered device. dev_idx is the registered
-- device it names (NULL when only callbacks carried it). No secondary index: every index is one
-- more random page written per callback; the purge finds a request's keys through its callbacks
-- and devices, and scans requests for the cutoff (it runs every few minutes, not per callback).
CREATE TABLE device_keys (
  kind       TEXT NOT NULL,
  id         TEXT NOT NULL,
  request_id TEXT NOT NULL,
  dev_idx    INTEGER,
  PRIMARY KEY (kind, id, request_id)
) WITHOUT ROWID;
CREATE TABLE quarantine (
  id           INTEGER PRIMARY KEY,
  received_at  INTEGER NOT NULL,
  account      TEXT NOT NULL DEFAULT '',
  reason       TEXT NOT NULL,
  content_hash TEXT NOT NULL DEFAULT '',
  body         BLOB
);
CREATE INDEX quarantine_received_at ON quarantine (received_at);
CREATE TABLE purged (
  request_id TEXT PRIMARY KEY,
  purged_at  INTEGER NOT NULL
);
`,
	2: `
-- The newest terminal callback (by received_at, then seq) of the request that carried the
-- identifier: what the device lookup's "latest" reads, kept on the row the callback writes
-- anyway. 0: no terminal callback carried it.
ALTER TABLE device_keys ADD COLUMN term_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE device_keys ADD COLUMN term_at INTEGER NOT NULL DEFAULT 0;
UPDATE device_keys SET term_seq = x.seq, term_at = x.received_at FROM (
  SELECT request_id, kind, id, seq, received_at FROM (
    SELECT c.request_id, json_extract(j.value, '$.kind') AS kind, json_extract(j.value, '$.id') AS id,
      c.seq, c.received_at, row_number() OVER (
        PARTITION BY c.request_id, json_extract(j.value, '$.kind'), json_extract(j.value, '$.id')
        ORDER BY c.received_at DESC, c.seq DESC) AS rn
    FROM callbacks c, json_each(c.devices) j WHERE c.terminal = 1)
  WHERE rn = 1) AS x
WHERE device_keys.kind = x.kind AND device_keys.id = x.id AND device_keys.request_id = x.request_id;
-- Write-ahead intents. devices is the JSON list of devices, each a list of {kind, id}.
CREATE TABLE intents (
  intent_id   TEXT PRIMARY KEY,
  account     TEXT NOT NULL,
  action      TEXT NOT NULL,
  devices     TEXT NOT NULL,
  body_sha256 TEXT NOT NULL,
  attempt     INTEGER NOT NULL,
  supersedes  TEXT NOT NULL DEFAULT '',
  state       TEXT NOT NULL,
  request_id  TEXT NOT NULL DEFAULT '',
  reason      TEXT NOT NULL DEFAULT '',
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
);
CREATE INDEX intents_updated_at ON intents (updated_at);
-- The identifiers of OPEN intents only (idx: the device's position in the intent): rows are
-- removed when an intent leaves open, so the index the lookup reads does not grow with history.
CREATE TABLE intent_keys (
  kind      TEXT NOT NULL,
  id        TEXT NOT NULL,
  intent_id TEXT NOT NULL,
  idx       INTEGER NOT NULL,
  PRIMARY KEY (kind, id, intent_id, idx)
) WITHOUT ROWID;
`,
	3: `
-- The forward outbox (see store.Outbox). AUTOINCREMENT: an id is never reused, so a late
-- ForwardRetry of a deleted entry cannot touch a newer one. next_at 0: due at once.
CREATE TABLE outbox (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  request_id TEXT NOT NULL,
  seq        INTEGER NOT NULL,
  account    TEXT NOT NULL,
  body       BLOB NOT NULL,
  queued_at  INTEGER NOT NULL,
  next_at    INTEGER NOT NULL DEFAULT 0,
  attempts   INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX outbox_next_at ON outbox (next_at);
`,
}

// Migrate brings the schema to the current version.
func (s *Store) Migrate(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	for v := 1; v < len(migrations); v++ {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("sqlite: migrate: %w", err)
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, v).Scan(&n); err != nil {
			tx.Rollback()
			return fmt.Errorf("sqlite: migrate: %w", err)
		}
		if n > 0 {
			tx.Rollback()
			continue
		}
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("sqlite: migration %d: %w", v, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, v, time.Now().UnixNano()); err != nil {
			tx.Rollback()
			return fmt.Errorf("sqlite: migration %d: %w", v, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("sqlite: migration %d: %w", v, err)
		}
	}
	return nil
}

// checkpointer copies the WAL into the database file every half second, beside the writer
// (PASSIVE: it never blocks the writer nor readers). The WAL restarts from its beginning once a
// checkpoint has caught up, so it stays small.
func (s *Store) checkpointer() {
	defer close(s.ckptDone)
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.stopCkpt:
			return
		case <-t.C:
			_, _ = s.ckpt.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
		}
	}
}

// Close checkpoints the WAL and closes the database.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stopCkpt)
		<-s.ckptDone
		s.ckpt.Close()
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subs.closeAll()
	var errs []error
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	_, _ = s.w.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	errs = append(errs, s.w.Close())
	return errors.Join(errs...)
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.r.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// quiet drops ctx's cancellation after checking it: with a cancellable context the driver starts
// a watcher goroutine per statement, which costs more than the short statements themselves.
// SQLite's busy_timeout bounds every wait for a lock.
func quiet(ctx context.Context) (context.Context, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return context.WithoutCancel(ctx), nil
}

// Append stores a batch of callbacks in one transaction.
func (s *Store) Append(ctx context.Context, cbs []store.Callback) ([]store.AppendResult, error) {
	ctx, err := quiet(ctx)
	if err != nil {
		return nil, err
	}
	if len(cbs) == 0 {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: append: %w", err)
	}
	defer tx.Rollback()
	res := make([]store.AppendResult, len(cbs))
	changed := make([]string, 0, 1)
	w := &wtx{ctx: ctx, tx: tx, s: s, bound: map[string]*sql.Stmt{}}
	for i := range cbs {
		r, err := appendOne(w, &cbs[i])
		if err != nil {
			return nil, fmt.Errorf("sqlite: append: %w", err)
		}
		res[i] = r
		if !r.Duplicate && !slices.Contains(changed, cbs[i].RequestID) {
			changed = append(changed, cbs[i].RequestID)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlite: append commit: %w", err)
	}
	for _, id := range changed {
		s.subs.send(id)
	}
	return res, nil
}

// Statements of the append path, prepared once on the writer connection.
const (
	qDuplicate = `UPDATE callbacks SET deliveries = deliveries + 1, last_received_at = ?
		WHERE request_id = ? AND content_hash = ? RETURNING seq`
	qUpsertRequest = `INSERT INTO requests (request_id, account, last_seq, any_terminal, state, created_at, updated_at)
		VALUES (?1, ?2, 1, ?3, CASE WHEN ?3 = 1 THEN 'partial' ELSE 'pending' END, ?4, ?4)
		ON CONFLICT (request_id) DO UPDATE SET last_seq = last_seq + 1, updated_at = max(updated_at, ?4),
		  any_terminal = max(any_terminal, ?3),
		  state = CASE WHEN registered = 0 AND ?3 = 1 THEN 'partial' ELSE state END
		RETURNING last_seq, expected, registered`
	qUnpurge        = `DELETE FROM purged WHERE request_id = ?`
	qInsertCallback = `INSERT INTO callbacks (request_id, seq, content_hash, account, status, terminal, devices, body, received_at, last_received_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qLookupDevice   = `SELECT dev_idx FROM device_keys WHERE kind = ? AND id = ? AND request_id = ? AND dev_idx IS NOT NULL`
	qAllDevices     = `SELECT idx FROM devices WHERE request_id = ?`
	qDeviceTerminal = `UPDATE devices SET status = ?, terminal = 1, status_seq = ? WHERE request_id = ? AND idx = ? AND terminal = 0`
	qDeviceLastTerm = `UPDATE devices SET status = ?, status_seq = ? WHERE request_id = ? AND idx = ?`
	qDeviceProgress = `UPDATE devices SET status = ?, status_seq = ? WHERE request_id = ? AND idx = ? AND terminal = 0`
	qInsertOutbox   = `INSERT INTO outbox (request_id, seq, account, body, queued_at) VALUES (?, ?, ?, ?, ?)`
	qRequestCount   = `UPDATE requests SET terminal_count = terminal_count + ?1,
		state = CASE WHEN terminal_count + ?1 >= ?2 THEN 'terminal' WHEN terminal_count + ?1 > 0 THEN 'partial' ELSE 'pending' END
		WHERE request_id = ?3`
)

// qInsertKeys[n-1] inserts n device keys.
var qInsertKeys = func() []string {
	var out []string
	for n := 1; n <= 8; n++ {
		out = append(out, `INSERT OR IGNORE INTO device_keys (kind, id, request_id) VALUES `+
			strings.TrimSuffix(strings.Repeat("(?, ?, ?), ", n), ", "))
	}
	return out
}()

// qTerminalKeys[n-1] inserts n device keys of a terminal callback, or records the callback on
// existing rows where it is newer (by received_at, then seq) than the one recorded.
var qTerminalKeys = func() []string {
	var out []string
	for n := 1; n <= 8; n++ {
		out = append(out, `INSERT INTO device_keys (kind, id, request_id, term_seq, term_at) VALUES `+
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?), ", n), ", ")+`
			ON CONFLICT (kind, id, request_id) DO UPDATE SET term_seq = excluded.term_seq, term_at = excluded.term_at
			WHERE excluded.term_at > device_keys.term_at
			   OR (excluded.term_at = device_keys.term_at AND excluded.term_seq > device_keys.term_seq)`)
	}
	return out
}()

var appendQueries = append(append([]string{qDevices, qDuplicate, qUpsertRequest, qUnpurge, qInsertCallback, qLookupDevice,
	qAllDevices, qDeviceTerminal, qDeviceLastTerm, qDeviceProgress, qRequestCount, qInsertOutbox}, qInsertKeys...), qTerminalKeys...)

// wtx is a write transaction with the prepared statements bound to it.
type wtx struct {
	ctx   context.Context
	tx    *sql.Tx
	s     *Store
	bound map[string]*sql.Stmt
}

func (w *wtx) stmt(q string) *sql.Stmt {
	if st, ok := w.bound[q]; ok {
		return st
	}
	st := w.tx.StmtContext(w.ctx, w.s.prepared[q])
	w.bound[q] = st
	return st
}

func (w *wtx) exec(q string, args ...any) (sql.Result, error) {
	return w.stmt(q).ExecContext(w.ctx, args...)
}

func (w *wtx) queryRow(q string, args ...any) *sql.Row {
	return w.stmt(q).QueryRowContext(w.ctx, args...)
}

func (w *wtx) query(q string, args ...any) (*sql.Rows, error) {
	return w.stmt(q).QueryContext(w.ctx, args...)
}

func (s *Store) prepare(ctx context.Context) error {
	s.prepared = map[string]*sql.Stmt{}
	for _, q := range appendQueries {
		st, err := s.w.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("sqlite: prepare: %w", err)
		}
		s.prepared[q] = st
	}
	return nil
}

func appendOne(w *wtx, cb *store.Callback) (store.AppendResult, error) {
	if cb.RequestID == "" {
		return store.AppendResult{}, errors.New("callback without request id")
	}
	now := cb.ReceivedAt
	if now.IsZero() {
		now = time.Now()
	}
	ts := now.UnixNano()
	var seq int64
	err := w.queryRow(qDuplicate, ts, cb.RequestID, cb.ContentHash).Scan(&seq)
	switch {
	case err == nil:
		return store.AppendResult{Seq: seq, Duplicate: true}, nil
	case !errors.Is(err, sql.ErrNoRows):
		return store.AppendResult{}, err
	}
	term := 0
	if cb.Terminal {
		term = 1
	}
	var expected, registered int
	if err := w.queryRow(qUpsertRequest, cb.RequestID, cb.Account, term, ts).Scan(&seq, &expected, &registered); err != nil {
		return store.AppendResult{}, err
	}
	if seq == 1 {
		if _, err := w.exec(qUnpurge, cb.RequestID); err != nil {
			return store.AppendResult{}, err
		}
	}
	keys := store.NormalizeKeys(cb.Devices)
	if _, err := w.exec(qInsertCallback, cb.RequestID, seq, cb.ContentHash, cb.Account, cb.Status, term,
		store.KeysJSON(keys), cb.Body, ts, ts); err != nil {
		return store.AppendResult{}, err
	}
	if cb.Forward {
		body := cb.Body
		if body == nil {
			body = []byte{}
		}
		if _, err := w.exec(qInsertOutbox, cb.RequestID, seq, cb.Account, body, ts); err != nil {
			return store.AppendResult{}, err
		}
	}
	// The identifiers, up to len(qInsertKeys) per statement (a profile callback carries
	// eid, iccid, imei and mdn, twice).
	for rest := keys; len(rest) > 0; {
		n := min(len(rest), len(qInsertKeys))
		var err error
		if cb.Terminal {
			args := make([]any, 0, 5*n)
			for _, k := range rest[:n] {
				args = append(args, k.Kind, k.ID, cb.RequestID, seq, ts)
			}
			_, err = w.exec(qTerminalKeys[n-1], args...)
		} else {
			args := make([]any, 0, 3*n)
			for _, k := range rest[:n] {
				args = append(args, k.Kind, k.ID, cb.RequestID)
			}
			_, err = w.exec(qInsertKeys[n-1], args...)
		}
		if err != nil {
			return store.AppendResult{}, err
		}
		rest = rest[n:]
	}
	if registered == 1 {
		if err := applyToDevices(w, cb.RequestID, seq, cb.Status, cb.Terminal, keys, expected); err != nil {
			return store.AppendResult{}, err
		}
	}
	return store.AppendResult{Seq: seq}, nil
}

// applyToDevices updates the registered devices a new callback names (every device when it names
// none) and the request's terminal count and state.
func applyToDevices(w *wtx, requestID string, seq int64, status string, terminal bool, keys []store.DeviceKey, expected int) error {
	var idxs []int64
	if len(keys) == 0 {
		rows, err := w.query(qAllDevices, requestID)
		if err != nil {
			return err
		}
		for rows.Next() {
			var i int64
			if err := rows.Scan(&i); err != nil {
				rows.Close()
				return err
			}
			idxs = append(idxs, i)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	} else {
		for _, k := range keys {
			var i int64
			err := w.queryRow(qLookupDevice, k.Kind, k.ID, requestID).Scan(&i)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return err
			}
			if !slices.Contains(idxs, i) {
				idxs = append(idxs, i)
			}
		}
	}
	newly := int64(0)
	for _, i := range idxs {
		if terminal {
			r, err := w.exec(qDeviceTerminal, status, seq, requestID, i)
			if err != nil {
				return err
			}
			n, _ := r.RowsAffected()
			if n == 0 {
				// Already terminal: the last terminal callback by sequence wins.
				if _, err := w.exec(qDeviceLastTerm, status, seq, requestID, i); err != nil {
					return err
				}
			}
			newly += n
		} else if _, err := w.exec(qDeviceProgress, status, seq, requestID, i); err != nil {
			// Progress never downgrades a terminal device.
			return err
		}
	}
	if newly > 0 {
		_, err := w.exec(qRequestCount, newly, expected, requestID)
		return err
	}
	return nil
}

// MaxQuarantined caps the quarantine table (older bodies are dropped first).
const MaxQuarantined = 10000

// Quarantine stores a body that authenticated but is not a callback.
func (s *Store) Quarantine(ctx context.Context, q store.Quarantined) error {
	ctx, err := quiet(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := q.ReceivedAt
	if ts.IsZero() {
		ts = time.Now()
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO quarantine (received_at, account, reason, content_hash, body) VALUES (?, ?, ?, ?, ?)`,
		ts.UnixNano(), q.Account, q.Reason, q.ContentHash, q.Body)
	if err != nil {
		return fmt.Errorf("sqlite: quarantine: %w", err)
	}
	// Keep the newest MaxQuarantined bodies: whoever holds the path token must not be able to
	// fill the disk with bodies that are not callbacks.
	if id, err := res.LastInsertId(); err == nil && id > MaxQuarantined {
		if _, err := s.w.ExecContext(ctx, `DELETE FROM quarantine WHERE id <= ?`, id-MaxQuarantined); err != nil {
			return fmt.Errorf("sqlite: quarantine: %w", err)
		}
	}
	return nil
}

// Register records an accepted action and re-derives device states from callbacks that arrived
// before it.
func (s *Store) Register(ctx context.Context, reg store.Registration) error {
	ctx, err := quiet(ctx)
	if err != nil {
		return err
	}
	if reg.RequestID == "" {
		return errors.New("sqlite: register: empty request id")
	}
	devs := store.NormalizeEach(reg.Devices)
	now := reg.CreatedAt
	if now.IsZero() {
		now = time.Now()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: register: %w", err)
	}
	defer tx.Rollback()
	if err := s.registerTx(ctx, tx, reg, devs, now.UnixNano()); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: register: %w", err)
	}
	// Waiters re-read the state: a registration can make a request terminal.
	s.subs.send(reg.RequestID)
	return nil
}

// registerTx is Register inside the caller's write transaction: devs are reg.Devices
// normalised, ts the registration time. The caller commits and sends the change.
func (s *Store) registerTx(ctx context.Context, tx *sql.Tx, reg store.Registration, devs [][]store.DeviceKey, ts int64) error {
	var registered int
	var account, action string
	err := tx.QueryRowContext(ctx, `SELECT registered, account, action FROM requests WHERE request_id = ?`, reg.RequestID).Scan(&registered, &account, &action)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlite: register: %w", err)
	}
	if registered == 1 {
		existing, err := loadDevices(ctx, tx.StmtContext(ctx, s.prepared[qDevices]), reg.RequestID)
		if err != nil {
			return fmt.Errorf("sqlite: register: %w", err)
		}
		ids := make([][]store.DeviceKey, len(existing))
		for i, d := range existing {
			ids[i] = d.IDs
		}
		if account == reg.Account && action == reg.Action && store.SameDevices(ids, devs) {
			return nil
		}
		return store.ErrConflict
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO requests (request_id, account, action, registered, expected, state, created_at, updated_at)
		VALUES (?1, ?2, ?3, 1, ?4, 'pending', ?5, ?5)
		ON CONFLICT (request_id) DO UPDATE SET account = ?2, action = ?3, registered = 1, expected = ?4, updated_at = max(updated_at, ?5)`,
		reg.RequestID, reg.Account, reg.Action, len(devs), ts); err != nil {
		return fmt.Errorf("sqlite: register: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM purged WHERE request_id = ?`, reg.RequestID); err != nil {
		return fmt.Errorf("sqlite: register: %w", err)
	}
	// Device states, derived from the callbacks already stored (in sequence order).
	states := store.NewRegistered(devs)
	rows, err := tx.QueryContext(ctx, `SELECT seq, status, terminal, devices FROM callbacks WHERE request_id = ? ORDER BY seq`, reg.RequestID)
	if err != nil {
		return fmt.Errorf("sqlite: register: %w", err)
	}
	for rows.Next() {
		if err := states.FoldRow(rows.Scan); err != nil {
			rows.Close()
			return fmt.Errorf("sqlite: register: %w", err)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: register: %w", err)
	}
	for i, st := range states.Devices {
		if _, err := tx.ExecContext(ctx, `INSERT INTO devices (request_id, idx, ids, status, terminal, status_seq) VALUES (?, ?, ?, ?, ?, ?)`,
			reg.RequestID, i, store.KeysJSON(devs[i]), st.Status, st.Terminal, st.Seq); err != nil {
			return fmt.Errorf("sqlite: register: %w", err)
		}
		for _, k := range devs[i] {
			if _, err := tx.ExecContext(ctx, `INSERT INTO device_keys (kind, id, request_id, dev_idx) VALUES (?, ?, ?, ?)
				ON CONFLICT (kind, id, request_id) DO UPDATE SET dev_idx = excluded.dev_idx`, k.Kind, k.ID, reg.RequestID, i); err != nil {
				return fmt.Errorf("sqlite: register: %w", err)
			}
		}
	}
	// Only registered devices count (anyTerminal false): a registration without devices, which
	// the API refuses, stays pending here, where PostgreSQL makes it partial after a terminal
	// callback.
	terminalCount := states.TerminalCount()
	if _, err := tx.ExecContext(ctx, `UPDATE requests SET terminal_count = ?, state = ? WHERE request_id = ?`,
		terminalCount, store.RequestState(len(devs), terminalCount, false), reg.RequestID); err != nil {
		return fmt.Errorf("sqlite: register: %w", err)
	}
	return nil
}

func loadDevices(ctx context.Context, st *sql.Stmt, requestID string) ([]store.DeviceState, error) {
	rows, err := st.QueryContext(ctx, requestID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []store.DeviceState{}
	for rows.Next() {
		var d store.DeviceState
		var ids string
		if err := rows.Scan(&ids, &d.Status, &d.Terminal); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(ids), &d.IDs); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Read statements, prepared on the reader pool.
const (
	qRequest = `SELECT account, action, state, expected, terminal_count, last_seq, created_at, updated_at
		FROM requests WHERE request_id = ?`
	qPurged    = `SELECT count(*) FROM purged WHERE request_id = ?`
	qDevices   = `SELECT ids, status, terminal FROM devices WHERE request_id = ? ORDER BY idx`
	qCallbacks = `SELECT seq, account, received_at, status, terminal, content_hash, devices, body
		FROM callbacks WHERE request_id = ? AND seq > ? ORDER BY seq LIMIT ?`
)

var readQueries = []string{qRequest, qPurged, qDevices, qCallbacks, qLookupKeys, qLookupRequests, qLookupIntentKeys, qLookupIntents, qLookupCallbacks}

// Request returns a request's summary.
func (s *Store) Request(ctx context.Context, requestID string, accounts []string) (*store.Request, error) {
	return s.request(ctx, requestID, accounts, true)
}

// RequestSummary is Request without the devices: what a long-poll needs (state, last seq,
// account), at the cost of one indexed row read even for a request of 10,000 devices. The relay
// uses it when a store has it (it is not part of store.Store).
func (s *Store) RequestSummary(ctx context.Context, requestID string, accounts []string) (*store.Request, error) {
	return s.request(ctx, requestID, accounts, false)
}

func (s *Store) request(ctx context.Context, requestID string, accounts []string, devices bool) (*store.Request, error) {
	ctx, err := quiet(ctx)
	if err != nil {
		return nil, err
	}
	r := &store.Request{RequestID: requestID}
	var created, updated int64
	err = s.readStmts[qRequest].QueryRowContext(ctx, requestID).Scan(&r.Account, &r.Action, &r.State, &r.Expected, &r.TerminalCount, &r.LastSeq, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		var n int
		if err := s.readStmts[qPurged].QueryRowContext(ctx, requestID).Scan(&n); err != nil {
			return nil, fmt.Errorf("sqlite: request: %w", err)
		}
		if n > 0 {
			return nil, store.ErrGone
		}
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: request: %w", err)
	}
	if !store.Allowed(r.Account, accounts) {
		return nil, store.ErrNotFound
	}
	r.CreatedAt, r.UpdatedAt = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	if r.Expected > 0 && devices {
		if r.Devices, err = loadDevices(ctx, s.readStmts[qDevices], requestID); err != nil {
			return nil, fmt.Errorf("sqlite: request: %w", err)
		}
	} else {
		r.Devices = []store.DeviceState{}
	}
	return r, nil
}

// Callbacks returns up to limit callbacks with Seq > after, in Seq order.
func (s *Store) Callbacks(ctx context.Context, requestID string, after int64, limit int) ([]store.Callback, error) {
	ctx, err := quiet(ctx)
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 1000
	}
	rows, err := s.readStmts[qCallbacks].QueryContext(ctx, requestID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: callbacks: %w", err)
	}
	defer rows.Close()
	var out []store.Callback
	for rows.Next() {
		c := store.Callback{RequestID: requestID}
		var ts int64
		var dj string
		if err := rows.Scan(&c.Seq, &c.Account, &ts, &c.Status, &c.Terminal, &c.ContentHash, &dj, &c.Body); err != nil {
			return nil, fmt.Errorf("sqlite: callbacks: %w", err)
		}
		c.ReceivedAt = time.Unix(0, ts).UTC()
		_ = json.Unmarshal([]byte(dj), &c.Devices)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: callbacks: %w", err)
	}
	return out, nil
}

// DeviceRequests lists the requests that registered or received a callback for a device
// identifier, newest first.
func (s *Store) DeviceRequests(ctx context.Context, key store.DeviceKey, openOnly bool, accounts []string) ([]store.RequestRef, error) {
	ctx, err := quiet(ctx)
	if err != nil {
		return nil, err
	}
	key = store.NormalizeKey(key)
	rows, err := s.r.QueryContext(ctx, `SELECT r.request_id, r.account, r.action, r.state, r.created_at FROM device_keys k
		JOIN requests r ON r.request_id = k.request_id
		WHERE k.kind = ? AND k.id = ? AND (? = 0 OR r.state != 'terminal')
		ORDER BY r.created_at DESC, r.request_id`, key.Kind, key.ID, openOnly)
	if err != nil {
		return nil, fmt.Errorf("sqlite: device requests: %w", err)
	}
	defer rows.Close()
	out := []store.RequestRef{}
	for rows.Next() {
		var r store.RequestRef
		var created int64
		if err := rows.Scan(&r.RequestID, &r.Account, &r.Action, &r.State, &created); err != nil {
			return nil, fmt.Errorf("sqlite: device requests: %w", err)
		}
		r.CreatedAt = time.Unix(0, created).UTC()
		if store.Allowed(r.Account, accounts) {
			out = append(out, r)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: device requests: %w", err)
	}
	return out, nil
}

// Purge deletes requests last updated before the cutoff (with their callbacks, devices and
// keys) and quarantined bodies received before it, remembering the purged request ids.
func (s *Store) Purge(ctx context.Context, before time.Time) (int, error) {
	ctx, err := quiet(ctx)
	if err != nil {
		return 0, err
	}
	cut := before.UnixNano()
	total := 0
	for {
		n, err := s.purgeBatch(ctx, cut, 1000)
		total += n
		if err != nil {
			return total, err
		}
		if n < 1000 {
			break
		}
	}
	if err := s.purgeIntents(ctx, cut); err != nil {
		return total, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.w.ExecContext(ctx, `DELETE FROM quarantine WHERE received_at < ?`, cut); err != nil {
		return total, fmt.Errorf("sqlite: purge: %w", err)
	}
	return total, nil
}

func (s *Store) purgeBatch(ctx context.Context, cut int64, batch int) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("sqlite: purge: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT request_id FROM requests WHERE updated_at < ? LIMIT ?`, cut, batch)
	if err != nil {
		return 0, fmt.Errorf("sqlite: purge: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("sqlite: purge: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("sqlite: purge: %w", err)
	}
	now := time.Now().UnixNano()
	for _, id := range ids {
		// The request's identifiers, from its callbacks and registered devices.
		keys := map[store.DeviceKey]bool{}
		for _, q := range []string{`SELECT devices FROM callbacks WHERE request_id = ?`, `SELECT ids FROM devices WHERE request_id = ?`} {
			rows, err := tx.QueryContext(ctx, q, id)
			if err != nil {
				return 0, fmt.Errorf("sqlite: purge: %w", err)
			}
			for rows.Next() {
				var j string
				if err := rows.Scan(&j); err != nil {
					rows.Close()
					return 0, fmt.Errorf("sqlite: purge: %w", err)
				}
				var ks []store.DeviceKey
				_ = json.Unmarshal([]byte(j), &ks)
				for _, k := range ks {
					keys[k] = true
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return 0, fmt.Errorf("sqlite: purge: %w", err)
			}
		}
		for k := range keys {
			if _, err := tx.ExecContext(ctx, `DELETE FROM device_keys WHERE kind = ? AND id = ? AND request_id = ?`, k.Kind, k.ID, id); err != nil {
				return 0, fmt.Errorf("sqlite: purge: %w", err)
			}
		}
		for _, q := range []string{
			`DELETE FROM callbacks WHERE request_id = ?1`,
			`DELETE FROM devices WHERE request_id = ?1`,
			`DELETE FROM requests WHERE request_id = ?1`,
			`INSERT INTO purged (request_id, purged_at) VALUES (?1, ?2) ON CONFLICT (request_id) DO UPDATE SET purged_at = ?2`,
		} {
			if _, err := tx.ExecContext(ctx, q, id, now); err != nil {
				return 0, fmt.Errorf("sqlite: purge: %w", err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("sqlite: purge: %w", err)
	}
	for _, id := range ids {
		s.subs.send(id) // waiters on a purged request answer 410
	}
	return len(ids), nil
}

// Changes delivers the ids of requests that received callbacks (or a registration) in this
// process. A slow consumer loses hints, never blocks writers.
func (s *Store) Changes(ctx context.Context) (<-chan string, error) {
	ch := make(chan string, 4096)
	s.subs.add(ch)
	go func() {
		<-ctx.Done()
		s.subs.remove(ch)
	}()
	return ch, nil
}

type subscribers struct {
	mu     sync.Mutex
	chs    map[chan string]struct{}
	closed bool
}

func (s *subscribers) add(ch chan string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		close(ch)
		return
	}
	if s.chs == nil {
		s.chs = map[chan string]struct{}{}
	}
	s.chs[ch] = struct{}{}
}

func (s *subscribers) remove(ch chan string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.chs[ch]; ok {
		delete(s.chs, ch)
		close(ch)
	}
}

func (s *subscribers) send(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.chs {
		select {
		case ch <- id:
		default:
		}
	}
}

func (s *subscribers) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for ch := range s.chs {
		close(ch)
	}
	s.chs = nil
}
