// Package postgres is the relay's PostgreSQL store (pgx v5). Several relay instances may share
// one database: per-request sequences are assigned under the request row's lock, duplicates are
// detected under the same lock (and by a unique index), schema migrations take an advisory lock,
// and Append notifies the ids of the requests it changed (pg_notify, delivered at commit) to every
// instance's Changes.
//
// Durability: Append returns after COMMIT, on connections that never run with
// synchronous_commit=off; the server itself must keep fsync on. Any error from Append means
// "not acknowledged": a retried callback is then recognised as a duplicate if the first attempt
// did commit.
package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store"
)

// NotifyChannel is the LISTEN/NOTIFY channel carrying the ids of requests that changed.
const NotifyChannel = "relay_callbacks"

// migrationLockKey is the advisory lock serialising migrations across instances.
const migrationLockKey = 0x72656c6179 // "relay"

// ListenApplicationName is the application_name of the LISTEN connections (for pg_stat_activity).
const ListenApplicationName = "thingspace-relay-listen"

// DefaultMaxConns is the pool size when the DSN does not set pool_max_conns.
const DefaultMaxConns = 16

// Store is the PostgreSQL store. It is safe for concurrent use.
type Store struct {
	pool     *pgxpool.Pool
	connCfg  *pgx.ConnConfig // for the dedicated LISTEN connections
	mu       sync.Mutex
	closed   bool
	stopSubs context.CancelFunc
	subsCtx  context.Context
	subs     sync.WaitGroup
}

var _ store.Store = (*Store)(nil)

