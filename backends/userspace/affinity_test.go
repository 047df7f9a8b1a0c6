package userspace

import (
	"net/netip"
	"testing"
	"time"
)

// fakeClock is a manually advanced clock.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestAffinityExpiresAfterTimeoutAndRefreshes(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	a := newAffinity(10*time.Second, clk.now)
	client := netip.MustParseAddr("198.19.0.1")
	be := netip.MustParseAddrPort("198.18.0.1:80")
	if _, ok := a.lookup(client); ok {
		t.Fatal("empty table found an entry")
	}
	a.record(client, be)
	clk.advance(9 * time.Second)
	if got, ok := a.lookup(client); !ok || got != be {
		t.Fatalf("lookup before timeout = %v, %v; want %s", got, ok, be)
	}
	a.record(client, be) // a new connection refreshes the entry
	clk.advance(9 * time.Second)
	if _, ok := a.lookup(client); !ok {
		t.Fatal("entry expired although refreshed 9s ago (timeout 10s)")
	}
	clk.advance(time.Second)
	if got, ok := a.lookup(client); ok {
		t.Fatalf("entry %s still there 10s after the last connection", got)
	}
}

func TestAffinitySweepsExpiredEntries(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	a := newAffinity(5*time.Second, clk.now)
	be := netip.MustParseAddrPort("198.18.0.1:80")
	for i := range 100 {
		a.record(netip.AddrFrom4([4]byte{198, 19, 0, byte(i)}), be)
	}
	clk.advance(6 * time.Second)
	a.record(netip.MustParseAddr("198.19.1.1"), be)
	if n := a.len(); n != 1 {
		t.Fatalf("table holds %d entries after the sweep, want 1", n)
	}
}
