package relay

import "sync"

// hub wakes long-polls waiting on a request id. A waiter takes the channel of its id before it
// queries the store, so a commit between its query and its wait still wakes it; notify closes
// the channel (waking every waiter of the id at once) and forgets it.
type hub struct {
	mu      sync.Mutex
	entries map[string]*hubEntry
}

type hubEntry struct {
	ch   chan struct{}
	refs int
}

func newHub() *hub { return &hub{entries: map[string]*hubEntry{}} }

// watch returns a channel closed at the next notify of id, and a release function to call when
// the waiter stops watching.
func (h *hub) watch(id string) (<-chan struct{}, func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.entries[id]
	if e == nil {
		e = &hubEntry{ch: make(chan struct{})}
		h.entries[id] = e
	}
	e.refs++
	return e.ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		e.refs--
		if e.refs == 0 && h.entries[id] == e {
			delete(h.entries, id)
		}
	}
}

// notify wakes every waiter of id.
func (h *hub) notify(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e := h.entries[id]; e != nil {
		close(e.ch)
		delete(h.entries, id)
	}
}

// notifyAll wakes every waiter: used when change hints may have been lost.
func (h *hub) notifyAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, e := range h.entries {
		close(e.ch)
		delete(h.entries, id)
	}
}
