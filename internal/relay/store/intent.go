package store

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// The helpers below hold what every Store does the same way with intents and device lookups,
// so that SQLite and PostgreSQL differ only in how they read and write rows (devices.go and
// state.go hold the same for identifiers, registrations and request states).

// PrepareIntent checks and normalises an intent for PutIntent: id, account and action present,
// devices normalised (each with an identifier), attempt at least 1, state open, times set
// (CreatedAt defaults to now; UpdatedAt equals it).
func PrepareIntent(in Intent) (Intent, error) {
	if in.IntentID == "" || in.Account == "" || in.Action == "" {
		return Intent{}, fmt.Errorf("%w: an intent needs an id, an account and an action", ErrInvalid)
	}
	if len(in.Devices) == 0 {
		return Intent{}, fmt.Errorf("%w: an intent needs at least one device", ErrInvalid)
	}
	devs, err := NormalizeDevices(in.Devices)
	if err != nil {
		return Intent{}, err
	}
	in.Devices = devs
	if in.Supersedes == in.IntentID {
		in.Supersedes = ""
	}
	if in.Attempt < 1 {
		in.Attempt = 1
	}
	if in.CreatedAt.IsZero() {
		in.CreatedAt = time.Now()
	}
	in.CreatedAt = in.CreatedAt.UTC()
	in.UpdatedAt = in.CreatedAt
	in.State, in.RequestID, in.Reason = IntentOpen, "", ""
	return in, nil
}

// SameIntent reports whether a stored intent and a retried write are the same intent: same
// account, action, devices and body hash. Attempt and Supersedes are not compared: they
// describe how the intent came to be, not what it is.
func SameIntent(stored, in *Intent) bool {
	return stored.Account == in.Account && stored.Action == in.Action &&
		stored.BodySHA256 == in.BodySHA256 && SameDevices(stored.Devices, in.Devices)
}

// Supersede resolves old, the stored intent that in.Supersedes names, in favour of in, and
// reports whether it changed: an intent of another account is ErrConflict, one no longer open
// stays as it is.
func Supersede(old *Intent, in *Intent) (bool, error) {
	if old.Account != in.Account {
		return false, fmt.Errorf("%w: intent %s supersedes an intent of another account", ErrConflict, in.IntentID)
	}
	if old.State != IntentOpen {
		return false, nil
	}
	old.State, old.Reason, old.UpdatedAt = IntentResolved, "superseded by "+in.IntentID, in.CreatedAt
	return true, nil
}

// CheckIntentChange validates a change for UpdateIntent and defaults its time to now.
func CheckIntentChange(ch IntentChange) (IntentChange, error) {
	switch ch.State {
	case IntentAccepted:
		if ch.RequestID == "" {
			return ch, fmt.Errorf("%w: accepted needs the request id", ErrInvalid)
		}
	case IntentRefused:
		if ch.RequestID != "" {
			return ch, fmt.Errorf("%w: a refused intent has no request id", ErrInvalid)
		}
	case IntentResolved:
	default:
		return ch, fmt.Errorf("%w: an intent can only become %s, %s or %s", ErrInvalid, IntentAccepted, IntentRefused, IntentResolved)
	}
	if ch.At.IsZero() {
		ch.At = time.Now()
	}
	ch.At = ch.At.UTC()
	return ch, nil
}

// ApplyIntentChange is the state machine of UpdateIntent on a stored intent: it returns the
// intent after the change and whether anything changes (false: the same change was made
// before), or ErrIntentClosed.
func ApplyIntentChange(cur Intent, ch IntentChange) (Intent, bool, error) {
	if cur.State != IntentOpen {
		if cur.State == ch.State && cur.RequestID == ch.RequestID {
			return cur, false, nil
		}
		return cur, false, ErrIntentClosed
	}
	cur.State, cur.RequestID, cur.Reason, cur.UpdatedAt = ch.State, ch.RequestID, ch.Reason, ch.At
	return cur, true, nil
}

// Allowed reports whether a row of account is visible through a token scoped to accounts
// (none: every account).
func Allowed(account string, accounts []string) bool {
	return len(accounts) == 0 || slices.Contains(accounts, account)
}

// LookupBuilder assembles the records of LookupDevices from the rows a store's queries return,
// with the same merging, narrowing and ordering for every store.
type LookupBuilder struct {
	recs     []DeviceRecord
	requests []map[string]bool           // per device: request ids already added
	hits     []map[string][]int          // per device: open intent id -> positions of its entries
	latest   []map[string]LatestCallback // per device: action -> newest terminal callback
	intents  map[string]*Intent
}

// NewLookupBuilder starts the records of n devices.
func NewLookupBuilder(n int) *LookupBuilder {
	return &LookupBuilder{
		recs:     make([]DeviceRecord, n),
		requests: make([]map[string]bool, n),
		hits:     make([]map[string][]int, n),
		latest:   make([]map[string]LatestCallback, n),
		intents:  map[string]*Intent{},
	}
}