// Open connects to the database named by dsn (a postgres:// URL or key=value string; pgxpool's
// pool_* parameters apply) and brings the schema to the current version. The pool reconnects by
// itself, so the store survives a PostgreSQL restart.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = DefaultMaxConns
	}
	// Check every connection taken from the pool after an idle second (pgx's default), and keep
	// a connection's life bounded so that a restarted server's pool is renewed.
	cfg.MaxConnLifetime = 30 * time.Minute
	// An acknowledged callback must survive a crash: never run with synchronous_commit=off,
	// whatever the server's or role's default (local, on and the remote_* levels all flush the
	// local WAL before COMMIT returns).
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		var sc string
		if err := c.QueryRow(ctx, `SELECT current_setting('synchronous_commit')`).Scan(&sc); err != nil {
			return err
		}
		if sc == "off" {
			_, err := c.Exec(ctx, `SET synchronous_commit = on`)
			return err
		}
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	lcfg := cfg.ConnConfig.Copy()
	lcfg.RuntimeParams["application_name"] = ListenApplicationName
	s := &Store{pool: pool, connCfg: lcfg, subsCtx: sctx, stopSubs: cancel}
	if err := s.Migrate(ctx); err != nil {
		cancel()
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Pool exposes the connection pool (tests and diagnostics).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// migrations[v] brings the schema from version v-1 to v.
var migrations = []string{
	1: `
CREATE TABLE relay_requests (
  request_id     text PRIMARY KEY,
  account        text NOT NULL DEFAULT '',
  action         text NOT NULL DEFAULT '',
  registered     boolean NOT NULL DEFAULT false,
  reg_hash       text NOT NULL DEFAULT '',
  expected       integer NOT NULL DEFAULT 0,
  terminal_count integer NOT NULL DEFAULT 0,
  any_terminal   boolean NOT NULL DEFAULT false,
  last_seq       bigint NOT NULL DEFAULT 0,
  state          text NOT NULL DEFAULT 'pending',
  created_at     timestamptz NOT NULL,
  updated_at     timestamptz NOT NULL
);
CREATE INDEX relay_requests_updated_at ON relay_requests (updated_at);
CREATE TABLE relay_callbacks (
  request_id       text NOT NULL,
  seq              bigint NOT NULL,
  content_hash     text NOT NULL,
  account          text NOT NULL DEFAULT '',
  status           text NOT NULL,
  terminal         boolean NOT NULL,
  devices          text NOT NULL,
  body             bytea NOT NULL,
  received_at      timestamptz NOT NULL,
  last_received_at timestamptz NOT NULL,
  deliveries       integer NOT NULL DEFAULT 1,
  PRIMARY KEY (request_id, seq),
  UNIQUE (request_id, content_hash)
);
-- Every identifier carried by a callback, once per request (the device index).
CREATE TABLE relay_callback_keys (
  kind       text NOT NULL,
  id         text NOT NULL,
  request_id text NOT NULL,
  PRIMARY KEY (kind, id, request_id)
);
CREATE INDEX relay_callback_keys_request ON relay_callback_keys (request_id);
-- Registered devices, in registration order, and their identifiers.
CREATE TABLE relay_devices (
  request_id text NOT NULL,
  idx        integer NOT NULL,
  status     text NOT NULL DEFAULT 'pending',
  terminal   boolean NOT NULL DEFAULT false,
  status_seq bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (request_id, idx)
);
CREATE TABLE relay_device_keys (
  request_id text NOT NULL,
  idx        integer NOT NULL,
  pos        integer NOT NULL,
  kind       text NOT NULL,
  id         text NOT NULL,
  PRIMARY KEY (request_id, idx, pos)
);
CREATE INDEX relay_device_keys_key ON relay_device_keys (kind, id, request_id);
CREATE TABLE relay_quarantine (
  id           bigserial PRIMARY KEY,
  received_at  timestamptz NOT NULL,
  account      text NOT NULL DEFAULT '',
  reason       text NOT NULL,
  content_hash text NOT NULL DEFAULT '',
  body         bytea
);
CREATE INDEX relay_quarantine_received_at ON relay_quarantine (received_at);
CREATE TABLE relay_purged (
  request_id text PRIMARY KEY,
  account    text NOT NULL DEFAULT '',
  purged_at  timestamptz NOT NULL
);
`,
	2: `
-- The newest terminal callback (by received_at, then seq) of the request that carried the
-- identifier: what the device lookup's "latest" reads. term_seq 0: none (term_at is then
-- meaningless).
ALTER TABLE relay_callback_keys
  ADD COLUMN term_seq bigint NOT NULL DEFAULT 0,
  ADD COLUMN term_at  timestamptz NOT NULL DEFAULT '1970-01-01 00:00:00+00';
UPDATE relay_callback_keys k SET term_seq = x.seq, term_at = x.received_at FROM (
  SELECT DISTINCT ON (c.request_id, d.kind, d.id) c.request_id, d.kind, d.id, c.seq, c.received_at
  FROM relay_callbacks c CROSS JOIN LATERAL jsonb_to_recordset(c.devices::jsonb) AS d(kind text, id text)
  WHERE c.terminal
  ORDER BY c.request_id, d.kind, d.id, c.received_at DESC, c.seq DESC) x
WHERE k.request_id = x.request_id AND k.kind = x.kind AND k.id = x.id;
-- Write-ahead intents. devices is the JSON list of devices, each a list of {kind, id}.
CREATE TABLE relay_intents (
  intent_id   text PRIMARY KEY,
  account     text NOT NULL,
  action      text NOT NULL,
  devices     text NOT NULL,
  body_sha256 text NOT NULL,
  attempt     integer NOT NULL,
  supersedes  text NOT NULL DEFAULT '',
  state       text NOT NULL,
  request_id  text NOT NULL DEFAULT '',
  reason      text NOT NULL DEFAULT '',
  created_at  timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL
);
CREATE INDEX relay_intents_purge ON relay_intents (updated_at) WHERE state <> 'open';
-- The identifiers of OPEN intents only (idx: the device's position in the intent): rows are
-- removed when an intent leaves open, so the index the lookup reads does not grow with history.
CREATE TABLE relay_intent_keys (
  kind      text NOT NULL,
  id        text NOT NULL,
  intent_id text NOT NULL,
  idx       integer NOT NULL,
  PRIMARY KEY (kind, id, intent_id, idx)
);
`,
	3: `
-- The forward outbox (see store.Outbox). An identity is never reused, so a late ForwardRetry of
-- a deleted entry cannot touch a newer one. next_at -infinity: due at once.
CREATE TABLE relay_outbox (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  request_id text NOT NULL,
  seq        bigint NOT NULL,
  account    text NOT NULL,
  body       bytea NOT NULL,
  queued_at  timestamptz NOT NULL,
  next_at    timestamptz NOT NULL DEFAULT '-infinity',
  attempts   integer NOT NULL DEFAULT 0,
  last_error text NOT NULL DEFAULT ''
);
CREATE INDEX relay_outbox_next_at ON relay_outbox (next_at);
`,
}

// Migrate brings the schema to the current version. Concurrent migrations (several instances
// starting at once) are serialised by an advisory lock; each version is applied in one
// transaction with its row in relay_schema_migrations.
func (s *Store) Migrate(ctx context.Context) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLockKey)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS relay_schema_migrations (
			version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return err
		}
		var current int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM relay_schema_migrations`).Scan(&current); err != nil {
			return err
		}
		if current >= len(migrations) {
			return fmt.Errorf("database schema version %d is newer than this relay's (%d)", current, len(migrations)-1)
		}
		for v := current + 1; v < len(migrations); v++ {
			if _, err := tx.Exec(ctx, migrations[v]); err != nil {
				return fmt.Errorf("migration %d: %w", v, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO relay_schema_migrations (version) VALUES ($1)`, v); err != nil {
				return fmt.Errorf("migration %d: %w", v, err)
			}
		}
		return nil
	})
}

// inTx runs fn in a transaction and commits, retrying (a bounded number of times) when the
// transaction failed before anything could have been committed: deadlocks, serialisation
// failures, unique violations lost to a concurrent instance, and connection errors raised before
// a request was sent (a pooled connection that died with a PostgreSQL restart).
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return s.retry(ctx, func() error { return s.tryTx(ctx, fn) })
}

// retry runs try until it succeeds, fails for good, or failed 5 times (see inTx).
func (s *Store) retry(ctx context.Context, try func() error) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if attempt > 0 {
			d := time.Duration(10<<attempt)*time.Millisecond + time.Duration(rand.IntN(20))*time.Millisecond
			select {
			case <-ctx.Done():
				return fmt.Errorf("postgres: %w (after %v)", ctx.Err(), err)
			case <-time.After(d):
			}
		}
		err = try()
		if err == nil || !retryable(err) || ctx.Err() != nil {
			break
		}
	}
	if err != nil && !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("postgres: %w", err)
	}
	return err
}

