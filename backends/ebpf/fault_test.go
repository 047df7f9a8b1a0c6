package ebpf

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/lbkit/lbkit/bpf"
	"github.com/lbkit/lbkit/lb"
)

// multiState builds a service with one TCP frontend per vip (port 80) over
// backends 198.18.2.10+i:8080 for i in idx, with weights (nil: all 1).
func multiState(key string, sched lb.Scheduler, vips []string, weights []uint32, idx ...int) *lb.ServiceState {
	st := &lb.ServiceState{Service: &lb.Service{Key: lb.ServiceKey(key), Scheduler: sched}}
	for _, vip := range vips {
		fe := lb.Frontend{Addr: netip.MustParseAddr(vip), Port: 80, Protocol: lb.TCP, Kind: lb.ClusterIP}
		st.Service.Frontends = append(st.Service.Frontends, fe)
		fs := lb.FrontendState{Frontend: fe}
		for j, i := range idx {
			w := uint32(1)
			if weights != nil {
				w = weights[j]
			}
			fs.Backends = append(fs.Backends, lb.Backend{Addr: netip.MustParseAddrPort(fmt.Sprintf("198.18.2.%d:8080", 10+i)), Weight: w})
		}
		st.Frontends = append(st.Frontends, fs)
	}
	return st
}

// snapshotOf returns a snapshot holding sts.
func snapshotOf(sts ...*lb.ServiceState) *lb.Snapshot {
	var s *lb.Snapshot
	for _, st := range sts {
		s = s.With(st)
	}
	return s
}

// changes returns the partial ChangeSet naming keys.
func changes(keys ...lb.ServiceKey) lb.ChangeSet {
	cs := lb.ChangeSet{Changed: make(map[lb.ServiceKey]struct{})}
	for _, k := range keys {
		cs.Changed[k] = struct{}{}
	}
	return cs
}

// slotCount is the number of slots of a frontend with these weights: one
// per backend when they are equal, else the weights divided by their
// greatest common divisor (the tests keep the sum small, where every
// weight-to-slot function agrees).
func slotCount(bs []lb.Backend) int {
	var g, sum uint64
	equal := true
	for _, b := range bs {
		for x := uint64(b.Weight); x != 0; {
			g, x = x, g%x
		}
		equal = equal && b.Weight == bs[0].Weight
	}
	if equal {
		return len(bs)
	}
	for _, b := range bs {
		sum += uint64(b.Weight) / g
	}
	return int(sum)
}

// mapCounts is what the maps and the id allocators hold.
type mapCounts struct {
	heads, slots, backends, maglev int
	feIDs, beIDs                   int
	services, shadow               int // services, frontends in the bookkeeping
	frontends                      []string
}

// want returns the counts that programming s exactly leads to.
func want(s *lb.Snapshot) mapCounts {
	c := mapCounts{services: s.Len()}
	s.Range(func(st *lb.ServiceState) bool {
		c.shadow += len(st.Frontends)
		for _, fs := range st.Frontends {
			c.heads++
			c.feIDs++
			c.frontends = append(c.frontends, fs.ID().String())
			if n := slotCount(fs.Backends); n > inlineSlots {
				c.slots += n
			}
			c.backends += len(fs.Backends)
			c.beIDs += len(fs.Backends)
			if st.Scheduler() == lb.Maglev && len(fs.Backends) > 0 {
				c.maglev++
			}
		}
		return true
	})
	slices.Sort(c.frontends)
	return c
}

// have reads the counts from the maps and the allocators.
func have(t *testing.T, d *Datapath) mapCounts {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	m := &d.objs.LBMaps
	var c mapCounts
	var sk bpf.LBSvcKey
	var sv bpf.LBSvcValue
	it := m.LbServices.Iterate()
	for it.Next(&sk, &sv) {
		if sk.Slot == 0 {
			c.heads++
			c.frontends = append(c.frontends, frontendOf(sk).String())
		} else {
			c.slots++
		}
	}
	if err := it.Err(); err != nil {
		t.Fatalf("read lb_services: %v", err)
	}
	var id uint32
	var be bpf.LBBackend
	it = m.LbBackends.Iterate()
	for it.Next(&id, &be) {
		c.backends++
	}
	if err := it.Err(); err != nil {
		t.Fatalf("read lb_backends: %v", err)
	}
	var mg bpf.LBMaglevTable
	it = m.LbMaglev.Iterate()
	for it.Next(&id, &mg) {
		c.maglev++
	}
	if err := it.Err(); err != nil {
		t.Fatalf("read lb_maglev: %v", err)
	}
	c.feIDs, c.beIDs = d.ids.fe.inUse(), d.ids.be.inUse()
	c.services, c.shadow = d.services.Len(), len(d.frontends)
	slices.Sort(c.frontends)
	return c
}

// requireExact fails unless the maps and ids hold exactly what s needs.
func requireExact(t *testing.T, d *Datapath, s *lb.Snapshot, when string) {
	t.Helper()
	w, h := want(s), have(t, d)
	if fmt.Sprint(w) != fmt.Sprint(h) {
		t.Fatalf("%s:\n have %+v\n want %+v", when, h, w)
	}
}

