package thingspace

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// ReadCoalescer serves the device reads of many resource instances from shared paged listings
// of the v1 device list, one account at a time, like Coalescer does for actions: a plan over
// 1,000 profiles reads its devices with one listing of the account (2,000 devices a page)
// instead of 1,000 single reads under the rate limit.
//
// Every read names a freshness bound, notBefore: its answer comes from a read that started at
// or after it. A caller that must not see data older than an action it confirms passes the
// time of its call; a refresh passes time.Now() less the TTL, and may be served by the
// snapshot of a recent listing.
//
// Policy, per account and process:
//   - The first DefaultReadSingles (2) distinct devices asked are read one by one (GetDevice), so a plan
//     over one profile in a 100,000-device account never lists the account, however often it
//     looks at its device.
//   - After that, reads that cannot be served by a snapshot join a batch: the batch goes out
//     when no other read joined it for a short quiet period, at the latest when the window
//     ends, and never while another listing of the account runs (its window starts again
//     when that one ends). A read whose bound a running listing satisfies (it started at or
//     after notBefore) joins that listing instead.
//   - A batch wanting fewer distinct devices than a listing of the account has pages is read
//     one by one instead, when every reader in it wants data from after its call (a snapshot
//     would serve none of them), or when the account is large (more than listAbortFloor
//     pages). A batch with a reader that accepts older data (a refresh) is listed in a small
//     account: its snapshot serves the refreshes that follow.
//   - A listing of an account whose size is not known pages at least listAbortFloor pages,
//     and gives up once it has read as many pages as its readers want distinct devices: those
//     it has not found are read one by one, and the account counts as large: the first
//     listing of a large account costs at most about twice the single reads it replaces.
//   - A complete listing's snapshot serves later reads whose bound it satisfies for the TTL;
//     a device absent from it is not in the account (ErrDeviceNotFound). Every action the
//     client sends for an account (PostAction, so the Coalescer too) drops the account's
//     snapshot before and after its POST, and keeps a listing that started earlier from
//     serving readers that came after it: nothing asked after an action is answered with
//     data taken before it.
//
// A listing runs on a context of its own (bounded by listTimeout) that keeps the first
// reader's values for logging: a reader whose ctx ends gets ctx.Err() and the listing goes on
// for the others. An error of a listing reaches every reader that waited on it.
type ReadCoalescer struct {
	c       *Client
	ttl     time.Duration
	window  time.Duration
	singles int

	mu       sync.Mutex
	accounts map[string]*accountReads
}

// Defaults of the read coalescer (Config.ReadTTL, Config.ReadWindow).
const (
	DefaultReadTTL    = 30 * time.Second
	DefaultReadWindow = 100 * time.Millisecond
	// DefaultReadSingles is how many distinct devices of an account are read one by one
	// before reads of it are served by listings.
	DefaultReadSingles = 2
)

const (
	// readQuiet is how long no other read may have joined a batch before it goes out (bounded
	// by the window): Terraform starts its parallel reads a few milliseconds apart.
	readQuiet = 20 * time.Millisecond
	// listTimeout bounds one shared listing, which runs on a context of its own.
	listTimeout = 5 * time.Minute
	// tolerantAge: a reader whose bound is more than this before its call accepts a snapshot
	// (a refresh); one within it wants data from after its call.
	tolerantAge = time.Second
	// listAbortFloor is how many pages (20,000 devices) a listing of an account of unknown
	// size reads before it may give up in favour of single reads.
	listAbortFloor = 10
	// singlesParallel bounds the single reads of one batch in flight at once.
	singlesParallel = 8
)

// errStopListing ends the paging of a listing that gives up.
var errStopListing = errors.New("listing stopped")

func newReadCoalescer(c *Client, ttl, window time.Duration) *ReadCoalescer {
	return &ReadCoalescer{c: c, ttl: ttl, window: window, singles: DefaultReadSingles, accounts: map[string]*accountReads{}}
}

// Reads returns the client's read coalescer.
func (c *Client) Reads() *ReadCoalescer { return c.reads }

// TTL is how long a listing's snapshot serves reads that accept data that old.
func (rc *ReadCoalescer) TTL() time.Duration { return rc.ttl }

