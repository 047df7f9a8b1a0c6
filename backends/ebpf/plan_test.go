package ebpf

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/lbkit/lbkit/lb"
)

// stateOf builds a one-frontend service over backends 198.18.2.10+i:8080
// for i in idx, with the given weights (nil: all 1).
func stateOf(key string, sched lb.Scheduler, vip string, weights []uint32, idx ...int) *lb.ServiceState {
	fe := lb.Frontend{Addr: netip.MustParseAddr(vip), Port: 80, Protocol: lb.TCP, Kind: lb.ClusterIP}
	svc := &lb.Service{Key: lb.ServiceKey(key), Scheduler: sched, Frontends: []lb.Frontend{fe}}
	fs := lb.FrontendState{Frontend: fe}
	for j, i := range idx {
		w := uint32(1)
		if weights != nil {
			w = weights[j]
		}
		fs.Backends = append(fs.Backends, lb.Backend{Addr: netip.MustParseAddrPort(fmt.Sprintf("198.18.2.%d:8080", 10+i)), Weight: w})
	}
	return &lb.ServiceState{Service: svc, Frontends: []lb.FrontendState{fs}}
}

func planOf(t *testing.T, d *Datapath, full bool, sts ...*lb.ServiceState) *plan {
	t.Helper()
	s := snapshotOf(sts...)
	cs := lb.ChangeSet{Full: full, Changed: map[lb.ServiceKey]struct{}{}}
	for _, st := range sts {
		cs.Changed[st.Key()] = struct{}{}
	}
	p, errs := d.planSync(d.services.Work(s, cs), full, 0)
	if len(errs) > 0 {
		t.Fatalf("planSync: %v", errs)
	}
	d.commit(p) // as Sync does once the maps are written
	return p
}