func (s *Store) tryTx(ctx context.Context, fn func(tx pgx.Tx) error) (err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tx.Rollback(context.Background())
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "40P01", "40001", "23505", "57P01", "57P02", "57P03":
			return true
		}
		return false
	}
	return pgconn.SafeToRetry(err)
}

type reqRow struct {
	lastSeq       int64
	registered    bool
	expected      int
	terminalCount int
	anyTerminal   bool
	updatedAt     time.Time
	changed       bool
}

// Append stores a batch in one transaction and returns after its commit.
func (s *Store) Append(ctx context.Context, cbs []store.Callback) ([]store.AppendResult, error) {
	if len(cbs) == 0 {
		return []store.AppendResult{}, nil
	}
	keys := make([][]store.DeviceKey, len(cbs))
	for i := range cbs {
		keys[i] = store.NormalizeKeys(cbs[i].Devices)
	}
	var results []store.AppendResult
	err := s.retry(ctx, func() error {
		conn, err := s.pool.Acquire(ctx)
		if err != nil {
			return err
		}
		defer conn.Release() // a connection left inside a transaction is destroyed, not reused
		results, err = s.appendOn(ctx, conn.Conn(), cbs, keys)
		if err != nil && !conn.Conn().IsClosed() && conn.Conn().PgConn().TxStatus() != 'I' {
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, _ = conn.Exec(rctx, "ROLLBACK") // the connection is destroyed on Release if this fails
			cancel()
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

// appendOn runs Append's transaction on conn in three round trips (two when no callback names
// a registered device): BEGIN is pipelined with the first queries and COMMIT with the writes.
func (s *Store) appendOn(ctx context.Context, tx *pgx.Conn, cbs []store.Callback, keys [][]store.DeviceKey) ([]store.AppendResult, error) {
	// 1. Create missing requests and lock every request of the batch, in request id order (the
	// same order in every transaction, so that concurrent batches cannot deadlock). The lock
	// serialises seq assignment and duplicate detection per request across instances.
	first := map[string]int{}          // request id -> index of its first callback in the batch
	earliest := map[string]time.Time{} // request id -> earliest ReceivedAt in the batch
	var ids []string
	for i, c := range cbs {
		if _, ok := first[c.RequestID]; !ok {
			first[c.RequestID] = i
			earliest[c.RequestID] = c.ReceivedAt
			ids = append(ids, c.RequestID)
		} else if c.ReceivedAt.Before(earliest[c.RequestID]) {
			earliest[c.RequestID] = c.ReceivedAt
		}
	}
	sort.Strings(ids)
	accounts := make([]string, len(ids))
	created := make([]time.Time, len(ids))
	for k, id := range ids {
		accounts[k] = cbs[first[id]].Account
		created[k] = earliest[id]
	}
	// 2. Duplicates of stored callbacks (counted as further deliveries), found under the locks.
	type rh struct{ req, hash string }
	seqOf := map[rh]int64{}
	var dReq, dHash []string
	var dAt []time.Time
	for _, c := range cbs {
		k := rh{c.RequestID, c.ContentHash}
		if _, ok := seqOf[k]; ok {
			continue
		}
		seqOf[k] = 0
		dReq, dHash, dAt = append(dReq, c.RequestID), append(dHash, c.ContentHash), append(dAt, c.ReceivedAt)
	}
	clear(seqOf)

	reqs := map[string]*reqRow{}
	b1 := &pgx.Batch{}
	b1.Queue(`BEGIN`)
	b1.Queue(`
		INSERT INTO relay_requests AS r (request_id, account, created_at, updated_at)
		SELECT v.id, v.account, v.at, v.at FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS v(id, account, at)
		ORDER BY v.id
		ON CONFLICT (request_id) DO UPDATE SET last_seq = r.last_seq
		RETURNING request_id, last_seq, registered, expected, terminal_count, any_terminal, updated_at`,
		ids, accounts, created)
	b1.Queue(`
		UPDATE relay_callbacks c SET deliveries = c.deliveries + 1, last_received_at = greatest(c.last_received_at, v.at)
		FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS v(id, hash, at)
		WHERE c.request_id = v.id AND c.content_hash = v.hash
		RETURNING c.request_id, c.content_hash, c.seq`, dReq, dHash, dAt)
	br := tx.SendBatch(ctx, b1)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return nil, err
	}
	for rows.Next() {
		var id string
		r := &reqRow{}
		if err := rows.Scan(&id, &r.lastSeq, &r.registered, &r.expected, &r.terminalCount, &r.anyTerminal, &r.updatedAt); err != nil {
			rows.Close()
			br.Close()
			return nil, err
		}
		reqs[id] = r
	}
	if err := rows.Err(); err != nil {
		br.Close()
		return nil, err
	}
	rows, err = br.Query()
	if err != nil {
		br.Close()
		return nil, err
	}
	for rows.Next() {
		var k rh
		var seq int64
		if err := rows.Scan(&k.req, &k.hash, &seq); err != nil {
			rows.Close()
			br.Close()
			return nil, err
		}
		seqOf[k] = seq
	}
	if err := rows.Err(); err != nil {
		br.Close()
		return nil, err
	}
	if err := br.Close(); err != nil {
		return nil, err
	}
	if len(reqs) != len(ids) {
		return nil, fmt.Errorf("locked %d of %d requests", len(reqs), len(ids))
	}

	// 3. Seqs for the new callbacks, in batch order.
	results := make([]store.AppendResult, len(cbs))
	var fresh []int // indexes into cbs of the callbacks to insert
	for i, c := range cbs {
		k := rh{c.RequestID, c.ContentHash}
		if seq, ok := seqOf[k]; ok {
			results[i] = store.AppendResult{Seq: seq, Duplicate: true}
			continue
		}
		r := reqs[c.RequestID]
		r.lastSeq++
		r.changed = true
		if c.Terminal {
			r.anyTerminal = true
		}
		if c.ReceivedAt.After(r.updatedAt) {
			r.updatedAt = c.ReceivedAt
		}
		seqOf[k] = r.lastSeq
		results[i] = store.AppendResult{Seq: r.lastSeq}
		fresh = append(fresh, i)
	}
	if len(fresh) == 0 {
		if err := commit(ctx, tx, nil); err != nil {
			return nil, err
		}
		return results, nil
	}

	// 4. Registered devices the new callbacks name, with their current state.
	type devKey struct {
		req string
		idx int
	}
	devs := map[devKey]*store.DeviceProgress{}
	was := map[devKey]bool{}    // terminal before this batch
	matches := map[int][]int{}  // fresh callback index -> device idxs
	allOf := map[string][]int{} // request -> every device idx (loaded when a callback has no ids)
	var mReq, mKind, mID []string
	var mOrd []int32
	var allReqs []string
	for _, i := range fresh {
		c := cbs[i]
		if !reqs[c.RequestID].registered {
			continue
		}
		if len(keys[i]) == 0 {
			if !slices.Contains(allReqs, c.RequestID) {
				allReqs = append(allReqs, c.RequestID)
			}
			continue
		}
		for _, k := range keys[i] {
			mReq, mKind, mID, mOrd = append(mReq, c.RequestID), append(mKind, k.Kind), append(mID, k.ID), append(mOrd, int32(i))
		}
	}
	if len(mReq) > 0 {
		rows, err := tx.Query(ctx, `
			SELECT v.ord, d.idx, d.status, d.terminal, d.status_seq
			FROM unnest($1::text[], $2::text[], $3::text[], $4::int[]) AS v(id, kind, key, ord)
			JOIN relay_device_keys k ON k.kind = v.kind AND k.id = v.key AND k.request_id = v.id
			JOIN relay_devices d ON d.request_id = k.request_id AND d.idx = k.idx`, mReq, mKind, mID, mOrd)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var ord int32
			var idx int
			st := &store.DeviceProgress{}
			if err := rows.Scan(&ord, &idx, &st.Status, &st.Terminal, &st.Seq); err != nil {
				rows.Close()
				return nil, err
			}
			dk := devKey{cbs[ord].RequestID, idx}
			if _, ok := devs[dk]; !ok {
				devs[dk], was[dk] = st, st.Terminal
			}
			if !slices.Contains(matches[int(ord)], idx) {
				matches[int(ord)] = append(matches[int(ord)], idx)
			}
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	if len(allReqs) > 0 {
		rows, err := tx.Query(ctx, `SELECT request_id, idx, status, terminal, status_seq FROM relay_devices
			WHERE request_id = ANY($1) ORDER BY request_id, idx`, allReqs)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var dk devKey
			st := &store.DeviceProgress{}
			if err := rows.Scan(&dk.req, &dk.idx, &st.Status, &st.Terminal, &st.Seq); err != nil {
				rows.Close()
				return nil, err
			}
			if _, ok := devs[dk]; !ok {
				devs[dk], was[dk] = st, st.Terminal
			}
			allOf[dk.req] = append(allOf[dk.req], dk.idx)
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	// Fold the new callbacks, in seq order (batch order within a request), into the devices.
	changedDev := map[devKey]bool{}
	for _, i := range fresh {
		c := cbs[i]
		if !reqs[c.RequestID].registered {
			continue
		}
		targets := matches[i]
		if len(keys[i]) == 0 {
			targets = allOf[c.RequestID]
		}
		for _, idx := range targets {
			dk := devKey{c.RequestID, idx}
			if devs[dk].Apply(results[i].Seq, c.Status, c.Terminal) {
				changedDev[dk] = true
			}
		}
	}
	var uReq []string
	var uIdx []int32
	var uStatus []string
	var uTerm []bool
	var uSeq []int64
	for dk := range changedDev {
		st := devs[dk]
		if st.Terminal && !was[dk] {
			reqs[dk.req].terminalCount++
		}
		uReq, uIdx, uStatus, uTerm, uSeq = append(uReq, dk.req), append(uIdx, int32(dk.idx)), append(uStatus, st.Status), append(uTerm, st.Terminal), append(uSeq, st.Seq)
	}

	// 5. Write: callbacks, the device index, device states, request counters, notifications.
	n := len(fresh)
	cReq, cHash, cAcct, cStatus, cDevs := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	cSeq := make([]int64, n)
	cTerm := make([]bool, n)
	cBody := make([][]byte, n)
	cAt := make([]time.Time, n)
	type ck struct{ kind, id, req string }
	seenKey := map[ck]int{} // -> position in the k* arrays
	var kKind, kID, kReq []string
	var kTermSeq []int64 // the newest terminal callback of the batch carrying the key (0: none)
	var kTermAt []time.Time
	for j, i := range fresh {
		c := cbs[i]
		cReq[j], cSeq[j], cHash[j], cAcct[j], cStatus[j], cTerm[j], cDevs[j], cBody[j], cAt[j] =
			c.RequestID, results[i].Seq, c.ContentHash, c.Account, c.Status, c.Terminal, store.KeysJSON(keys[i]), c.Body, c.ReceivedAt
		if cBody[j] == nil {
			cBody[j] = []byte{}
		}
		for _, k := range keys[i] {
			x := ck{k.Kind, k.ID, c.RequestID}
			p, ok := seenKey[x]
			if !ok {
				p = len(kKind)
				seenKey[x] = p
				kKind, kID, kReq = append(kKind, k.Kind), append(kID, k.ID), append(kReq, c.RequestID)
				kTermSeq, kTermAt = append(kTermSeq, 0), append(kTermAt, c.ReceivedAt)
			}
			if c.Terminal && (kTermSeq[p] == 0 || c.ReceivedAt.After(kTermAt[p]) ||
				(c.ReceivedAt.Equal(kTermAt[p]) && results[i].Seq > kTermSeq[p])) {
				kTermSeq[p], kTermAt[p] = results[i].Seq, c.ReceivedAt
			}
		}
	}
	var rID, rState []string
	var rSeq []int64
	var rTC []int32
	var rAny []bool
	var rUpd []time.Time
	for _, id := range ids {
		r := reqs[id]
		if !r.changed {
			continue
		}
		rID, rSeq, rTC, rAny, rUpd = append(rID, id), append(rSeq, r.lastSeq), append(rTC, int32(r.terminalCount)), append(rAny, r.anyTerminal), append(rUpd, r.updatedAt)
		rState = append(rState, store.RequestState(r.expected, r.terminalCount, r.anyTerminal))
	}
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO relay_callbacks (request_id, seq, content_hash, account, status, terminal, devices, body, received_at, last_received_at)
		SELECT id, seq, hash, account, status, terminal, devices, body, at, at
		FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::boolean[], $7::text[], $8::bytea[], $9::timestamptz[])
		  AS v(id, seq, hash, account, status, terminal, devices, body, at)`,
		cReq, cSeq, cHash, cAcct, cStatus, cTerm, cDevs, cBody, cAt)
	if len(kKind) > 0 {
		// A terminal callback records itself on its keys when it is newer (by received_at, then
		// seq) than the one recorded.
		b.Queue(`INSERT INTO relay_callback_keys AS k (kind, id, request_id, term_seq, term_at)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::timestamptz[])
			ON CONFLICT (kind, id, request_id) DO UPDATE SET term_seq = excluded.term_seq, term_at = excluded.term_at
			WHERE excluded.term_seq > 0 AND (k.term_seq = 0 OR (excluded.term_at, excluded.term_seq) > (k.term_at, k.term_seq))`,
			kKind, kID, kReq, kTermSeq, kTermAt)
	}
	if len(uReq) > 0 {
		b.Queue(`UPDATE relay_devices d SET status = v.status, terminal = v.terminal, status_seq = v.seq
			FROM unnest($1::text[], $2::int[], $3::text[], $4::boolean[], $5::bigint[]) AS v(id, idx, status, terminal, seq)
			WHERE d.request_id = v.id AND d.idx = v.idx`, uReq, uIdx, uStatus, uTerm, uSeq)
	}
	b.Queue(`UPDATE relay_requests r SET last_seq = v.seq, terminal_count = v.tc, any_terminal = v.anyt, state = v.state,
			updated_at = greatest(r.updated_at, v.upd)
		FROM unnest($1::text[], $2::bigint[], $3::int[], $4::boolean[], $5::text[], $6::timestamptz[]) AS v(id, seq, tc, anyt, state, upd)
		WHERE r.request_id = v.id`, rID, rSeq, rTC, rAny, rState, rUpd)
	var oReq, oAcct []string
	var oSeq []int64
	var oBody [][]byte
	var oAt []time.Time
	for j, i := range fresh {
		if cbs[i].Forward {
			oReq, oSeq, oAcct, oBody, oAt = append(oReq, cReq[j]), append(oSeq, cSeq[j]), append(oAcct, cAcct[j]), append(oBody, cBody[j]), append(oAt, cAt[j])
		}
	}
	if len(oReq) > 0 {
		// In batch order: ids follow the order callbacks were stored in.
		b.Queue(`INSERT INTO relay_outbox (request_id, seq, account, body, queued_at)
			SELECT id, seq, account, body, at
			FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bytea[], $5::timestamptz[]) WITH ORDINALITY AS v(id, seq, account, body, at, ord)
			ORDER BY ord`, oReq, oSeq, oAcct, oBody, oAt)
	}
	b.Queue(`SELECT pg_notify($1, id) FROM unnest($2::text[]) AS id`, NotifyChannel, rID)
	if err := commit(ctx, tx, b); err != nil {
		return nil, err
	}
	return results, nil
}

// commit sends b (may be nil) and COMMIT in one pipeline and checks that the transaction
// committed (COMMIT of a failed transaction answers ROLLBACK without an error).
func commit(ctx context.Context, conn *pgx.Conn, b *pgx.Batch) error {
	if b == nil {
		b = &pgx.Batch{}
	}
	n := b.Len()
	b.Queue(`COMMIT`)
	br := conn.SendBatch(ctx, b)
	for i := 0; i < n; i++ {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return err
		}
	}
	tag, err := br.Exec()
	if err != nil {
		br.Close()
		return err
	}
	if err := br.Close(); err != nil {
		return err
	}
	if tag.String() != "COMMIT" {
		return fmt.Errorf("transaction not committed: %s", tag)
	}
	return nil
}

// Quarantine stores a body that authenticated but is not a callback.
func (s *Store) Quarantine(ctx context.Context, q store.Quarantined) error {
	body := q.Body
	if body == nil {
		body = []byte{}
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO relay_quarantine (received_at, account, reason, content_hash, body) VALUES ($1, $2, $3, $4, $5)`,
			q.ReceivedAt, q.Account, q.Reason, q.ContentHash, body)
		return err
	})
}

