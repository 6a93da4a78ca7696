package sqlite

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store"
)

// ClaimForwards claims the due entries in one write transaction (the single writer serialises
// claims, so two never return the same entry).
func (s *Store) ClaimForwards(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]store.Forward, error) {
	ctx, err := quiet(ctx)
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	until := now.Add(lease)
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim forwards: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `UPDATE outbox SET attempts = attempts + 1, next_at = ?1
		WHERE id IN (SELECT id FROM outbox WHERE next_at <= ?2 ORDER BY id LIMIT ?3)
		RETURNING id, request_id, seq, account, body, queued_at, attempts, last_error`,
		until.UnixNano(), now.UnixNano(), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim forwards: %w", err)
	}
	var out []store.Forward
	for rows.Next() {
		var f store.Forward
		var queued int64
		if err := rows.Scan(&f.ID, &f.RequestID, &f.Seq, &f.Account, &f.Body, &queued, &f.Attempts, &f.LastError); err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqlite: claim forwards: %w", err)
		}
		f.QueuedAt, f.ClaimUntil = time.Unix(0, queued).UTC(), until
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: claim forwards: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlite: claim forwards: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID }) // RETURNING has no order
	return out, nil
}

// ForwardDone removes a delivered entry.
func (s *Store) ForwardDone(ctx context.Context, id int64) error {
	ctx, err := quiet(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.w.ExecContext(ctx, `DELETE FROM outbox WHERE id = ?`, id); err != nil {
		return fmt.Errorf("sqlite: forward done: %w", err)
	}
	return nil
}

// ForwardRetry schedules the next attempt of an entry still claimed by the caller.
func (s *Store) ForwardRetry(ctx context.Context, id int64, attempts int, next time.Time, lastErr string) error {
	ctx, err := quiet(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.w.ExecContext(ctx, `UPDATE outbox SET next_at = ?, last_error = ? WHERE id = ? AND attempts = ?`,
		next.UnixNano(), lastErr, id, attempts); err != nil {
		return fmt.Errorf("sqlite: forward retry: %w", err)
	}
	return nil
}

// OutboxStats counts the undelivered entries.
func (s *Store) OutboxStats(ctx context.Context) (store.OutboxStats, error) {
	var st store.OutboxStats
	var oldest *int64
	if err := s.r.QueryRowContext(ctx, `SELECT count(*), min(queued_at) FROM outbox`).Scan(&st.Pending, &oldest); err != nil {
		return st, fmt.Errorf("sqlite: outbox stats: %w", err)
	}
	if oldest != nil {
		st.Oldest = time.Unix(0, *oldest).UTC()
	}
	return st, nil
}
