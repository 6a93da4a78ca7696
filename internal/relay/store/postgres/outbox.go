package postgres

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store"
)

// ClaimForwards claims the due entries; SKIP LOCKED lets instances sharing the database claim
// side by side without waiting on each other's rows, and never the same row.
func (s *Store) ClaimForwards(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]store.Forward, error) {
	if limit <= 0 {
		return nil, nil
	}
	until := now.Add(lease)
	var out []store.Forward
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		out = out[:0]
		rows, err := tx.Query(ctx, `
			WITH due AS (
			  SELECT id FROM relay_outbox WHERE next_at <= $1 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
			UPDATE relay_outbox o SET attempts = o.attempts + 1, next_at = $3
			FROM due WHERE o.id = due.id
			RETURNING o.id, o.request_id, o.seq, o.account, o.body, o.queued_at, o.attempts, o.last_error`,
			now, limit, until)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var f store.Forward
			if err := rows.Scan(&f.ID, &f.RequestID, &f.Seq, &f.Account, &f.Body, &f.QueuedAt, &f.Attempts, &f.LastError); err != nil {
				return err
			}
			f.QueuedAt, f.ClaimUntil = f.QueuedAt.UTC(), until
			out = append(out, f)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("claim forwards: %w", err) // inTx prefixed "postgres: "
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID }) // RETURNING has no order
	return out, nil
}

// ForwardDone removes a delivered entry.
func (s *Store) ForwardDone(ctx context.Context, id int64) error {
	err := s.retry(ctx, func() error {
		_, err := s.pool.Exec(ctx, `DELETE FROM relay_outbox WHERE id = $1`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("forward done: %w", err) // retry prefixed "postgres: "
	}
	return nil
}

// ForwardRetry schedules the next attempt of an entry still claimed by the caller.
func (s *Store) ForwardRetry(ctx context.Context, id int64, attempts int, next time.Time, lastErr string) error {
	err := s.retry(ctx, func() error {
		_, err := s.pool.Exec(ctx, `UPDATE relay_outbox SET next_at = $1, last_error = $2 WHERE id = $3 AND attempts = $4`,
			next, lastErr, id, attempts)
		return err
	})
	if err != nil {
		return fmt.Errorf("forward retry: %w", err) // retry prefixed "postgres: "
	}
	return nil
}

// OutboxStats counts the undelivered entries.
func (s *Store) OutboxStats(ctx context.Context) (store.OutboxStats, error) {
	var st store.OutboxStats
	var oldest *time.Time
	err := s.pool.QueryRow(ctx, `SELECT count(*), min(queued_at) FROM relay_outbox`).Scan(&st.Pending, &oldest)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return st, fmt.Errorf("postgres: outbox stats: %w", err)
	}
	if oldest != nil {
		st.Oldest = oldest.UTC()
	}
	return st, nil
}