// regHash identifies a registration's account, action and devices (order-insensitive).
func regHash(account, action string, devs [][]store.DeviceKey) string {
	canon := make([]string, len(devs))
	for i, d := range devs {
		ks := make([]string, len(d))
		for j, k := range d {
			ks[j] = k.Kind + ":" + k.ID
		}
		sort.Strings(ks)
		b, _ := json.Marshal(ks)
		canon[i] = string(b)
	}
	sort.Strings(canon)
	b, _ := json.Marshal(struct {
		Account, Action string
		Devices         []string
	}{account, action, canon})
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// Register records an accepted action; callbacks already stored count towards it.
func (s *Store) Register(ctx context.Context, reg store.Registration) error {
	devs := store.NormalizeEach(reg.Devices)
	return s.inTx(ctx, func(tx pgx.Tx) error { return registerTx(ctx, tx, reg, devs) })
}

// registerTx is Register inside the caller's transaction (devs: reg.Devices normalised). The
// change notification is queued in the transaction and delivered at its commit.
func registerTx(ctx context.Context, tx pgx.Tx, reg store.Registration, devs [][]store.DeviceKey) error {
	hash := regHash(reg.Account, reg.Action, devs)
	var registered bool
	var stored string
	var lastSeq int64
	err := tx.QueryRow(ctx, `
		INSERT INTO relay_requests AS r (request_id, account, action, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
		ON CONFLICT (request_id) DO UPDATE SET last_seq = r.last_seq
		RETURNING registered, reg_hash, last_seq`, reg.RequestID, reg.Account, reg.Action, reg.CreatedAt).Scan(&registered, &stored, &lastSeq)
	if err != nil {
		return err
	}
	if registered {
		if stored == hash {
			return nil
		}
		return store.ErrConflict
	}
	states := store.NewRegistered(devs)
	if lastSeq > 0 {
		rows, err := tx.Query(ctx, `SELECT seq, status, terminal, devices FROM relay_callbacks WHERE request_id = $1 ORDER BY seq`, reg.RequestID)
		if err != nil {
			return err
		}
		for rows.Next() {
			if err := states.FoldRow(rows.Scan); err != nil {
				rows.Close()
				return err
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
	}
	tc := states.TerminalCount()
	n := len(devs)
	dReq, dStatus := make([]string, n), make([]string, n)
	dIdx := make([]int32, n)
	dTerm := make([]bool, n)
	dSeq := make([]int64, n)
	var kReq, kKind, kID []string
	var kIdx, kPos []int32
	for i, st := range states.Devices {
		dReq[i], dIdx[i], dStatus[i], dTerm[i], dSeq[i] = reg.RequestID, int32(i), st.Status, st.Terminal, st.Seq
		for j, k := range devs[i] {
			kReq, kIdx, kPos, kKind, kID = append(kReq, reg.RequestID), append(kIdx, int32(i)), append(kPos, int32(j)), append(kKind, k.Kind), append(kID, k.ID)
		}
	}
	b := &pgx.Batch{}
	if n > 0 {
		b.Queue(`INSERT INTO relay_devices (request_id, idx, status, terminal, status_seq)
			SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::boolean[], $5::bigint[])`, dReq, dIdx, dStatus, dTerm, dSeq)
	}
	if len(kReq) > 0 {
		b.Queue(`INSERT INTO relay_device_keys (request_id, idx, pos, kind, id)
			SELECT * FROM unnest($1::text[], $2::int[], $3::int[], $4::text[], $5::text[])`, kReq, kIdx, kPos, kKind, kID)
	}
	b.Queue(`UPDATE relay_requests SET account = $2, action = $3, registered = true, reg_hash = $4, expected = $5,
			terminal_count = $6, state = $7, updated_at = greatest(updated_at, $8)
		WHERE request_id = $1`, reg.RequestID, reg.Account, reg.Action, hash, n, tc, store.RequestState(n, tc, states.AnyTerminal), reg.CreatedAt)
	// Waiters re-read the state: a registration can complete a request.
	b.Queue(`SELECT pg_notify($1, $2)`, NotifyChannel, reg.RequestID)
	return tx.SendBatch(ctx, b).Close()
}

// Request returns a request's summary, read in one snapshot.
func (s *Store) Request(ctx context.Context, requestID string, accounts []string) (*store.Request, error) {
	return s.request(ctx, requestID, accounts, true)
}

// RequestSummary is Request without the devices: what a long-poll needs on every wake-up
// (state, last seq, account), one row even for a request of 10,000 devices. The relay uses it
// when a store has it (it is not part of store.Store).
func (s *Store) RequestSummary(ctx context.Context, requestID string, accounts []string) (*store.Request, error) {
	return s.request(ctx, requestID, accounts, false)
}

func (s *Store) request(ctx context.Context, requestID string, accounts []string, devices bool) (*store.Request, error) {
	var out *store.Request
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		r := &store.Request{RequestID: requestID}
		err := tx.QueryRow(ctx, `SELECT account, action, state, expected, terminal_count, last_seq, created_at, updated_at
			FROM relay_requests WHERE request_id = $1`, requestID).
			Scan(&r.Account, &r.Action, &r.State, &r.Expected, &r.TerminalCount, &r.LastSeq, &r.CreatedAt, &r.UpdatedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			var account string
			err := tx.QueryRow(ctx, `SELECT account FROM relay_purged WHERE request_id = $1`, requestID).Scan(&account)
			if errors.Is(err, pgx.ErrNoRows) {
				return store.ErrNotFound
			}
			if err != nil {
				return err
			}
			if !store.Allowed(account, accounts) {
				return store.ErrNotFound
			}
			return store.ErrGone
		}
		if err != nil {
			return err
		}
		if !store.Allowed(r.Account, accounts) {
			return store.ErrNotFound
		}
		r.CreatedAt, r.UpdatedAt = r.CreatedAt.UTC(), r.UpdatedAt.UTC()
		r.Devices = []store.DeviceState{}
		if devices && r.Expected > 0 {
			rows, err := tx.Query(ctx, `SELECT d.idx, d.status, d.terminal, k.kind, k.id
				FROM relay_devices d LEFT JOIN relay_device_keys k ON k.request_id = d.request_id AND k.idx = d.idx
				WHERE d.request_id = $1 ORDER BY d.idx, k.pos`, requestID)
			if err != nil {
				return err
			}
			for rows.Next() {
				var idx int
				var d store.DeviceState
				var kind, id *string
				if err := rows.Scan(&idx, &d.Status, &d.Terminal, &kind, &id); err != nil {
					rows.Close()
					return err
				}
				if idx >= len(r.Devices) {
					d.IDs = []store.DeviceKey{}
					r.Devices = append(r.Devices, d)
				}
				if kind != nil {
					last := &r.Devices[len(r.Devices)-1]
					last.IDs = append(last.IDs, store.DeviceKey{Kind: *kind, ID: *id})
				}
			}
			if err := rows.Err(); err != nil {
				return err
			}
		}
		out = r
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// readTx runs fn in a read-only repeatable-read transaction (one snapshot).
func (s *Store) readTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
		if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrGone) || !pgconn.SafeToRetry(err) {
			break
		}
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrGone) {
		return fmt.Errorf("postgres: %w", err)
	}
	return err
}

// Callbacks returns up to limit callbacks of a request with Seq > after, in Seq order.
func (s *Store) Callbacks(ctx context.Context, requestID string, after int64, limit int) ([]store.Callback, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := s.pool.Query(ctx, `SELECT seq, account, received_at, status, terminal, content_hash, devices, body
		FROM relay_callbacks WHERE request_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, requestID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	defer rows.Close()
	out := []store.Callback{}
	for rows.Next() {
		c := store.Callback{RequestID: requestID}
		var dj string
		if err := rows.Scan(&c.Seq, &c.Account, &c.ReceivedAt, &c.Status, &c.Terminal, &c.ContentHash, &dj, &c.Body); err != nil {
			return nil, fmt.Errorf("postgres: %w", err)
		}
		c.ReceivedAt = c.ReceivedAt.UTC()
		if err := json.Unmarshal([]byte(dj), &c.Devices); err != nil {
			return nil, fmt.Errorf("postgres: callback %d devices: %w", c.Seq, err)
		}
		if len(c.Devices) == 0 {
			c.Devices = nil
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return out, nil
}

// DeviceRequests lists the requests that registered or received a callback for key, newest first.
func (s *Store) DeviceRequests(ctx context.Context, key store.DeviceKey, openOnly bool, accounts []string) ([]store.RequestRef, error) {
	key = store.NormalizeKey(key)
	if accounts == nil {
		accounts = []string{}
	}
	rows, err := s.pool.Query(ctx, `
		SELECT r.request_id, r.account, r.action, r.state, r.created_at FROM relay_requests r
		WHERE r.request_id IN (
			SELECT request_id FROM relay_device_keys WHERE kind = $1 AND id = $2
			UNION SELECT request_id FROM relay_callback_keys WHERE kind = $1 AND id = $2)
		  AND (NOT $3 OR r.state <> 'terminal')
		  AND (cardinality($4::text[]) = 0 OR r.account = ANY($4))
		ORDER BY r.created_at DESC, r.request_id`, key.Kind, key.ID, openOnly, accounts)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	defer rows.Close()
	out := []store.RequestRef{}
	for rows.Next() {
		var r store.RequestRef
		if err := rows.Scan(&r.RequestID, &r.Account, &r.Action, &r.State, &r.CreatedAt); err != nil {
			return nil, fmt.Errorf("postgres: %w", err)
		}
		r.CreatedAt = r.CreatedAt.UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return out, nil
}

// PurgeBatch is the number of requests deleted per transaction by Purge.
const PurgeBatch = 1000

// Purge deletes requests (with their callbacks and devices) last updated before the cutoff, and
// quarantined bodies received before it; it returns the number of requests purged. Instances
// purging at once skip each other's rows (FOR UPDATE SKIP LOCKED).
func (s *Store) Purge(ctx context.Context, before time.Time) (int, error) {
	total := 0
	for i := 0; i < 1_000_000; i++ {
		var n int
		err := s.inTx(ctx, func(tx pgx.Tx) error {
			var ids []string
			rows, err := tx.Query(ctx, `SELECT request_id FROM relay_requests WHERE updated_at < $1
				ORDER BY request_id LIMIT $2 FOR UPDATE SKIP LOCKED`, before, PurgeBatch)
			if err != nil {
				return err
			}
			ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
			n = len(ids)
			if n == 0 {
				return nil
			}
			b := &pgx.Batch{}
			b.Queue(`INSERT INTO relay_purged (request_id, account, purged_at)
				SELECT request_id, account, now() FROM relay_requests WHERE request_id = ANY($1)
				ON CONFLICT (request_id) DO UPDATE SET account = excluded.account, purged_at = excluded.purged_at`, ids)
			for _, t := range []string{"relay_callbacks", "relay_callback_keys", "relay_devices", "relay_device_keys", "relay_requests"} {
				b.Queue(`DELETE FROM `+t+` WHERE request_id = ANY($1)`, ids)
			}
			return tx.SendBatch(ctx, b).Close()
		})
		total += n
		if err != nil {
			return total, err
		}
		if n < PurgeBatch {
			break
		}
	}
	if err := s.purgeIntents(ctx, before); err != nil {
		return total, err
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM relay_quarantine WHERE received_at < $1`, before)
		return err
	})
	return total, err
}

