package ebpf

import (
	"fmt"
	"slices"
	"time"

	"github.com/lbkit/lbkit/bpf"
	"github.com/lbkit/lbkit/lb"
	"github.com/lbkit/lbkit/lb/maglev"
)

// planFrontend computes the programmed state of frontend fs of service st
// and adds to p the writes that take old (nil for a new frontend) there:
// everything when full, else only what differs. New ids come from ids; on
// error the caller rolls the allocators back.
func planFrontend(p *plan, ids *allocators, mem *arena, st *lb.ServiceState, fs lb.FrontendState, old *feState, full bool) (*feState, error) {
	k0, err := svcKey(fs.ID(), 0)
	if err != nil {
		return nil, err
	}
	nf := mem.newFE()
	*nf = feState{service: st.Key(), applied: st, fe: fs, sched: st.Scheduler(), key: k0}
	// Ids taken before an error are returned by the caller's rollback.
	fail := func(err error) (*feState, error) { return nil, err }
	if old != nil {
		nf.id = old.id
	} else if nf.id, err = ids.fe.get(); err != nil {
		return fail(err)
	}

	// Backends: keep the id of every address the frontend had; new ones
	// get fresh ids. Both lists are sorted by address.
	if len(fs.Backends) > maxBackendsPerFrontend {
		return fail(fmt.Errorf("frontend %s has %d backends, more than the %d the service map can index", fs.Frontend, len(fs.Backends), maxBackendsPerFrontend))
	}
	want := fs.Backends // sorted by address, as lb promises; else sorted here
	byAddr := func(a, b lb.Backend) int { return a.Addr.Compare(b.Addr) }
	if !slices.IsSortedFunc(want, byAddr) {
		want = slices.Clone(want)
		slices.SortFunc(want, byAddr)
	}
	var prev []beState
	if old != nil {
		prev = old.bes
	}
	nf.bes = mem.beSlice(len(want))
	var gone []uint32
	i := 0
	for _, b := range want {
		if n := len(nf.bes); n > 0 && nf.bes[n-1].addr == b.Addr {
			return fail(fmt.Errorf("frontend %s: backend %s listed twice", fs.Frontend, b.Addr))
		}
		for i < len(prev) && prev[i].addr.Compare(b.Addr) < 0 {
			gone = append(gone, prev[i].id)
			i++
		}
		if i < len(prev) && prev[i].addr == b.Addr {
			nf.bes = append(nf.bes, beState{addr: b.Addr, id: prev[i].id, weight: max(b.Weight, 1)})
			if full {
				p.beKeys = append(p.beKeys, prev[i].id)
				p.beVals = append(p.beVals, backendValue(b.Addr, nf.id))
			}
			i++
			continue
		}
		id, err := ids.be.get()
		if err != nil {
			return fail(err)
		}
		nf.bes = append(nf.bes, beState{addr: b.Addr, id: id, weight: max(b.Weight, 1)})
		p.beKeys = append(p.beKeys, id)
		p.beVals = append(p.beVals, backendValue(b.Addr, nf.id))
	}
	for ; i < len(prev); i++ {
		gone = append(gone, prev[i].id)
	}

	nf.slots = slotsOf(mem, nf.bes)
	if nf.sched == lb.Maglev && len(nf.bes) > 0 {
		if nf.maglev, err = maglevTable(nf.bes); err != nil {
			return fail(fmt.Errorf("frontend %s: %w", fs.Frontend, err))
		}
	}
	nf.value = bpf.LBSvcValue{
		FeId:            nf.id,
		AffinityTimeout: uint32(st.AffinityTimeout() / time.Second),
		Count:           uint16(len(nf.slots)),
		Flags:           frontendFlags(st, fs.Frontend),
	}
	if len(nf.slots) <= inlineSlots {
		copy(nf.value.InlineIds[:], nf.slots)
	}
	if nf.value.Flags&svcAffinity != 0 && nf.value.AffinityTimeout == 0 {
		nf.value.AffinityTimeout = 1
	}

	// The writes, in the order the plan applies them.
	var oldSlots, oldMaglev []uint32
	if old != nil {
		oldSlots, oldMaglev = slotEntries(old.slots), old.maglev
	}
	newSlots := slotEntries(nf.slots)
	if nf.maglev != nil && (full || !slices.Equal(nf.maglev, oldMaglev)) {
		p.mgKeys = append(p.mgKeys, nf.id)
		p.mgVals = append(p.mgVals, maglevValue(nf.maglev))
	}
	for j, id := range newSlots {
		if full || j >= len(oldSlots) || oldSlots[j] != id {
			k := k0
			k.Slot = uint16(j + 1)
			p.slotKeys = append(p.slotKeys, k)
			p.slotVals = append(p.slotVals, bpf.LBSvcValue{BackendId: id})
		}
	}
	if full || old == nil || old.value != nf.value {
		p.headKeys = append(p.headKeys, k0)
		p.headVals = append(p.headVals, nf.value)
	}
	for j := len(newSlots); j < len(oldSlots); j++ {
		k := k0
		k.Slot = uint16(j + 1)
		p.delSlots = append(p.delSlots, k)
	}
	if nf.maglev == nil && oldMaglev != nil {
		p.delMaglev = append(p.delMaglev, nf.id)
	}
	p.delBEs = append(p.delBEs, gone...)
	p.freeBE = append(p.freeBE, gone...)
	return nf, nil
}

// slotsOf returns the backend id of every slot: one slot per backend when
// the weights are equal, else as lb.SlotTable shares lb.MaxSlots out (the
// split every slot-based datapath uses).
func slotsOf(mem *arena, bes []beState) []uint32 {
	equal := true
	for _, b := range bes {
		equal = equal && b.weight == bes[0].weight
	}
	if equal {
		out := mem.idSlice(len(bes))
		for i, b := range bes {
			out[i] = b.id
		}
		return out
	}
	weights := make([]uint32, len(bes))
	for i, b := range bes {
		weights[i] = b.weight
	}
	table := lb.SlotTable(weights, lb.MaxSlots)
	out := mem.idSlice(len(table))
	for j, i := range table {
		out[j] = bes[i].id
	}
	return out
}

// slotEntries returns the slots that live in slot entries of lb_services:
// none when they fit in the service entry.
func slotEntries(slots []uint32) []uint32 {
	if len(slots) <= inlineSlots {
		return nil
	}
	return slots
}

// maglevTable builds the frontend's Maglev table (lb/maglev, LB_MAGLEV_SIZE
// slots) as backend ids.
func maglevTable(bes []beState) ([]uint32, error) {
	mb := make([]maglev.Backend, len(bes))
	for i, b := range bes {
		mb[i] = maglev.Backend{Name: b.addr.String(), Weight: b.weight}
	}
	t, err := maglev.New(mb, uint64(maglevSize))
	if err != nil {
		return nil, fmt.Errorf("build maglev table: %w", err)
	}
	slots := t.Slots()
	out := make([]uint32, len(slots))
	for i, s := range slots {
		if s >= 0 {
			out[i] = bes[s].id
		}
	}
	return out, nil
}

// maxBackendsPerFrontend is what a 16-bit slot number can index.
const maxBackendsPerFrontend = 65535

// allocators are the id spaces of one loaded datapath.
type allocators struct {
	fe, be *idAlloc
}
