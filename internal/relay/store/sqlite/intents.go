package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store"
)

const intentColumns = `intent_id, account, action, devices, body_sha256, attempt, supersedes, state, request_id, reason, created_at, updated_at`

type rowScanner interface {
	Scan(dest ...any) error
}

func scanIntent(r rowScanner) (*store.Intent, error) {
	var in store.Intent
	var devs string
	var created, updated int64
	if err := r.Scan(&in.IntentID, &in.Account, &in.Action, &devs, &in.BodySHA256, &in.Attempt, &in.Supersedes,
		&in.State, &in.RequestID, &in.Reason, &created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(devs), &in.Devices); err != nil {
		return nil, fmt.Errorf("intent %s devices: %w", in.IntentID, err)
	}
	in.CreatedAt, in.UpdatedAt = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	return &in, nil
}

type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// getIntent reads one intent; nil when there is none.
func getIntent(ctx context.Context, q queryRower, id string) (*store.Intent, error) {
	in, err := scanIntent(q.QueryRowContext(ctx, `SELECT `+intentColumns+` FROM intents WHERE intent_id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return in, err
}

// intentKeys is the JSON list [[kind, id, idx], ...] of an intent's identifiers, which the
// statements below unpack with json_each (one statement per intent, whatever its size).
func intentKeys(devs [][]store.DeviceKey) string {
	var rows [][3]any
	for i, d := range devs {
		for _, k := range d {
			rows = append(rows, [3]any{k.Kind, k.ID, i})
		}
	}
	b, _ := json.Marshal(rows)
	return string(b)
}

const (
	qInsertIntentKeys = `INSERT OR IGNORE INTO intent_keys (kind, id, intent_id, idx)
		SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), ?1, json_extract(value, '$[2]') FROM json_each(?2)`
	qDeleteIntentKeys = `DELETE FROM intent_keys WHERE intent_id = ?1 AND (kind, id, idx) IN (
		SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]') FROM json_each(?2))`
)

// closeIntentTx writes an intent's new state and drops its identifiers from the index of open
// intents.
func closeIntentTx(ctx context.Context, tx *sql.Tx, in *store.Intent) error {
	if _, err := tx.ExecContext(ctx, `UPDATE intents SET state = ?, request_id = ?, reason = ?, updated_at = ? WHERE intent_id = ?`,
		in.State, in.RequestID, in.Reason, in.UpdatedAt.UnixNano(), in.IntentID); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, qDeleteIntentKeys, in.IntentID, intentKeys(in.Devices))
	return err
}

