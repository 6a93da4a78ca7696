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
	// ErrConflict: a request id was registered again with other devices or another account, or
	// an intent id was written again with another account, action, devices or body hash.
	ErrConflict = errors.New("store: conflicting registration")
	// ErrIntentClosed: an intent that is no longer open was asked to change to another state or
	// request id (the API answers 409).
	ErrIntentClosed = errors.New("store: the intent is no longer open")
	// ErrInvalid: an intent or an intent change that no store could accept (no devices, a
	// device without identifiers, an unknown state...); the API answers 400.
	ErrInvalid = errors.New("store: invalid")
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
	// Forward queues the callback in the outbox too (see Outbox), in the same transaction; a
	// duplicate is not queued again.
	Forward bool
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
	CreatedAt time.Time // the registration's CreatedAt, or the first callback's ReceivedAt
}

// Intent states. An intent is written open before the carrier action is sent and leaves open
// exactly once: accepted (the carrier answered a request id, registered with it), refused (the
// carrier answered an error, nothing was started) or resolved (evidence settled the outcome,
// or a newer intent superseded it).
const (
	IntentOpen     = "open"
	IntentAccepted = "accepted"
	IntentRefused  = "refused"
	IntentResolved = "resolved"
)

// Intent is a write-ahead record of a carrier action: written before the POST, so that an
// action whose outcome is unknown (the answer was lost, the provider was killed) keeps blocking
// its devices until evidence resolves it.
type Intent struct {
	IntentID   string
	Account    string
	Action     string
	Devices    [][]DeviceKey // one inner list per device, every identifier sent for it
	BodySHA256 string        // lowercase hex SHA-256 of the action's request body
	Attempt    int
	Supersedes string // the intent this one replaces ("" = none)
	State      string
	RequestID  string
	Reason     string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// PutIntentResult is the outcome of PutIntent.
type PutIntentResult struct {
	Intent     *Intent // the stored intent (the existing one when not Created)
	Created    bool
	Superseded bool // an open intent named by Supersedes was resolved in the same transaction
}

// IntentChange moves an open intent to State (accepted, refused or resolved).
type IntentChange struct {
	State     string
	RequestID string // required for accepted, optional for resolved, empty for refused
	Reason    string
	At        time.Time // the new UpdatedAt, and the CreatedAt of an accepted intent's registration
}

// UpdateIntentResult is the outcome of UpdateIntent.
type UpdateIntentResult struct {
	Intent  *Intent
	Changed bool // false: the same change had been made before (a retried call)
}

// LatestCallback is the newest terminal callback of one action for a device.
type LatestCallback struct {
	Action     string // the registered request's action; "" when the request was never registered
	RequestID  string
	Seq        int64
	ReceivedAt time.Time
	Status     string
	Terminal   bool
	Body       []byte // the stored (redacted) JSON body
}

// DeviceRecord is what the relay knows of one device, merged over all its identifiers: a
// request, intent or callback found through two of them appears once.
type DeviceRecord struct {
	OpenRequests []RequestRef     // non-terminal requests naming any identifier, newest first
	OpenIntents  []Intent         // open intents naming any identifier, newest first
	Latest       []LatestCallback // per action, ordered by action
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
	// PutIntent writes an open intent durably (Devices normalised as in Register: kinds lower
	// case, empty ids and repeated identifiers dropped; every device keeps at least one id).
	// Writing the same id again with the same account, action, devices (in any order) and body
	// hash returns the stored intent, whatever its state now, with Created false; with anything
	// else, ErrConflict. When Supersedes names an open intent of the same account, that intent
	// becomes resolved ("superseded by <id>") in the same transaction; one of another account
	// is ErrConflict.
	PutIntent(ctx context.Context, in Intent) (PutIntentResult, error)
	// UpdateIntent moves an open intent to accepted, refused or resolved. Accepted registers
	// the request (as Register would, with the intent's account, action and devices) in the
	// same transaction: ErrConflict when that request id is registered otherwise, and then the
	// intent stays open. On an intent no longer open, the same state and request id again is
	// a no-op (Changed false) and anything else ErrIntentClosed. ErrNotFound for an unknown
	// intent, or one of an account outside accounts (when non-empty).
	UpdateIntent(ctx context.Context, intentID string, ch IntentChange, accounts []string) (UpdateIntentResult, error)
	// Intent returns one intent; ErrNotFound as in UpdateIntent.
	Intent(ctx context.Context, intentID string, accounts []string) (*Intent, error)
	// LookupDevices returns one record per device, in order, each merged over every identifier
	// of the device, from one consistent read: the non-terminal requests (as DeviceRequests
	// with openOnly), the open intents, and per action the newest terminal callback (by
	// ReceivedAt, then Seq) carrying any identifier. The Devices of an intent in a record are
	// only its entries naming that device (a record stays small when one intent covers
	// thousands of devices). accounts filters requests and callbacks by their request's
	// account, and intents by theirs.
	LookupDevices(ctx context.Context, devices [][]DeviceKey, accounts []string) ([]DeviceRecord, error)
	// Purge deletes requests, callbacks and quarantined bodies last updated before the cutoff,
	// remembering purged request ids so that Request answers ErrGone, and intents no longer
	// open last updated before it. Open intents are kept whatever their age: deleting one
	// would unblock devices whose action has an unknown outcome. The outbox is not
	// purged either: its entries were acknowledged to ThingSpace and leave only when delivered.
	// It returns the number of requests purged.
	Purge(ctx context.Context, before time.Time) (int, error)
	// Changes delivers the ids of requests that received callbacks, including those appended
	// through other relay instances sharing the store (PostgreSQL LISTEN/NOTIFY). It is a hint:
	// waiters also re-query periodically. AnyChange ("") means hints may have been lost (the
	// feed reconnected): every waiter should look again. The channel closes when ctx ends.
	Changes(ctx context.Context) (<-chan string, error)
	// Outbox: the callbacks to forward (-forward-to).
	Outbox
	// Ping checks that the store is reachable (for /readyz).
	Ping(ctx context.Context) error
	// Migrate brings the schema to the current version.
	Migrate(ctx context.Context) error
	Close() error
}
