package ebpf

import (
	"net/netip"

	"github.com/lbkit/lbkit/bpf"
	"github.com/lbkit/lbkit/lb"
)

// feState is what the datapath last programmed for one frontend: its ids
// and every map entry it owns, so that a change rewrites only what differs.
type feState struct {
	service lb.ServiceKey
	// applied is the service state this frontend was programmed from; a
	// full sync reuses the entries below when the snapshot still holds
	// the same pointer.
	applied *lb.ServiceState
	fe      lb.FrontendState
	sched   lb.Scheduler
	id      uint32
	key     bpf.LBSvcKey // slot 0
	value   bpf.LBSvcValue
	// bes are the backends sorted by address, with their ids.
	bes []beState
	// slots[i] is the backend id of slot i+1.
	slots []uint32
	// maglev is the Maglev table of backend ids; nil unless the scheduler
	// is maglev.
	maglev []uint32
}

// beState is one backend of a frontend.
type beState struct {
	addr   netip.AddrPort
	id     uint32
	weight uint32
}

// svcState is what one service owns; lb.Applied remembers the state it
// was programmed from.
type svcState struct {
	frontends []lb.FrontendID
}

// plan is the map operations of one sync, in the order they are applied:
// new entries first, then the service entries that make them live, then
// the removal of entries nothing points at any more.
type plan struct {
	beKeys    []uint32
	beVals    []bpf.LBBackend
	mgKeys    []uint32
	mgVals    []bpf.LBMaglevTable
	slotKeys  []bpf.LBSvcKey
	slotVals  []bpf.LBSvcValue
	headKeys  []bpf.LBSvcKey
	headVals  []bpf.LBSvcValue
	delHeads  []bpf.LBSvcKey
	delSlots  []bpf.LBSvcKey
	delMaglev []uint32
	delBEs    []uint32
	// Ids to release once the plan is applied.
	freeFE, freeBE []uint32

	// The bookkeeping the plan leads to, committed once it is applied:
	// the services, the frontends programmed (new or changed) and the
	// frontends removed.
	services lb.Commit[*svcState]
	setFE    []*feState
	dropFE   []lb.FrontendID
}

// ops returns the number of map entries the plan writes or deletes.
func (p *plan) ops() int {
	return len(p.beKeys) + len(p.mgKeys) + len(p.slotKeys) + len(p.headKeys) +
		len(p.delHeads) + len(p.delSlots) + len(p.delMaglev) + len(p.delBEs)
}

// planMark is the length of every list of a plan at some point, so that
// the entries added after it can be dropped.
type planMark [14]int

// mark returns the current lengths.
func (p *plan) mark() planMark {
	return planMark{len(p.beKeys), len(p.beVals), len(p.mgKeys), len(p.mgVals), len(p.slotKeys), len(p.slotVals),
		len(p.headKeys), len(p.headVals), len(p.delHeads), len(p.delSlots), len(p.delMaglev), len(p.delBEs),
		len(p.freeFE), len(p.freeBE)}
}

// truncate drops everything added since m.
func (p *plan) truncate(m planMark) {
	p.beKeys, p.beVals = p.beKeys[:m[0]], p.beVals[:m[1]]
	p.mgKeys, p.mgVals = p.mgKeys[:m[2]], p.mgVals[:m[3]]
	p.slotKeys, p.slotVals = p.slotKeys[:m[4]], p.slotVals[:m[5]]
	p.headKeys, p.headVals = p.headKeys[:m[6]], p.headVals[:m[7]]
	p.delHeads, p.delSlots = p.delHeads[:m[8]], p.delSlots[:m[9]]
	p.delMaglev, p.delBEs = p.delMaglev[:m[10]], p.delBEs[:m[11]]
	p.freeFE, p.freeBE = p.freeFE[:m[12]], p.freeBE[:m[13]]
}

// newPlan returns a plan with room for about services frontends and
// backends entries.
func newPlan(services, backends int) *plan {
	return &plan{
		beKeys:   make([]uint32, 0, backends),
		beVals:   make([]bpf.LBBackend, 0, backends),
		slotKeys: make([]bpf.LBSvcKey, 0, backends),
		slotVals: make([]bpf.LBSvcValue, 0, backends),
		headKeys: make([]bpf.LBSvcKey, 0, services),
		headVals: make([]bpf.LBSvcValue, 0, services),
	}
}

// writeAll adds every entry of f to p (a full sync rewrites them all).
func (p *plan) writeAll(f *feState) {
	for _, b := range f.bes {
		p.beKeys = append(p.beKeys, b.id)
		p.beVals = append(p.beVals, backendValue(b.addr, f.id))
	}
	if f.maglev != nil {
		p.mgKeys = append(p.mgKeys, f.id)
		p.mgVals = append(p.mgVals, maglevValue(f.maglev))
	}
	for i, id := range slotEntries(f.slots) {
		k := f.key
		k.Slot = uint16(i + 1)
		p.slotKeys = append(p.slotKeys, k)
		p.slotVals = append(p.slotVals, bpf.LBSvcValue{BackendId: id})
	}
	p.headKeys = append(p.headKeys, f.key)
	p.headVals = append(p.headVals, f.value)
}

// removeAll adds the removal of every entry of f to p and releases its ids.
func (p *plan) removeAll(f *feState) {
	p.delHeads = append(p.delHeads, f.key)
	for i := range slotEntries(f.slots) {
		k := f.key
		k.Slot = uint16(i + 1)
		p.delSlots = append(p.delSlots, k)
	}
	if f.maglev != nil {
		p.delMaglev = append(p.delMaglev, f.id)
	}
	for _, b := range f.bes {
		p.delBEs = append(p.delBEs, b.id)
		p.freeBE = append(p.freeBE, b.id)
	}
	p.freeFE = append(p.freeFE, f.id)
}

// maglevValue returns a Maglev table as the map value.
func maglevValue(ids []uint32) bpf.LBMaglevTable {
	var v bpf.LBMaglevTable
	copy(v.BackendIds[:], ids)
	return v
}