// PutIntent writes an open intent, resolving the open intent it supersedes in the same
// transaction; it returns after the commit is durable.
func (s *Store) PutIntent(ctx context.Context, in store.Intent) (store.PutIntentResult, error) {
	ctx, err := quiet(ctx)
	if err != nil {
		return store.PutIntentResult{}, err
	}
	in, err = store.PrepareIntent(in)
	if err != nil {
		return store.PutIntentResult{}, fmt.Errorf("sqlite: put intent: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return store.PutIntentResult{}, fmt.Errorf("sqlite: put intent: %w", err)
	}
	defer tx.Rollback()
	cur, err := getIntent(ctx, tx, in.IntentID)
	if err != nil {
		return store.PutIntentResult{}, fmt.Errorf("sqlite: put intent: %w", err)
	}
	if cur != nil {
		if store.SameIntent(cur, &in) {
			return store.PutIntentResult{Intent: cur}, nil
		}
		return store.PutIntentResult{}, store.ErrConflict
	}
	var old *store.Intent
	if in.Supersedes != "" {
		if old, err = getIntent(ctx, tx, in.Supersedes); err != nil {
			return store.PutIntentResult{}, fmt.Errorf("sqlite: put intent: %w", err)
		}
		if old != nil && old.Account != in.Account {
			return store.PutIntentResult{}, fmt.Errorf("%w: intent %s supersedes an intent of another account", store.ErrConflict, in.IntentID)
		}
	}
	devs, _ := json.Marshal(in.Devices)
	ts := in.CreatedAt.UnixNano()
	if _, err := tx.ExecContext(ctx, `INSERT INTO intents (`+intentColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		in.IntentID, in.Account, in.Action, string(devs), in.BodySHA256, in.Attempt, in.Supersedes,
		in.State, in.RequestID, in.Reason, ts, ts); err != nil {
		return store.PutIntentResult{}, fmt.Errorf("sqlite: put intent: %w", err)
	}
	if _, err := tx.ExecContext(ctx, qInsertIntentKeys, in.IntentID, intentKeys(in.Devices)); err != nil {
		return store.PutIntentResult{}, fmt.Errorf("sqlite: put intent: %w", err)
	}
	res := store.PutIntentResult{Intent: &in, Created: true}
	if old != nil && old.State == store.IntentOpen {
		old.State, old.Reason, old.UpdatedAt = store.IntentResolved, "superseded by "+in.IntentID, in.CreatedAt
		if err := closeIntentTx(ctx, tx, old); err != nil {
			return store.PutIntentResult{}, fmt.Errorf("sqlite: put intent: %w", err)
		}
		res.Superseded = true
	}
	if err := tx.Commit(); err != nil {
		return store.PutIntentResult{}, fmt.Errorf("sqlite: put intent: %w", err)
	}
	return res, nil
}

// UpdateIntent moves an open intent to another state; accepted registers its request in the
// same transaction.
func (s *Store) UpdateIntent(ctx context.Context, id string, ch store.IntentChange, accounts []string) (store.UpdateIntentResult, error) {
	ctx, err := quiet(ctx)
	if err != nil {
		return store.UpdateIntentResult{}, err
	}
	if ch, err = store.CheckIntentChange(ch); err != nil {
		return store.UpdateIntentResult{}, fmt.Errorf("sqlite: update intent: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return store.UpdateIntentResult{}, fmt.Errorf("sqlite: update intent: %w", err)
	}
	defer tx.Rollback()
	cur, err := getIntent(ctx, tx, id)
	if err != nil {
		return store.UpdateIntentResult{}, fmt.Errorf("sqlite: update intent: %w", err)
	}
	if cur == nil || !store.Allowed(cur.Account, accounts) {
		return store.UpdateIntentResult{}, store.ErrNotFound
	}
	next, changed, err := store.ApplyIntentChange(*cur, ch)
	if err != nil || !changed {
		return store.UpdateIntentResult{Intent: cur}, err
	}
	if next.State == store.IntentAccepted {
		reg := store.Registration{RequestID: next.RequestID, Account: next.Account, Action: next.Action, Devices: next.Devices}
		if err := s.registerTx(ctx, tx, reg, next.Devices, ch.At.UnixNano()); err != nil {
			return store.UpdateIntentResult{}, err
		}
	}
	if err := closeIntentTx(ctx, tx, &next); err != nil {
		return store.UpdateIntentResult{}, fmt.Errorf("sqlite: update intent: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return store.UpdateIntentResult{}, fmt.Errorf("sqlite: update intent: %w", err)
	}
	if next.State == store.IntentAccepted {
		s.subs.send(next.RequestID) // the registration may have made the request terminal
	}
	return store.UpdateIntentResult{Intent: &next, Changed: true}, nil
}

// Intent returns one intent.
func (s *Store) Intent(ctx context.Context, id string, accounts []string) (*store.Intent, error) {
	ctx, err := quiet(ctx)
	if err != nil {
		return nil, err
	}
	in, err := getIntent(ctx, s.r, id)
	if err != nil {
		return nil, fmt.Errorf("sqlite: intent: %w", err)
	}
	if in == nil || !store.Allowed(in.Account, accounts) {
		return nil, store.ErrNotFound
	}
	return in, nil
}

// The lookup's statements take the devices' identifiers as one JSON list [[dev, kind, id], ...]
// (?1) and the account scope as a JSON list or NULL (?2), so that each reads every identifier
// in one statement, through the primary keys of device_keys and intent_keys.
const (
	qLookupInput = `WITH q AS (SELECT json_extract(value, '$[0]') AS dev, json_extract(value, '$[1]') AS kind,
		json_extract(value, '$[2]') AS id FROM json_each(?1))`
	qLookupScope = `(?2 IS NULL OR r.account IN (SELECT value FROM json_each(?2)))`

	qLookupRequests = qLookupInput + `
		SELECT DISTINCT q.dev, r.request_id, r.account, r.action, r.state, r.created_at
		FROM q JOIN device_keys k ON k.kind = q.kind AND k.id = q.id
		JOIN requests r ON r.request_id = k.request_id
		WHERE r.state != 'terminal' AND ` + qLookupScope

	qLookupIntentKeys = qLookupInput + `
		SELECT DISTINCT q.dev, k.intent_id, k.idx FROM q JOIN intent_keys k ON k.kind = q.kind AND k.id = q.id`

	qLookupIntents = `SELECT ` + intentColumns + ` FROM intents
		WHERE intent_id IN (SELECT value FROM json_each(?1)) AND state = 'open'`

	// Per device and action, the newest terminal callback among those the key rows recorded.
	qLookupLatest = qLookupInput + `,
		hits AS (
			SELECT q.dev, r.action, k.request_id, k.term_seq, k.term_at
			FROM q JOIN device_keys k ON k.kind = q.kind AND k.id = q.id
			JOIN requests r ON r.request_id = k.request_id
			WHERE k.term_seq > 0 AND ` + qLookupScope + `),
		best AS (
			SELECT dev, action, request_id, term_seq, row_number() OVER (
				PARTITION BY dev, action ORDER BY term_at DESC, term_seq DESC, request_id DESC) AS rn
			FROM hits)
		SELECT b.dev, b.action, c.request_id, c.seq, c.received_at, c.status, c.terminal, c.body
		FROM best b JOIN callbacks c ON c.request_id = b.request_id AND c.seq = b.term_seq
		WHERE b.rn = 1`
)

// lookupInput is the ?1 and ?2 of the lookup's statements.
func lookupInput(devices [][]store.DeviceKey, accounts []string) (string, any) {
	buf := make([]byte, 0, 64*len(devices))
	buf = append(buf, '[')
	first := true
	for i, d := range devices {
		for _, k := range store.NormalizeKeys(d) {
			if !first {
				buf = append(buf, ',')
			}
			first = false
			buf = append(buf, '[')
			buf = strconv.AppendInt(buf, int64(i), 10)
			buf = append(buf, ',')
			buf = appendJSONString(buf, k.Kind)
			buf = append(buf, ',')
			buf = appendJSONString(buf, k.ID)
			buf = append(buf, ']')
		}
	}
	buf = append(buf, ']')
	var scope any // NULL: every account
	if len(accounts) > 0 {
		b, _ := json.Marshal(accounts)
		scope = string(b)
	}
	return string(buf), scope
}

// appendJSONString appends s as a JSON string.
func appendJSONString(buf []byte, s string) []byte {
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			plain = false
			break
		}
	}
	if plain {
		buf = append(buf, '"')
		buf = append(buf, s...)
		return append(buf, '"')
	}
	b, _ := json.Marshal(s)
	return append(buf, b...)
}

// LookupDevices reads the records of many devices in one read transaction (one snapshot), with
// four statements whatever the number of devices.
func (s *Store) LookupDevices(ctx context.Context, devices [][]store.DeviceKey, accounts []string) ([]store.DeviceRecord, error) {
	ctx, err := quiet(ctx)
	if err != nil {
		return nil, err
	}
	b := store.NewLookupBuilder(len(devices))
	if len(devices) == 0 {
		return b.Records(accounts), nil
	}
	input, scope := lookupInput(devices, accounts)
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("sqlite: lookup: %w", err)
	}
	defer tx.Rollback()
	each := func(q string, scan func(*sql.Rows) error, args ...any) error {
		rows, err := tx.StmtContext(ctx, s.readStmts[q]).QueryContext(ctx, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	}
	err = each(qLookupRequests, func(rows *sql.Rows) error {
		var dev int
		var r store.RequestRef
		var created int64
		if err := rows.Scan(&dev, &r.RequestID, &r.Account, &r.Action, &r.State, &created); err != nil {
			return err
		}
		r.CreatedAt = time.Unix(0, created).UTC()
		b.AddRequest(dev, r)
		return nil
	}, input, scope)
	if err != nil {
		return nil, fmt.Errorf("sqlite: lookup requests: %w", err)
	}
	err = each(qLookupIntentKeys, func(rows *sql.Rows) error {
		var dev, idx int
		var id string
		if err := rows.Scan(&dev, &id, &idx); err != nil {
			return err
		}
		b.AddIntentHit(dev, id, idx)
		return nil
	}, input)
	if err != nil {
		return nil, fmt.Errorf("sqlite: lookup intents: %w", err)
	}
	if ids := b.HitIntents(); len(ids) > 0 {
		idJSON, _ := json.Marshal(ids)
		err = each(qLookupIntents, func(rows *sql.Rows) error {
			in, err := scanIntent(rows)
			if err != nil {
				return err
			}
			b.AddIntent(in)
			return nil
		}, string(idJSON))
		if err != nil {
			return nil, fmt.Errorf("sqlite: lookup intents: %w", err)
		}
	}
	err = each(qLookupLatest, func(rows *sql.Rows) error {
		var dev int
		var l store.LatestCallback
		var at int64
		if err := rows.Scan(&dev, &l.Action, &l.RequestID, &l.Seq, &at, &l.Status, &l.Terminal, &l.Body); err != nil {
			return err
		}
		l.ReceivedAt = time.Unix(0, at).UTC()
		b.AddLatest(dev, l)
		return nil
	}, input, scope)
	if err != nil {
		return nil, fmt.Errorf("sqlite: lookup latest: %w", err)
	}
	return b.Records(accounts), nil
}

// purgeIntents deletes intents no longer open last updated before cut, in batches. Open ones
// stay whatever their age (see store.Store.Purge).
func (s *Store) purgeIntents(ctx context.Context, cut int64) error {
	for i := 0; i < 1_000_000; i++ {
		s.mu.Lock()
		res, err := s.w.ExecContext(ctx, `DELETE FROM intents WHERE intent_id IN (
			SELECT intent_id FROM intents WHERE updated_at < ? AND state != 'open' LIMIT 1000)`, cut)
		s.mu.Unlock()
		if err != nil {
			return fmt.Errorf("sqlite: purge intents: %w", err)
		}
		if n, _ := res.RowsAffected(); n < 1000 {
			return nil
		}
	}
	return nil
}
