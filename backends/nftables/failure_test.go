package nftables

import (
	"maps"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lbkit/lbkit/lb"
)

// bookkeeping is a copy of what a datapath believes the tables hold.
type bookkeeping struct {
	services map[lb.ServiceKey]*lb.ServiceState
	hairpin  map[netip.Addr]int32
	chains   map[chainKey]struct{}
}

func bookkeepingOf(d *Datapath) bookkeeping {
	b := bookkeeping{
		services: make(map[lb.ServiceKey]*lb.ServiceState),
		hairpin:  maps.Clone(d.hairpin),
		chains:   maps.Clone(d.chains),
	}
	for k := range d.services.All() {
		_, st, _ := d.services.Get(k)
		b.services[k] = st
	}
	return b
}

func (b bookkeeping) equal(o bookkeeping) bool {
	return maps.Equal(b.services, o.services) && maps.Equal(b.hairpin, o.hairpin) && maps.Equal(b.chains, o.chains)
}

// TestFailedSyncKeepsBookkeeping: a transaction the kernel rejects changes
// neither the tables nor the bookkeeping (applied states, hairpin counts,
// chains), and the next sync converges: the tables hold the snapshot, as
// reading them back shows.
func TestFailedSyncKeepsBookkeeping(t *testing.T) {
	w := newWorld(t, Options{})
	web := simpleService("web", 1, lb.TCP)
	sticky := simpleService("sticky", 2, lb.TCP)
	sticky.Affinity = lb.SessionAffinity{Type: lb.AffinityClientIP, Timeout: time.Hour}
	extra := simpleService("extra", 3, lb.TCP)
	w.set(web, []lb.Endpoint{w.backend(0), w.backend(1)}, true)
	w.set(sticky, []lb.Endpoint{w.backend(0)}, false)
	before := bookkeepingOf(w.d)

	// Someone deletes web's first slot: the next sync of web, which
	// deletes that element, is rejected as a whole (ENOENT).
	w.nft("delete", "element", "ip", DefaultTable, "endpoints", "{ 198.18.100.1 . tcp . 80 . 0x00000000 }")
	// The sync changes elements, hairpin addresses (backend 2 is new) and
	// chains (sticky's per-backend chains, two slots).
	next := w.snap.
		With(lb.Select(web, []lb.Endpoint{w.backend(1), w.backend(2)}, lb.Node{})).
		With(lb.Select(sticky, []lb.Endpoint{w.backend(0), w.backend(1)}, lb.Node{})).
		With(lb.Select(extra, []lb.Endpoint{w.backend(2)}, lb.Node{}))
	cs := lb.ChangeSet{Changed: map[lb.ServiceKey]struct{}{"web": {}, "sticky": {}, "extra": {}}}
	if err := w.d.Sync(t.Context(), next, cs); err == nil {
		t.Fatal("a sync deleting an element that is gone succeeded; want the kernel to reject it")
	}
	if after := bookkeepingOf(w.d); !after.equal(before) {
		t.Errorf("a rejected transaction changed the bookkeeping:\nbefore %+v\nafter  %+v", before, after)
	}
	if w.d.ready {
		t.Error("after a failed sync the datapath still trusts its bookkeeping")
	}
	if list := w.nft("list", "table", "ip", DefaultTable); strings.Contains(list, vip(3).String()) {
		t.Errorf("the rejected transaction programmed extra anyway:\n%s", list)
	}

	// The next sync, even a partial one of another service, converges.
	w.snap = next
	if err := w.d.Sync(t.Context(), next, lb.ChangeSet{Changed: map[lb.ServiceKey]struct{}{"extra": {}}}); err != nil {
		t.Fatalf("sync after the failure: %v", err)
	}
	for _, key := range []lb.ServiceKey{"web", "sticky", "extra"} {
		want, _ := next.Service(key)
		if _, st, ok := w.d.services.Get(key); !ok || st != want {
			t.Errorf("after converging, %s is held from %p (held %v), want the snapshot's %p", key, st, ok, want)
		}
	}
	if len(w.d.hairpin) != 3 {
		t.Errorf("hairpin counts %v, want the three backends", w.d.hairpin)
	}
	seen := map[string]bool{}
	for range 40 {
		seen[w.request(web.Frontends[0])] = true
	}
	if want := map[string]bool{"backend1": true, "backend2": true}; !maps.Equal(seen, want) {
		t.Errorf("web reached %v, want %v", seen, want)
	}
	if got := w.request(extra.Frontends[0]); got != "backend2" {
		t.Errorf("extra reached %s, want backend2", got)
	}
	// Read back, the tables are exactly what the bookkeeping says.
	w.d.gen = 0
	if res := w.fullSync(); res.trusted || res.added+res.deleted != 0 {
		t.Errorf("full sync reading the tables back: trusted %v, %d elements added, %d deleted; want read back, none", res.trusted, res.added, res.deleted)
	}
}