// accountReads is what the coalescer knows of one account.
type accountReads struct {
	name string
	// seen holds the distinct devices asked until there are more than the singles; then
	// listed is set and seen dropped.
	seen   map[string]bool
	listed bool
	// gen counts the actions sent for the account; a listing or snapshot of an older
	// generation serves nobody who came after the action.
	gen  uint64
	snap *snapshot
	// pages is how many pages the last complete listing had (0: none yet); atLeast, that a
	// listing gave up after pages-1 pages (0: none did since).
	pages, atLeast int
	running        *listing // the listing being read (nil: none)
	next           *listing // the batch collecting readers (nil: none)
}

// snapshot is a complete listing: every device of the account, by every identifier.
type snapshot struct {
	at   time.Time // when its listing started
	gen  uint64
	byID map[string]*tsapi.Device
}

// listing is one batch of readers and the read that serves them: a paged listing of the
// account, or single reads of the devices they want.
type listing struct {
	a   *accountReads
	ctx context.Context // the first reader's values, without its cancellation
	// opened is when the first reader came; started when the read began (zero before).
	opened, started time.Time
	gen             uint64
	timer           *time.Timer
	singlesOnly     bool // read one by one from the start (fewer devices than pages)
	tolerant        bool // a reader accepts data older than its call (a refresh)
	closed          bool // takes no more readers (given up, or done)
	wanted          map[string]tsapi.DeviceID
	waiters         int
	done            chan struct{}

	// Set before done is closed.
	found    map[string]*tsapi.Device // nil value: not in the account (single read)
	errs     map[string]error         // single reads that failed
	complete bool                     // found is the whole account: a device not in it is not found
	err      error
}

// readKey identifies a device by one identifier.
func readKey(id tsapi.DeviceID) string { return tsapi.NormalizeKind(id.Kind) + ":" + id.ID }

// Device reads one device, from data fetched at or after notBefore; it wraps
// ErrDeviceNotFound when the account has no such device.
func (rc *ReadCoalescer) Device(ctx context.Context, account string, id tsapi.DeviceID, notBefore time.Time) (*tsapi.Device, error) {
	devs, err := rc.Devices(ctx, account, []tsapi.DeviceID{id}, notBefore)
	if err != nil {
		return nil, err
	}
	if devs[0] == nil {
		return nil, fmt.Errorf("%s %s in account %s: %w", id.Kind, id.ID, account, ErrDeviceNotFound)
	}
	return devs[0], nil
}

// Devices reads devices by one identifier each, from data fetched at or after notBefore. A
// device not in the account is nil. Each caller gets its own copies.
func (rc *ReadCoalescer) Devices(ctx context.Context, account string, ids []tsapi.DeviceID, notBefore time.Time) ([]*tsapi.Device, error) {
	if err := requireAccount(account); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return []*tsapi.Device{}, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = readKey(id)
	}
	rc.mu.Lock()
	a := rc.account(account)
	a.ask(ctx, keys, rc.singles)
	if s := a.fresh(notBefore, rc.ttl); s != nil {
		rc.mu.Unlock()
		out := make([]*tsapi.Device, len(keys))
		for i, k := range keys {
			out[i] = cloneDevice(s.byID[k])
		}
		return out, nil
	}
	if !a.listed {
		rc.mu.Unlock()
		return rc.singleReads(ctx, account, ids)
	}
	l := rc.joinLocked(ctx, a, keys, ids, notBefore)
	rc.mu.Unlock()

	select {
	case <-l.done:
		return l.answer(ids, keys)
	case <-ctx.Done():
	}
	rc.mu.Lock()
	l.waiters--
	if a.next == l && l.waiters == 0 {
		// Nobody waits on the batch any more and it has not started: drop it.
		l.timer.Stop()
		a.next = nil
	}
	rc.mu.Unlock()
	return nil, ctx.Err()
}

