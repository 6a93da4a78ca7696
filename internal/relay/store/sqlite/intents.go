package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
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
	if in.Supersedes != "" {
		old, err := getIntent(ctx, tx, in.Supersedes)
		if err != nil {
			return store.PutIntentResult{}, fmt.Errorf("sqlite: put intent: %w", err)
		}
		if old != nil {
			if res.Superseded, err = store.Supersede(old, &in); err != nil {
				return store.PutIntentResult{}, err
			}
		}
		if res.Superseded {
			if err := closeIntentTx(ctx, tx, old); err != nil {
				return store.PutIntentResult{}, fmt.Errorf("sqlite: put intent: %w", err)
			}
		}
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

// The lookup's statements read one kind of identifier at a time: ?1 is the kind, ?2 the JSON
// list of ids (plain strings, so json_each yields them without parsing each row), so that a
// lookup of any size costs a few statements, each reading every id through a primary key.
// CROSS JOIN keeps the ids as the outer loop: with the kind a constant, the planner would
// otherwise scan every key of that kind and search the list for each.
const (
	// The requests naming each identifier, with the newest terminal callback that carried it.
	// j.key is the id's position in ?2.
	qLookupKeys = `SELECT j.key, k.request_id, k.term_seq, k.term_at
		FROM json_each(?2) j CROSS JOIN device_keys k ON k.kind = ?1 AND k.id = j.value`

	qLookupRequests = `SELECT request_id, account, action, state, created_at FROM requests
		WHERE request_id IN (SELECT value FROM json_each(?1))`

	qLookupIntentKeys = `SELECT j.key, k.intent_id, k.idx
		FROM json_each(?2) j CROSS JOIN intent_keys k ON k.kind = ?1 AND k.id = j.value`

	qLookupIntents = `SELECT ` + intentColumns + ` FROM intents
		WHERE intent_id IN (SELECT value FROM json_each(?1)) AND state = 'open'`

	// The chosen callbacks, given as "seq:request_id" strings; j.key is the position in ?1.
	qLookupCallbacks = `SELECT j.key, c.received_at, c.status, c.terminal, c.body
		FROM json_each(?1) j CROSS JOIN callbacks c
		  ON c.request_id = substr(j.value, instr(j.value, ':') + 1)
		 AND c.seq = CAST(substr(j.value, 1, instr(j.value, ':') - 1) AS INTEGER)`
)

// unregisteredKey prefixes the request id of a request nobody registered in the per-action map
// of LookupDevices: those are kept one per request.
const unregisteredKey = "\x00"

// lookupKey is one identifier of a lookup.
type lookupKey struct {
	kind, id string
}

// latestCandidate is the newest terminal callback of an action seen so far for one device.
type latestCandidate struct {
	requestID string
	seq, at   int64
}

func (c latestCandidate) newer(o latestCandidate) bool {
	if c.at != o.at {
		return c.at > o.at
	}
	if c.seq != o.seq {
		return c.seq > o.seq
	}
	return c.requestID > o.requestID
}

// LookupDevices reads the records of many devices in one read transaction (one snapshot): two
// statements per kind of identifier, then one each for the requests named, the open intents
// named and the chosen callbacks, whatever the number of devices.
func (s *Store) LookupDevices(ctx context.Context, devices [][]store.DeviceKey, accounts []string) ([]store.DeviceRecord, error) {
	ctx, err := quiet(ctx)
	if err != nil {
		return nil, err
	}
	b := store.NewLookupBuilder(len(devices))
	// The devices of each identifier, and the ids of each kind (sorted: neighbouring ids share
	// index pages).
	devsOf := map[lookupKey][]int{}
	idsOf := map[string][]string{}
	for i, d := range devices {
		for _, k := range store.NormalizeKeys(d) {
			lk := lookupKey{k.Kind, k.ID}
			if devsOf[lk] == nil {
				idsOf[k.Kind] = append(idsOf[k.Kind], k.ID)
			}
			devsOf[lk] = append(devsOf[lk], i)
		}
	}
	kinds := make([]string, 0, len(idsOf))
	for k := range idsOf {
		kinds = append(kinds, k)
		slices.Sort(idsOf[k])
	}
	slices.Sort(kinds)

	tx, err := s.r.BeginTx(ctx, nil)
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
	// The identifiers' rows: which requests name them, and the newest terminal callback of
	// each request that carried them.
	type keyHit struct {
		kind string
		pos  int // in idsOf[kind]
		c    latestCandidate
	}
	var hits []keyHit
	requests := map[string]*store.RequestRef{}
	var requestIDs []string
	for _, kind := range kinds {
		ids, _ := json.Marshal(idsOf[kind])
		err := each(qLookupKeys, func(rows *sql.Rows) error {
			h := keyHit{kind: kind}
			if err := rows.Scan(&h.pos, &h.c.requestID, &h.c.seq, &h.c.at); err != nil {
				return err
			}
			if _, ok := requests[h.c.requestID]; !ok {
				requests[h.c.requestID] = nil
				requestIDs = append(requestIDs, h.c.requestID)
			}
			hits = append(hits, h)
			return nil
		}, kind, string(ids))
		if err != nil {
			return nil, fmt.Errorf("sqlite: lookup requests: %w", err)
		}
		err = each(qLookupIntentKeys, func(rows *sql.Rows) error {
			var pos, idx int
			var intentID string
			if err := rows.Scan(&pos, &intentID, &idx); err != nil {
				return err
			}
			for _, dev := range devsOf[lookupKey{kind, idsOf[kind][pos]}] {
				b.AddIntentHit(dev, intentID, idx)
			}
			return nil
		}, kind, string(ids))
		if err != nil {
			return nil, fmt.Errorf("sqlite: lookup intents: %w", err)
		}
	}
	// Each request named once: its account, action and state.
	if len(requestIDs) > 0 {
		idJSON, _ := json.Marshal(requestIDs)
		err = each(qLookupRequests, func(rows *sql.Rows) error {
			var r store.RequestRef
			var created int64
			if err := rows.Scan(&r.RequestID, &r.Account, &r.Action, &r.State, &created); err != nil {
				return err
			}
			r.CreatedAt = time.Unix(0, created).UTC()
			requests[r.RequestID] = &r
			return nil
		}, string(idJSON))
		if err != nil {
			return nil, fmt.Errorf("sqlite: lookup requests: %w", err)
		}
	}
	latest := make([]map[string]latestCandidate, len(devices))
	for _, h := range hits {
		r := requests[h.c.requestID]
		if r == nil || !store.Allowed(r.Account, accounts) {
			continue
		}
		for _, dev := range devsOf[lookupKey{h.kind, idsOf[h.kind][h.pos]}] {
			if r.State != store.StateTerminal {
				b.AddRequest(dev, *r)
			}
			if h.c.seq > 0 {
				if latest[dev] == nil {
					latest[dev] = map[string]latestCandidate{}
				}
				key := r.Action
				if key == "" {
					key = unregisteredKey + r.RequestID // one per request (store.LookupBuilder.AddLatest)
				}
				if cur, ok := latest[dev][key]; !ok || h.c.newer(cur) {
					latest[dev][key] = h.c
				}
			}
		}
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
	// The bodies of the chosen callbacks, each read once however many devices chose it.
	pos := map[latestCandidate]int{}
	var refs []string
	for _, m := range latest {
		for _, c := range m {
			c.at = 0
			if _, ok := pos[c]; !ok {
				pos[c] = len(refs)
				refs = append(refs, strconv.FormatInt(c.seq, 10)+":"+c.requestID)
			}
		}
	}
	if len(refs) == 0 {
		return b.Records(accounts), nil
	}
	refJSON, _ := json.Marshal(refs)
	found := make([]*store.LatestCallback, len(refs))
	err = each(qLookupCallbacks, func(rows *sql.Rows) error {
		var p int
		var l store.LatestCallback
		var at int64
		if err := rows.Scan(&p, &at, &l.Status, &l.Terminal, &l.Body); err != nil {
			return err
		}
		l.ReceivedAt = time.Unix(0, at).UTC()
		found[p] = &l
		return nil
	}, string(refJSON))
	if err != nil {
		return nil, fmt.Errorf("sqlite: lookup latest: %w", err)
	}
	for dev, m := range latest {
		for action, c := range m {
			rc := c
			rc.at = 0
			if l := found[pos[rc]]; l != nil {
				out := *l
				out.Action, out.RequestID, out.Seq = action, c.requestID, c.seq
				if strings.HasPrefix(action, unregisteredKey) {
					out.Action = ""
				}
				b.AddLatest(dev, out)
			}
		}
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