// AddRequest adds an open request found through one of the device's identifiers.
func (b *LookupBuilder) AddRequest(dev int, r RequestRef) {
	if b.requests[dev] == nil {
		b.requests[dev] = map[string]bool{}
	}
	if !b.requests[dev][r.RequestID] {
		b.requests[dev][r.RequestID] = true
		b.recs[dev].OpenRequests = append(b.recs[dev].OpenRequests, r)
	}
}

// AddIntentHit records that entry idx of an open intent names one of the device's identifiers.
func (b *LookupBuilder) AddIntentHit(dev int, intentID string, idx int) {
	if b.hits[dev] == nil {
		b.hits[dev] = map[string][]int{}
	}
	if !slices.Contains(b.hits[dev][intentID], idx) {
		b.hits[dev][intentID] = append(b.hits[dev][intentID], idx)
	}
}

// HitIntents lists the ids of the intents AddIntentHit named, for the store to load.
func (b *LookupBuilder) HitIntents() []string {
	seen := map[string]bool{}
	var out []string
	for _, h := range b.hits {
		for id := range h {
			if !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	slices.Sort(out)
	return out
}

// AddIntent provides a stored intent named by a hit.
func (b *LookupBuilder) AddIntent(in *Intent) { b.intents[in.IntentID] = in }

// MaxUnregisteredLatest is how many requests nobody registered a record reports (the newest).
const MaxUnregisteredLatest = 8

// AddLatest offers a terminal callback of an action carrying one of the device's identifiers;
// the newest by ReceivedAt, then Seq, then request id is kept per action. Requests nobody
// registered (action "") are kept one per request: their actions are unknown, so the newest of
// them says nothing about the others (one may be the download that enabled a profile, another
// a plan change whose callback was delivered again later).
func (b *LookupBuilder) AddLatest(dev int, l LatestCallback) {
	if b.latest[dev] == nil {
		b.latest[dev] = map[string]LatestCallback{}
	}
	key := l.Action
	if key == "" {
		key = "\x00" + l.RequestID
	}
	cur, ok := b.latest[dev][key]
	if !ok || newer(l, cur) {
		b.latest[dev][key] = l
	}
}

func countUnregistered(l []LatestCallback) int {
	n := 0
	for n < len(l) && l[n].Action == "" {
		n++
	}
	return n
}

func newer(a, b LatestCallback) bool {
	if c := a.ReceivedAt.Compare(b.ReceivedAt); c != 0 {
		return c > 0
	}
	if a.Seq != b.Seq {
		return a.Seq > b.Seq
	}
	return a.RequestID > b.RequestID
}

// Records returns the records: open intents that are visible to accounts, narrowed to the
// device's entries; every list non-nil and ordered (requests and intents newest first, latest
// by action).
func (b *LookupBuilder) Records(accounts []string) []DeviceRecord {
	for dev := range b.recs {
		r := &b.recs[dev]
		if r.OpenRequests == nil {
			r.OpenRequests = []RequestRef{}
		}
		slices.SortFunc(r.OpenRequests, func(x, y RequestRef) int {
			if c := y.CreatedAt.Compare(x.CreatedAt); c != 0 {
				return c
			}
			return cmp.Compare(x.RequestID, y.RequestID)
		})
		r.OpenIntents = []Intent{}
		for id, idxs := range b.hits[dev] {
			in := b.intents[id]
			if in == nil || in.State != IntentOpen || !Allowed(in.Account, accounts) {
				continue
			}
			n := *in
			slices.Sort(idxs)
			n.Devices = make([][]DeviceKey, 0, len(idxs))
			for _, i := range idxs {
				if i >= 0 && i < len(in.Devices) {
					n.Devices = append(n.Devices, in.Devices[i])
				}
			}
			r.OpenIntents = append(r.OpenIntents, n)
		}
		slices.SortFunc(r.OpenIntents, func(x, y Intent) int {
			if c := y.CreatedAt.Compare(x.CreatedAt); c != 0 {
				return c
			}
			return cmp.Compare(x.IntentID, y.IntentID)
		})
		r.Latest = make([]LatestCallback, 0, len(b.latest[dev]))
		for _, l := range b.latest[dev] {
			r.Latest = append(r.Latest, l)
		}
		// By action; the requests nobody registered ("", first) newest first, at most
		// MaxUnregisteredLatest of them.
		slices.SortFunc(r.Latest, func(x, y LatestCallback) int {
			if c := cmp.Compare(x.Action, y.Action); c != 0 {
				return c
			}
			if newer(x, y) {
				return -1
			}
			return 1
		})
		if n := countUnregistered(r.Latest); n > MaxUnregisteredLatest {
			r.Latest = slices.Delete(r.Latest, MaxUnregisteredLatest, n)
		}
	}
	return b.recs
}