// Invalidate forgets what is known of the account's devices: an action was (or is about to
// be) sent for it. It is safe on a nil coalescer.
func (rc *ReadCoalescer) Invalidate(account string) {
	if rc == nil {
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if a := rc.accounts[account]; a != nil {
		a.gen++
		a.snap = nil
	}
}

func (rc *ReadCoalescer) account(name string) *accountReads {
	a := rc.accounts[name]
	if a == nil {
		a = &accountReads{name: name, seen: map[string]bool{}}
		rc.accounts[name] = a
	}
	return a
}

// ask counts the distinct devices asked until reads of the account are served by listings.
func (a *accountReads) ask(ctx context.Context, keys []string, singles int) {
	if a.listed {
		return
	}
	for _, k := range keys {
		a.seen[k] = true
	}
	if len(a.seen) > singles {
		a.listed = true
		a.seen = nil
		logger(ctx).Debug("more than a few devices of the account were read: reads are now served by shared listings of the account",
			"account", a.name, "single_reads_before", singles)
	}
}

// fresh returns the account's snapshot if it may serve a read bounded by notBefore. A
// snapshot past the TTL or older than the account's last action is dropped.
func (a *accountReads) fresh(notBefore time.Time, ttl time.Duration) *snapshot {
	s := a.snap
	if s == nil {
		return nil
	}
	if s.gen != a.gen || time.Since(s.at) > ttl {
		a.snap = nil
		return nil
	}
	if s.at.Before(notBefore) {
		return nil
	}
	return s
}

// joinLocked adds a reader to the running listing when it satisfies the reader's bound, and
// otherwise to the next batch (opening it).
func (rc *ReadCoalescer) joinLocked(ctx context.Context, a *accountReads, keys []string, ids []tsapi.DeviceID, notBefore time.Time) *listing {
	if r := a.running; r != nil && !r.closed && r.gen == a.gen && !r.started.Before(notBefore) {
		r.add(keys, ids)
		return r
	}
	l := a.next
	if l == nil {
		l = &listing{a: a, ctx: context.WithoutCancel(ctx), opened: time.Now(), wanted: map[string]tsapi.DeviceID{}, done: make(chan struct{})}
		a.next = l
	}
	l.add(keys, ids)
	if notBefore.Before(time.Now().Add(-tolerantAge)) {
		l.tolerant = true
	}
	// The batch goes out once nobody joined for the quiet period, at the latest when the
	// window ends.
	wait := min(readQuiet, rc.window, time.Until(l.opened.Add(rc.window)))
	if l.timer == nil {
		l.timer = time.AfterFunc(wait, func() { rc.fire(l) })
	} else {
		l.timer.Reset(wait)
	}
	return l
}

func (l *listing) add(keys []string, ids []tsapi.DeviceID) {
	l.waiters++
	for i, k := range keys {
		l.wanted[k] = ids[i]
	}
}

// fire starts a batch whose window ended, unless another listing of the account runs (its end
// starts the batch's window again).
func (rc *ReadCoalescer) fire(l *listing) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	a := l.a
	if a.next != l {
		return // started, or dropped
	}
	if a.running != nil {
		return
	}
	rc.startLocked(l)
}

func (rc *ReadCoalescer) startLocked(l *listing) {
	a := l.a
	a.next = nil
	a.running = l
	l.timer.Stop()
	l.started = time.Now()
	l.gen = a.gen
	cost := max(a.pages, a.atLeast)
	if k := len(l.wanted); cost > 0 && k < cost && (!l.tolerant || cost > listAbortFloor) {
		l.singlesOnly = true
		l.closed = true
	}
	go rc.run(l, len(l.wanted), l.waiters, cost)
}

