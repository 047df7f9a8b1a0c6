package userspace

import (
	"net/netip"
	"sync"
	"time"
)

// affinity is the ClientIP session affinity table of one service: it maps a
// client IP to the backend its last connection went to. An entry lives for
// timeout after the client's last new connection or flow.
type affinity struct {
	timeout time.Duration
	now     func() time.Time

	mu        sync.Mutex
	entries   map[netip.Addr]affinityEntry
	nextSweep time.Time
}

// affinityEntry is one client's remembered backend.
type affinityEntry struct {
	backend netip.AddrPort
	expires time.Time
}

// newAffinity returns an empty table; now defaults to time.Now.
func newAffinity(timeout time.Duration, now func() time.Time) *affinity {
	if now == nil {
		now = time.Now
	}
	return &affinity{timeout: timeout, now: now, entries: make(map[netip.Addr]affinityEntry)}
}

// lookup returns the backend remembered for client, if it has not expired.
func (a *affinity) lookup(client netip.Addr) (netip.AddrPort, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.entries[client]
	if !ok {
		return netip.AddrPort{}, false
	}
	if !a.now().Before(e.expires) {
		delete(a.entries, client)
		return netip.AddrPort{}, false
	}
	return e.backend, true
}

// record remembers that client now uses backend, restarting its timeout.
// Expired entries are swept at most once per timeout (and at least one
// second apart), so the table stays bounded by the clients seen within
// about two timeouts.
func (a *affinity) record(client netip.Addr, backend netip.AddrPort) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if !now.Before(a.nextSweep) {
		for ip, e := range a.entries {
			if !now.Before(e.expires) {
				delete(a.entries, ip)
			}
		}
		a.nextSweep = now.Add(max(a.timeout, time.Second))
	}
	a.entries[client] = affinityEntry{backend: backend, expires: now.Add(a.timeout)}
}

// len returns the number of entries, expired or not (for tests).
func (a *affinity) len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.entries)
}
