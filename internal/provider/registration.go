package provider

import "sync"

// registrationGuard remembers, per account, whether this provider process has checked that
// the account's DeviceProfileService callback registration points at the configured relay.
// The check runs before the first profile action of a process and again after a
// thingspace_callback_listener changed the registration.
type registrationGuard struct {
	mu      sync.Mutex
	checked map[string]bool
}

// Invalidate makes the next profile action on account check the registration again. The
// callback listener resource calls it after it registered or deleted a listener.
func (g *registrationGuard) Invalidate(account string) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.checked, account)
}