// Changes delivers the ids of requests changed by any instance sharing the database. It holds
// a dedicated LISTEN connection, pinged when idle and re-established with backoff when it
// drops (notifications sent meanwhile are lost: after a reconnect it sends store.AnyChange, and
// callers also re-query periodically). The LISTEN is in place when Changes returns. The channel
// closes when ctx ends or the store is closed.
func (s *Store) Changes(ctx context.Context) (<-chan string, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errors.New("postgres: store closed")
	}
	s.subs.Add(1)
	s.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.subsCtx, cancel)
	conn, err := s.listen(ctx)
	if err != nil {
		stop()
		cancel()
		s.subs.Done()
		return nil, fmt.Errorf("postgres: listen: %w", err)
	}
	ch := make(chan string, 256)
	go func() {
		defer s.subs.Done()
		defer stop()
		defer cancel()
		defer close(ch)
		backoff := 50 * time.Millisecond
		for {
			if conn == nil {
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff + time.Duration(rand.Int64N(int64(backoff/2)+1))):
				}
				backoff = min(backoff*2, 5*time.Second)
				c, err := s.listen(ctx)
				if err != nil {
					continue
				}
				conn, backoff = c, 50*time.Millisecond
				// Notifications sent while the connection was down are gone: tell the
				// subscriber to look at everything again.
				select {
				case ch <- store.AnyChange:
				case <-ctx.Done():
					conn.Close(context.Background())
					return
				}
			}
			err := s.pump(ctx, conn, ch)
			conn.Close(context.Background())
			conn = nil
			if ctx.Err() != nil {
				return
			}
			_ = err // the connection dropped: reconnect
		}
	}()
	return ch, nil
}

func (s *Store) listen(ctx context.Context) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, s.connCfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(cctx, "LISTEN "+pgx.Identifier{NotifyChannel}.Sanitize()); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

// pump forwards notifications until the connection fails or ctx ends; it pings the server
// after 5 idle seconds so that a dead connection is noticed.
func (s *Store) pump(ctx context.Context, conn *pgx.Conn, ch chan<- string) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
				if conn.IsClosed() {
					return err
				}
				pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
				err = conn.Ping(pctx)
				pcancel()
				if err != nil {
					return err
				}
				continue
			}
			return err
		}
		select {
		case ch <- n.Payload:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// Close stops every Changes listener and closes the pool.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.stopSubs()
	s.subs.Wait()
	s.pool.Close()
	return nil
}