// run reads what a batch's readers want and hands it to them.
func (rc *ReadCoalescer) run(l *listing, wanted, waiters, cost int) {
	ctx, cancel := context.WithTimeout(l.ctx, listTimeout)
	defer cancel()
	log := logger(ctx)
	a := l.a
	found := map[string]*tsapi.Device{}
	errs := map[string]error{}
	complete := false
	pages, devices, singles := 0, 0, 0
	var err error
	if l.singlesOnly {
		log.Debug("reading devices one by one: a listing of the account would cost more requests",
			"account", a.name, "devices_wanted", wanted, "readers", waiters, "account_pages", cost)
	} else {
		log.Debug("listing the account's devices for concurrent reads", "account", a.name, "devices_wanted", wanted, "readers", waiters)
		err = rc.c.listPages(ctx, tsapi.DeviceListRequest{AccountName: a.name}, func(devs []tsapi.Device, more bool) error {
			pages++
			for i := range devs {
				d := &devs[i]
				devices++
				for _, id := range d.DeviceIDs {
					if id.ID != "" {
						found[readKey(id)] = d
					}
				}
			}
			if !more {
				complete = true
				return nil
			}
			rc.mu.Lock()
			defer rc.mu.Unlock()
			if k := len(l.wanted); pages >= max(k, listAbortFloor) {
				// As many pages as single reads of every device wanted would have cost: the
				// rest are read one by one.
				l.closed = true
				a.atLeast = max(a.atLeast, pages+1)
				log.Debug("giving up the listing of a large account; the devices not found yet are read one by one",
					"account", a.name, "pages", pages, "devices", devices, "devices_wanted", k)
				return errStopListing
			}
			return nil
		})
		if errors.Is(err, errStopListing) {
			err = nil
		}
	}
	if err == nil && !complete {
		rc.mu.Lock()
		var todo []string
		for k := range l.wanted {
			if _, ok := found[k]; !ok {
				todo = append(todo, k)
			}
		}
		rc.mu.Unlock()
		singles = len(todo)
		rc.readEach(ctx, a.name, l.wanted, todo, found, errs)
	}

	rc.mu.Lock()
	defer rc.mu.Unlock()
	l.found, l.errs, l.complete, l.err = found, errs, complete, err
	l.closed = true
	if complete {
		a.pages, a.atLeast = pages, 0
		if l.gen == a.gen {
			a.snap = &snapshot{at: l.started, gen: l.gen, byID: found}
		}
	}
	switch {
	case err != nil:
		log.Debug("the shared device read failed; every reader gets its error", "account", a.name, "pages", pages,
			"readers", l.waiters, "error", err.Error())
	case complete:
		log.Debug("listed the account's devices", "account", a.name, "pages", pages, "devices", devices,
			"readers", l.waiters, "devices_wanted", len(l.wanted), "kept_as_snapshot", l.gen == a.gen,
			"duration_ms", time.Since(l.started).Milliseconds())
	default:
		log.Debug("read the devices", "account", a.name, "pages", pages, "single_reads", singles,
			"readers", l.waiters, "devices_wanted", len(l.wanted), "duration_ms", time.Since(l.started).Milliseconds())
	}
	a.running = nil
	close(l.done)
	if n := a.next; n != nil {
		// The batch's window starts again now that it can go: the readers this listing
		// answered make room for others (Terraform starts the next instances), which join it
		// within the quiet period instead of making a batch of their own.
		n.opened = time.Now()
		n.timer.Reset(min(readQuiet, rc.window))
	}
}

// readEach reads the devices of keys one by one (a few at a time) into found (nil: not in
// the account) or errs.
func (rc *ReadCoalescer) readEach(ctx context.Context, account string, wanted map[string]tsapi.DeviceID, keys []string, found map[string]*tsapi.Device, errs map[string]error) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, singlesParallel)
	for _, k := range keys {
		id := wanted[k]
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			d, err := rc.c.GetDevice(ctx, account, id)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				found[k] = d
			case IsDeviceNotFound(err):
				found[k] = nil
			default:
				errs[k] = err
			}
		}()
	}
	wg.Wait()
}

// singleReads reads devices one by one on the caller's context.
func (rc *ReadCoalescer) singleReads(ctx context.Context, account string, ids []tsapi.DeviceID) ([]*tsapi.Device, error) {
	out := make([]*tsapi.Device, len(ids))
	for i, id := range ids {
		d, err := rc.c.GetDevice(ctx, account, id)
		if IsDeviceNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[i] = d
	}
	return out, nil
}

// answer is a reader's part of a finished batch.
func (l *listing) answer(ids []tsapi.DeviceID, keys []string) ([]*tsapi.Device, error) {
	if l.err != nil {
		return nil, l.err
	}
	out := make([]*tsapi.Device, len(keys))
	for i, k := range keys {
		if d, ok := l.found[k]; ok {
			out[i] = cloneDevice(d)
			continue
		}
		if err := l.errs[k]; err != nil {
			return nil, err
		}
		if !l.complete {
			return nil, fmt.Errorf("thingspace: %s %s was not read (a bug in the read coalescer)", ids[i].Kind, ids[i].ID)
		}
	}
	return out, nil
}

// cloneDevice copies a shared device for one caller (nil stays nil).
func cloneDevice(d *tsapi.Device) *tsapi.Device {
	if d == nil {
		return nil
	}
	c := *d
	c.CarrierInformations = append([]tsapi.CarrierInformation(nil), d.CarrierInformations...)
	c.DeviceIDs = append(tsapi.DeviceIDs(nil), d.DeviceIDs...)
	c.ExtendedAttributes = append([]tsapi.KeyValue(nil), d.ExtendedAttributes...)
	c.GroupNames = append([]string(nil), d.GroupNames...)
	return &c
}
