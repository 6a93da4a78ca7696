package store

import (
	"context"
	"time"
)

// Forward is one outbox entry: a stored callback still to be delivered to the forward target.
// It holds its own copy of the (redacted) body, so that the retention purge of the callback's
// request cannot take an undelivered entry's body with it.
type Forward struct {
	ID         int64 // unique in the store, increasing in queue order
	RequestID  string
	Seq        int64 // the callback's seq: (RequestID, Seq) names the callback for de-duplication
	Account    string
	Body       []byte
	QueuedAt   time.Time // the callback's ReceivedAt
	Attempts   int       // attempts claimed so far, this one included
	LastError  string    // the previous attempt's failure ("" before the first)
	ClaimUntil time.Time // the claim's end: past it the entry is due again (another instance may take it)
}

// OutboxStats describes the undelivered entries.
type OutboxStats struct {
	Pending int
	Oldest  time.Time // QueuedAt of the oldest entry (zero when none)
}

// Outbox is the durable queue of callbacks to forward. Append fills it (Callback.Forward) in the
// callback's own transaction, so a callback acknowledged to ThingSpace is in the outbox whatever
// happens to the process afterwards; entries leave it only through ForwardDone.
type Outbox interface {
	// ClaimForwards returns up to limit entries due at now (oldest id first), each claimed until
	// now+lease: its Attempts incremented and its next attempt moved to the claim's end, in one
	// transaction. Concurrent claims (other instances on PostgreSQL) never return the same entry
	// while its claim lasts; an entry whose claimer died is due again when the claim ends.
	ClaimForwards(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Forward, error)
	// ForwardDone removes a delivered entry (a no-op when it is gone already).
	ForwardDone(ctx context.Context, id int64) error
	// ForwardRetry schedules an entry's next attempt at next, recording why the attempt failed.
	// attempts is the claimed entry's Attempts: when the entry was claimed again since (its
	// claim had ended), or is gone, nothing changes.
	ForwardRetry(ctx context.Context, id int64, attempts int, next time.Time, lastErr string) error
	// OutboxStats counts the undelivered entries.
	OutboxStats(ctx context.Context) (OutboxStats, error)
}
