// Package store defines the relay's durable storage: one interface, implemented by embedded
// SQLite (store/sqlite) and PostgreSQL (store/postgres), and checked by one conformance suite
// (store/storetest) run against both.
package store

import (
	"context"
	"errors"
	"time"
)

// Errors every Store returns for the same conditions.
var (
	// ErrNotFound: no such request (never registered, and no callback for it).
	ErrNotFound = errors.New("store: not found")
	// ErrGone: the request existed but retention purged it (the API answers 410).
	ErrGone = errors.New("store: purged by retention")
	// ErrConflict: a request id was registered again with other devices or another account.
	ErrConflict = errors.New("store: conflicting registration")
)

// AnyChange is sent on a Changes channel when hints may have been lost (a PostgreSQL LISTEN
// connection was re-established): any request may have changed meanwhile. No request id is
// empty, so it cannot be mistaken for one.
const AnyChange = ""

// DeviceKey is one device identifier. Kind is lower case ("eid", "iccid", "imei", "mdn", ...).
type DeviceKey struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
}

// Request states, as the API reports them.
const (
	StateUnknown  = "unknown"  // never registered and no callback yet
	StatePending  = "pending"  // registered or seen, no device terminal yet
	StatePartial  = "partial"  // some registered devices terminal
	StateTerminal = "terminal" // every registered device has a terminal callback (sticky)
)

// Callback is one stored callback. The relay fills every field but Seq before Append; the store
// assigns Seq, a per-request sequence without gaps starting at 1.
type Callback struct {
	Seq         int64
	RequestID   string
	Account     string // the account label of the credentials that authenticated it ("" = none)
	ReceivedAt  time.Time
	Status      string // normalised: succeeded | failed | warning | pending
	Terminal    bool
	ContentHash string      // hex SHA-256 of the canonical body (see relay.CanonicalHash)
	Devices     []DeviceKey // every identifier the callback carries
	Body        []byte      // the redacted JSON body
}

// AppendResult is the outcome of storing one callback.
type AppendResult struct {
	Seq       int64 // the stored row's sequence (the existing row's when Duplicate)
	Duplicate bool  // a callback with the same request id and content hash was already stored
}

// Quarantined is an authenticated body that is not a callback.
type Quarantined struct {
	ReceivedAt  time.Time
	Account     string
	Reason      string
	ContentHash string
	Body        []byte // redacted where it was JSON; raw bytes otherwise
}

// Registration records an action ThingSpace accepted, with every identifier of each device.
type Registration struct {
	RequestID string
	Account   string
	Action    string
	Devices   [][]DeviceKey // one inner list per device
	CreatedAt time.Time
}

// DeviceState is the relay's view of one registered device of a request.
type DeviceState struct {
	IDs      []DeviceKey `json:"ids"`
	Status   string      `json:"status"` // last status by sequence; a terminal one wins over later warnings
	Terminal bool        `json:"terminal"`
}

// Request is the summary of one request.
type Request struct {
	RequestID     string
	Account       string
	Action        string
	State         string
	Expected      int // registered devices (0 when only callbacks were seen)
	TerminalCount int // registered devices with a terminal callback (distinct devices, not rows)
	LastSeq       int64
	Devices       []DeviceState
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// RequestRef is one entry of a device's request list.
type RequestRef struct {
	RequestID string
	Account   string
	Action    string
	State     string
}

// Store is the relay's durable storage. Every method is safe for concurrent use.
type Store interface {
	// Append stores a batch of callbacks in one transaction (group commit) and returns one
	// result per callback, in order. It returns only after the transaction is durable
	// (SQLite WAL with synchronous=FULL; a PostgreSQL commit). Duplicates (same request id and
	// content hash) are not stored again. A callback whose request was registered updates that
	// request's device states; one for an unregistered request creates it with Expected 0.
	Append(ctx context.Context, cbs []Callback) ([]AppendResult, error)
	// Quarantine stores a body that authenticated but is not a callback.
	Quarantine(ctx context.Context, q Quarantined) error
	// Register records an accepted action. Registering the same request id again with the same
	// account and devices is a no-op; with different ones, ErrConflict. Callbacks that arrived
	// before the registration count towards it.
	Register(ctx context.Context, r Registration) error
	// Request returns a request's summary; accounts, when non-empty, restricts the answer to
	// requests of those accounts (ErrNotFound otherwise). ErrGone after a purge.
	Request(ctx context.Context, requestID string, accounts []string) (*Request, error)
	// Callbacks returns up to limit callbacks of a request with Seq > after, in Seq order.
	Callbacks(ctx context.Context, requestID string, after int64, limit int) ([]Callback, error)
	// DeviceRequests lists the requests that registered or received a callback for a device
	// identifier, newest first; openOnly keeps those not terminal; accounts as in Request.
	DeviceRequests(ctx context.Context, key DeviceKey, openOnly bool, accounts []string) ([]RequestRef, error)
	// Purge deletes requests, callbacks and quarantined bodies last updated before the cutoff,
	// remembering purged request ids so that Request answers ErrGone.
	Purge(ctx context.Context, before time.Time) (int, error)
	// Changes delivers the ids of requests that received callbacks, including those appended
	// through other relay instances sharing the store (PostgreSQL LISTEN/NOTIFY). It is a hint:
	// waiters also re-query periodically. AnyChange ("") means hints may have been lost (the
	// feed reconnected): every waiter should look again. The channel closes when ctx ends.
	Changes(ctx context.Context) (<-chan string, error)
	// Ping checks that the store is reachable (for /readyz).
	Ping(ctx context.Context) error
	// Migrate brings the schema to the current version.
	Migrate(ctx context.Context) error
	Close() error
}