func newPlanner(t *testing.T) *Datapath {
	t.Helper()
	d, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestPlanOneEndpointChangeTouchesOnlyIt(t *testing.T) {
	d := newPlanner(t)
	p := planOf(t, d, true, stateOf("a", lb.Random, "198.18.100.1", nil, 0, 1, 2))
	if len(p.beKeys) != 3 || len(p.headKeys) != 1 || len(p.slotKeys) != 0 {
		t.Fatalf("first sync: %d backends, %d heads, %d slot entries; want 3, 1, 0 (slots inline)", len(p.beKeys), len(p.headKeys), len(p.slotKeys))
	}
	old := d.frontends[stateOf("a", lb.Random, "198.18.100.1", nil).Frontends[0].ID()]
	kept := old.bes[0].id
	removed := old.bes[1].id

	p = planOf(t, d, false, stateOf("a", lb.Random, "198.18.100.1", nil, 0, 2, 3))
	if len(p.beKeys) != 1 || len(p.headKeys) != 1 || len(p.delBEs) != 1 || p.ops() != 3 {
		t.Fatalf("one endpoint replaced: plan %+v, want one backend written, the head flipped, one backend deleted", p)
	}
	if p.delBEs[0] != removed {
		t.Errorf("deleted backend %d, want %d (198.18.2.11)", p.delBEs[0], removed)
	}
	nf := d.frontends[old.fe.ID()]
	if nf.bes[0].id != kept {
		t.Errorf("the kept backend changed id %d -> %d", kept, nf.bes[0].id)
	}
	if p.beKeys[0] == removed {
		t.Errorf("the removed backend's id %d was reused within the same sync", removed)
	}
	head := p.headVals[0]
	if head.Count != 3 || head.InlineIds[1] != nf.bes[1].id || head.InlineIds[2] != p.beKeys[0] {
		t.Errorf("head %+v does not list the new backends %+v", head, nf.bes)
	}
	if p := planOf(t, d, false, stateOf("a", lb.Random, "198.18.100.1", nil, 0, 2, 3)); p.ops() != 0 {
		t.Errorf("an unchanged service planned %d operations", p.ops())
	}
}

func TestPlanSlotEntriesBeyondInline(t *testing.T) {
	d := newPlanner(t)
	p := planOf(t, d, false, stateOf("w", lb.Random, "198.18.100.2", []uint32{1, 1, 10}, 0, 1, 2))
	if len(p.slotKeys) != 12 || p.headVals[0].Count != 12 {
		t.Fatalf("weights 1,1,10: %d slot entries, count %d; want 12 and 12", len(p.slotKeys), p.headVals[0].Count)
	}
	p = planOf(t, d, false, stateOf("w", lb.Random, "198.18.100.2", []uint32{1, 1, 2}, 0, 1, 2))
	if len(p.delSlots) != 12 || p.headVals[0].Count != 4 || len(p.slotKeys) != 0 {
		t.Errorf("back to 4 slots: %d slot writes, %d slot deletes, count %d; want 0, 12, 4", len(p.slotKeys), len(p.delSlots), p.headVals[0].Count)
	}
}

func TestPlanMaglevAndRemoval(t *testing.T) {
	d := newPlanner(t)
	st := stateOf("m", lb.Maglev, "198.18.100.3", nil, 0, 1, 2)
	p := planOf(t, d, false, st)
	if len(p.mgKeys) != 1 || p.headVals[0].Flags&svcMaglev == 0 {
		t.Fatalf("maglev service: %d tables written, flags %#x", len(p.mgKeys), p.headVals[0].Flags)
	}
	share := map[uint32]int{}
	for _, id := range p.mgVals[0].BackendIds {
		share[id]++
	}
	if len(share) != 3 || share[0] != 0 {
		t.Errorf("maglev table shares %v, want three backends and no empty slot", share)
	}
	fes, bes := d.ids.fe.inUse(), d.ids.be.inUse()
	p, errs := d.planSync(d.services.Work(nil, changes("m")), false, 0)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if len(p.delHeads) != 1 || len(p.delMaglev) != 1 || len(p.delBEs) != 3 || len(p.freeFE) != 1 {
		t.Errorf("deleting the service: plan %+v", p)
	}
	if len(d.frontends) != 1 || d.services.Len() != 1 || d.ids.fe.inUse() != 1 {
		t.Errorf("the plan changed the bookkeeping before it was applied: %d frontends, %d services, %d frontend ids",
			len(d.frontends), d.services.Len(), d.ids.fe.inUse())
	}
	d.commit(p)
	if len(d.frontends) != 0 || d.services.Len() != 0 || d.ids.fe.inUse() != 0 || d.ids.be.inUse() != 0 {
		t.Errorf("shadow state left: %d frontends, %d services, %d+%d ids", len(d.frontends), d.services.Len(), d.ids.fe.inUse(), d.ids.be.inUse())
	}
	if fes != 1 || bes != 3 {
		t.Errorf("ids in use before delete: %d frontends, %d backends", fes, bes)
	}
}

func TestPlanRejectsAndRollsBack(t *testing.T) {
	d := newPlanner(t)
	planOf(t, d, false, stateOf("a", lb.Random, "198.18.100.1", nil, 0))
	before := d.ids.be.inUse()
	rr := stateOf("c", lb.RR, "198.18.100.9", nil, 1)
	if _, errs := d.planSync(d.services.Work(snapshotOf(rr), changes("c")), false, 0); errs["c"] == nil {
		t.Error("scheduler rr was accepted")
	}
	// A backend listed twice fails after the first one got an id.
	twice := stateOf("d", lb.Random, "198.18.100.8", nil, 1, 1)
	p, errs := d.planSync(d.services.Work(snapshotOf(twice), changes("d")), false, 0)
	if errs["d"] == nil || p.ops() != 0 {
		t.Fatalf("a backend listed twice: errs %v, %d ops", errs, p.ops())
	}
	if d.ids.be.inUse() != before {
		t.Errorf("backend ids in use %d, want %d: a rejected service kept ids", d.ids.be.inUse(), before)
	}
}

// TestPlanFrontendMovesBetweenServices: a frontend that one service drops
// and another takes in the same sync is rewritten in place, keeping its
// id, never deleted after it was written.
func TestPlanFrontendMovesBetweenServices(t *testing.T) {
	d := newPlanner(t)
	planOf(t, d, false, stateOf("a", lb.Random, "198.18.100.1", nil, 0, 1))
	id := stateOf("a", lb.Random, "198.18.100.1", nil).Frontends[0].ID()
	feID := d.frontends[id].id
	b := stateOf("b", lb.Random, "198.18.100.1", nil, 1, 2)
	p, errs := d.planSync(d.services.Work(snapshotOf(b), changes("a", "b")), false, 0)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if len(p.delHeads) != 0 || len(p.headKeys) != 1 || p.headVals[0].FeId != feID {
		t.Errorf("moving frontend: %d heads deleted, %d written (id %d, want %d)", len(p.delHeads), len(p.headKeys), p.headVals[0].FeId, feID)
	}
	d.commit(p)
	if f := d.frontends[id]; f == nil || f.service != "b" || d.services.Len() != 1 {
		t.Errorf("after the move the frontend belongs to %v, %d services", f, d.services.Len())
	}
	if d.ids.fe.inUse() != 1 || d.ids.be.inUse() != 2 {
		t.Errorf("ids in use: %d frontends, %d backends; want 1 and 2", d.ids.fe.inUse(), d.ids.be.inUse())
	}
}