// TestFailedApplyLeaksNothing injects a failure after each step of apply
// (the step's entries are written, the later steps' are not) in a sync
// that deletes a service, changes one, adds one and moves a frontend
// between services; the next full sync must leave the maps and the id
// allocators holding exactly the snapshot: no service entry, backend or
// id of the failed sync left behind.
func TestFailedApplyLeaksNothing(t *testing.T) {
	requireBPF(t)
	ctx := context.Background()
	s0 := snapshotOf(
		multiState("a", lb.Random, []string{"198.18.100.1", "198.18.100.2"}, nil, 0, 1, 2),
		multiState("b", lb.Random, []string{"198.18.100.3"}, []uint32{1, 1, 10}, 0, 1, 2),
		multiState("c", lb.Maglev, []string{"198.18.100.4"}, nil, 0, 1, 2),
		multiState("m", lb.Maglev, []string{"198.18.100.5"}, nil, 3, 4),
	)
	s1 := snapshotOf(
		// a is deleted; b gets other backends and weights; c is
		// unchanged; e is new and takes a frontend of a; m loses its
		// frontend to f and gets another.
		multiState("b", lb.Random, []string{"198.18.100.3"}, []uint32{1, 2, 20}, 1, 3, 4),
		multiState("c", lb.Maglev, []string{"198.18.100.4"}, nil, 0, 1, 2),
		multiState("e", lb.Maglev, []string{"198.18.100.2", "198.18.100.6"}, []uint32{1, 1, 1, 1, 9}, 0, 1, 2, 3, 4),
		multiState("f", lb.Random, []string{"198.18.100.5"}, nil, 5),
		multiState("m", lb.Maglev, []string{"198.18.100.7"}, nil, 3, 4),
	)
	newDatapath := func(t *testing.T) *Datapath {
		d, err := New(Options{Netns: emptyNetns(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.Cleanup(context.Background()) })
		if err := d.Sync(ctx, s0, lb.ChangeSet{Full: true}); err != nil {
			t.Fatal(err)
		}
		requireExact(t, d, s0, "first sync")
		return d
	}
	d := newDatapath(t)
	if err := d.Sync(ctx, s1, changes("a", "b", "e", "f", "m")); err != nil {
		t.Fatal(err)
	}
	requireExact(t, d, s1, "partial sync without a fault")

	// The steps of apply, in order, as the hook sees them.
	var steps []string
	d.mu.Lock()
	d.applyFault = func(s string) error { steps = append(steps, s); return nil }
	d.mu.Unlock()
	if err := d.Sync(ctx, s0, lb.ChangeSet{Full: true}); err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	d.applyFault = nil
	d.mu.Unlock()
	if len(steps) != applySteps {
		t.Fatalf("apply ran the hook after %d steps: %q", len(steps), steps)
	}
	for _, step := range steps {
		t.Run(step, func(t *testing.T) {
			d := newDatapath(t)
			injected := errors.New("injected fault")
			d.mu.Lock()
			d.applyFault = func(s string) error {
				if s == step {
					d.applyFault = nil // once
					return injected
				}
				return nil
			}
			d.mu.Unlock()
			if err := d.Sync(ctx, s1, changes("a", "b", "e", "f", "m")); !errors.Is(err, injected) {
				t.Fatalf("sync with a fault after %q: %v, want the injected fault", step, err)
			}
			// The engine's next sync after a failure is full.
			if err := d.Sync(ctx, s1, lb.ChangeSet{Full: true, Changed: changes("a", "b", "e", "f", "m").Changed}); err != nil {
				t.Fatal(err)
			}
			requireExact(t, d, s1, "the full sync after the failed one")
		})
	}
}

// TestMapFullLeaksNothing: a real kernel failure, lb_services full in the
// middle of a sync that also deletes a service, is followed by a full
// sync that converges with nothing left of the failed one.
func TestMapFullLeaksNothing(t *testing.T) {
	requireBPF(t)
	ctx := context.Background()
	d, err := New(Options{Netns: emptyNetns(t), MaxServiceEntries: 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Cleanup(context.Background()) })
	s0 := snapshotOf(
		multiState("a", lb.Random, []string{"198.18.100.1"}, nil, 0, 1),
		multiState("b", lb.Random, []string{"198.18.100.2"}, nil, 2),
	)
	if err := d.Sync(ctx, s0, lb.ChangeSet{Full: true}); err != nil {
		t.Fatal(err)
	}
	// w needs 32 slot entries: more than the map holds.
	big := multiState("w", lb.Random, []string{"198.18.100.3"}, []uint32{1, 1, 30}, 0, 1, 2)
	s1 := snapshotOf(multiState("b", lb.Random, []string{"198.18.100.2"}, nil, 2), big)
	err = d.Sync(ctx, s1, changes("a", "w"))
	var se lb.ServiceErrors
	if err == nil || errors.As(err, &se) {
		t.Fatalf("a sync that overflows lb_services: %v, want a map error", err)
	}
	s2 := snapshotOf(
		multiState("b", lb.Random, []string{"198.18.100.2"}, nil, 2),
		multiState("w", lb.Random, []string{"198.18.100.3"}, nil, 0, 1, 2),
	)
	if err := d.Sync(ctx, s2, lb.ChangeSet{Full: true, Changed: changes("a", "w").Changed}); err != nil {
		t.Fatal(err)
	}
	requireExact(t, d, s2, "the full sync after the map was full")
}
