package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store"
)

const intentColumns = `intent_id, account, action, devices, body_sha256, attempt, supersedes, state, request_id, reason, created_at, updated_at`

func scanIntent(r pgx.Row) (*store.Intent, error) {
	var in store.Intent
	var devs string
	if err := r.Scan(&in.IntentID, &in.Account, &in.Action, &devs, &in.BodySHA256, &in.Attempt, &in.Supersedes,
		&in.State, &in.RequestID, &in.Reason, &in.CreatedAt, &in.UpdatedAt); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(devs), &in.Devices); err != nil {
		return nil, fmt.Errorf("intent %s devices: %w", in.IntentID, err)
	}
	in.CreatedAt, in.UpdatedAt = in.CreatedAt.UTC(), in.UpdatedAt.UTC()
	return &in, nil
}

// getIntent reads one intent (locking its row with forUpdate); nil when there is none.
func getIntent(ctx context.Context, tx pgx.Tx, id string, forUpdate bool) (*store.Intent, error) {
	q := `SELECT ` + intentColumns + ` FROM relay_intents WHERE intent_id = $1`
	if forUpdate {
		q += ` FOR UPDATE`
	}
	in, err := scanIntent(tx.QueryRow(ctx, q, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return in, err
}

// intentKeyArrays are an intent's identifiers as the arrays the statements unnest.
func intentKeyArrays(devs [][]store.DeviceKey) (kinds, ids []string, idxs []int32) {
	for i, d := range devs {
		for _, k := range d {
			kinds, ids, idxs = append(kinds, k.Kind), append(ids, k.ID), append(idxs, int32(i))
		}
	}
	return kinds, ids, idxs
}

// closeIntentTx writes an intent's new state and drops its identifiers from the index of open
// intents.
func closeIntentTx(ctx context.Context, tx pgx.Tx, in *store.Intent) error {
	kinds, ids, idxs := intentKeyArrays(in.Devices)
	b := &pgx.Batch{}
	b.Queue(`UPDATE relay_intents SET state = $2, request_id = $3, reason = $4, updated_at = $5 WHERE intent_id = $1`,
		in.IntentID, in.State, in.RequestID, in.Reason, in.UpdatedAt)
	b.Queue(`DELETE FROM relay_intent_keys k USING unnest($2::text[], $3::text[], $4::int[]) AS v(kind, id, idx)
		WHERE k.kind = v.kind AND k.id = v.id AND k.intent_id = $1 AND k.idx = v.idx`, in.IntentID, kinds, ids, idxs)
	return tx.SendBatch(ctx, b).Close()
}

// PutIntent writes an open intent, resolving the open intent it supersedes in the same
// transaction; it returns after the commit.
func (s *Store) PutIntent(ctx context.Context, in store.Intent) (store.PutIntentResult, error) {
	in, err := store.PrepareIntent(in)
	if err != nil {
		return store.PutIntentResult{}, fmt.Errorf("postgres: put intent: %w", err)
	}
	devs, _ := json.Marshal(in.Devices)
	kinds, ids, idxs := intentKeyArrays(in.Devices)
	var res store.PutIntentResult
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		res = store.PutIntentResult{}
		// Another instance writing the same id waits here for that commit, then sees its row.
		tag, err := tx.Exec(ctx, `INSERT INTO relay_intents (`+intentColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) ON CONFLICT (intent_id) DO NOTHING`,
			in.IntentID, in.Account, in.Action, string(devs), in.BodySHA256, in.Attempt, in.Supersedes,
			in.State, in.RequestID, in.Reason, in.CreatedAt)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			cur, err := getIntent(ctx, tx, in.IntentID, false)
			if err != nil {
				return err
			}
			if cur != nil && store.SameIntent(cur, &in) {
				res.Intent = cur
				return nil
			}
			return store.ErrConflict
		}
		if _, err := tx.Exec(ctx, `INSERT INTO relay_intent_keys (kind, id, intent_id, idx)
			SELECT v.kind, v.id, $1, v.idx FROM unnest($2::text[], $3::text[], $4::int[]) AS v(kind, id, idx)
			ON CONFLICT DO NOTHING`, in.IntentID, kinds, ids, idxs); err != nil {
			return err
		}
		res.Intent, res.Created = &in, true
		if in.Supersedes == "" {
			return nil
		}
		old, err := getIntent(ctx, tx, in.Supersedes, true)
		if err != nil || old == nil {
			return err
		}
		if res.Superseded, err = store.Supersede(old, &in); err != nil || !res.Superseded {
			return err
		}
		return closeIntentTx(ctx, tx, old)
	})
	if err != nil {
		return store.PutIntentResult{}, err
	}
	return res, nil
}

// UpdateIntent moves an open intent to another state; accepted registers its request in the
// same transaction.
func (s *Store) UpdateIntent(ctx context.Context, id string, ch store.IntentChange, accounts []string) (store.UpdateIntentResult, error) {
	ch, err := store.CheckIntentChange(ch)
	if err != nil {
		return store.UpdateIntentResult{}, fmt.Errorf("postgres: update intent: %w", err)
	}
	var res store.UpdateIntentResult
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		res = store.UpdateIntentResult{}
		cur, err := getIntent(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if cur == nil || !store.Allowed(cur.Account, accounts) {
			return store.ErrNotFound
		}
		next, changed, err := store.ApplyIntentChange(*cur, ch)
		if err != nil {
			return err
		}
		res.Intent = cur
		if !changed {
			return nil
		}
		if next.State == store.IntentAccepted {
			reg := store.Registration{RequestID: next.RequestID, Account: next.Account, Action: next.Action,
				Devices: next.Devices, CreatedAt: ch.At}
			if err := registerTx(ctx, tx, reg, next.Devices); err != nil {
				return err
			}
		}
		res.Intent, res.Changed = &next, true
		return closeIntentTx(ctx, tx, &next)
	})
	if err != nil {
		return store.UpdateIntentResult{}, err
	}
	return res, nil
}

// Intent returns one intent.
func (s *Store) Intent(ctx context.Context, id string, accounts []string) (*store.Intent, error) {
	in, err := scanIntent(s.pool.QueryRow(ctx, `SELECT `+intentColumns+` FROM relay_intents WHERE intent_id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: intent: %w", err)
	}
	if !store.Allowed(in.Account, accounts) {
		return nil, store.ErrNotFound
	}
	return in, nil
}

// The lookup's statements unnest the devices' identifiers ($1 device positions, $2 kinds, $3
// ids) and join them with the identifier indexes, so each reads every identifier at once; the
// four go to the server in one round trip, in one snapshot.
const (
	qLookupInput = `unnest($1::int[], $2::text[], $3::text[]) AS q(dev, kind, id)`
	qLookupScope = `(cardinality($4::text[]) = 0 OR r.account = ANY($4))`

	// Registered devices and callbacks index identifiers in two tables; UNION keeps a request
	// found through both, or through two identifiers of the device, once.
	qLookupRequests = `WITH h AS (
			SELECT q.dev, k.request_id FROM ` + qLookupInput + ` JOIN relay_device_keys k ON k.kind = q.kind AND k.id = q.id
			UNION
			SELECT q.dev, k.request_id FROM ` + qLookupInput + ` JOIN relay_callback_keys k ON k.kind = q.kind AND k.id = q.id)
		SELECT h.dev, r.request_id, r.account, r.action, r.state, r.created_at
		FROM h JOIN relay_requests r ON r.request_id = h.request_id
		WHERE r.state <> 'terminal' AND ` + qLookupScope

	qLookupIntentKeys = `SELECT DISTINCT q.dev, k.intent_id, k.idx FROM ` + qLookupInput + `
		JOIN relay_intent_keys k ON k.kind = q.kind AND k.id = q.id`

	qLookupIntents = `SELECT ` + intentColumns + ` FROM relay_intents WHERE state = 'open' AND intent_id IN (
		SELECT k.intent_id FROM ` + qLookupInput + ` JOIN relay_intent_keys k ON k.kind = q.kind AND k.id = q.id)`

	// Per device and action, the newest terminal callback among those the key rows recorded;
	// for requests nobody registered (action ''), per request (store.LookupBuilder.AddLatest).
	qLookupLatest = `SELECT l.dev, l.action, c.request_id, c.seq, c.received_at, c.status, c.terminal, c.body FROM (
			SELECT DISTINCT ON (q.dev, r.action, (CASE WHEN r.action = '' THEN k.request_id ELSE '' END))
				q.dev, r.action, k.request_id, k.term_seq
			FROM ` + qLookupInput + `
			JOIN relay_callback_keys k ON k.kind = q.kind AND k.id = q.id
			JOIN relay_requests r ON r.request_id = k.request_id
			WHERE k.term_seq > 0 AND ` + qLookupScope + `
			ORDER BY q.dev, r.action, (CASE WHEN r.action = '' THEN k.request_id ELSE '' END),
				k.term_at DESC, k.term_seq DESC, k.request_id DESC) l
		JOIN relay_callbacks c ON c.request_id = l.request_id AND c.seq = l.term_seq`
)

// LookupDevices reads the records of many devices in one repeatable-read snapshot and one
// round trip, whatever the number of devices.
func (s *Store) LookupDevices(ctx context.Context, devices [][]store.DeviceKey, accounts []string) ([]store.DeviceRecord, error) {
	var devIdx []int32
	var kinds, ids []string
	for i, d := range devices {
		for _, k := range store.NormalizeKeys(d) {
			devIdx, kinds, ids = append(devIdx, int32(i)), append(kinds, k.Kind), append(ids, k.ID)
		}
	}
	if accounts == nil {
		accounts = []string{}
	}
	var out []store.DeviceRecord
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		b := store.NewLookupBuilder(len(devices))
		batch := &pgx.Batch{}
		// These are many cheap index reads: compiling them (JIT, on by default for costly
		// plans) takes longer than running them.
		batch.Queue(`SET LOCAL jit = off`)
		batch.Queue(qLookupRequests, devIdx, kinds, ids, accounts).Query(func(rows pgx.Rows) error {
			var dev int32
			var r store.RequestRef
			_, err := pgx.ForEachRow(rows, []any{&dev, &r.RequestID, &r.Account, &r.Action, &r.State, &r.CreatedAt}, func() error {
				r.CreatedAt = r.CreatedAt.UTC()
				b.AddRequest(int(dev), r)
				return nil
			})
			return err
		})
		batch.Queue(qLookupIntentKeys, devIdx, kinds, ids).Query(func(rows pgx.Rows) error {
			var dev, idx int32
			var id string
			_, err := pgx.ForEachRow(rows, []any{&dev, &id, &idx}, func() error {
				b.AddIntentHit(int(dev), id, int(idx))
				return nil
			})
			return err
		})
		batch.Queue(qLookupIntents, devIdx, kinds, ids).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				in, err := scanIntent(rows)
				if err != nil {
					return err
				}
				b.AddIntent(in)
			}
			return rows.Err()
		})
		batch.Queue(qLookupLatest, devIdx, kinds, ids, accounts).Query(func(rows pgx.Rows) error {
			var dev int32
			var l store.LatestCallback
			_, err := pgx.ForEachRow(rows, []any{&dev, &l.Action, &l.RequestID, &l.Seq, &l.ReceivedAt, &l.Status, &l.Terminal, &l.Body}, func() error {
				l.ReceivedAt = l.ReceivedAt.UTC()
				b.AddLatest(int(dev), l)
				l.Body = nil // the next row scans into a fresh slice
				return nil
			})
			return err
		})
		if err := tx.SendBatch(ctx, batch).Close(); err != nil {
			return err
		}
		out = b.Records(accounts)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// purgeIntents deletes intents no longer open last updated before the cutoff, in batches. Open
// ones stay whatever their age (see store.Store.Purge).
func (s *Store) purgeIntents(ctx context.Context, before time.Time) error {
	for i := 0; i < 1_000_000; i++ {
		var n int64
		err := s.inTx(ctx, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, `DELETE FROM relay_intents WHERE intent_id IN (
				SELECT intent_id FROM relay_intents WHERE updated_at < $1 AND state <> 'open'
				LIMIT $2 FOR UPDATE SKIP LOCKED)`, before, PurgeBatch)
			n = tag.RowsAffected()
			return err
		})
		if err != nil {
			return err
		}
		if n < PurgeBatch {
			return nil
		}
	}
	return nil
}
