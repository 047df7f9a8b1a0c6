package ebpf

import "github.com/lbkit/lbkit/lb"

// arenaChunk is how many objects an arena allocates at once.
const arenaChunk = 512

// arena hands out the small objects of the shadow state from larger
// chunks, so that programming ten thousand services costs a few dozen
// allocations rather than tens of thousands. A chunk lives as long as any
// object in it is referenced.
type arena struct {
	fes  []feState
	svcs []svcState
	bes  []beState
	ids  []uint32
	fids []lb.FrontendID
}

// newFE returns a zeroed feState.
func (a *arena) newFE() *feState {
	if len(a.fes) == cap(a.fes) {
		a.fes = make([]feState, 0, arenaChunk)
	}
	a.fes = a.fes[:len(a.fes)+1]
	return &a.fes[len(a.fes)-1]
}

// newSvc returns a zeroed svcState.
func (a *arena) newSvc() *svcState {
	if len(a.svcs) == cap(a.svcs) {
		a.svcs = make([]svcState, 0, arenaChunk)
	}
	a.svcs = a.svcs[:len(a.svcs)+1]
	return &a.svcs[len(a.svcs)-1]
}

// beSlice returns an empty slice with capacity n.
func (a *arena) beSlice(n int) []beState {
	if cap(a.bes)-len(a.bes) < n {
		a.bes = make([]beState, 0, max(arenaChunk, n))
	}
	s := a.bes[len(a.bes) : len(a.bes) : len(a.bes)+n]
	a.bes = a.bes[:len(a.bes)+n]
	return s
}

// idSlice returns a slice of n zero ids.
func (a *arena) idSlice(n int) []uint32 {
	if cap(a.ids)-len(a.ids) < n {
		a.ids = make([]uint32, 0, max(4*arenaChunk, n))
	}
	s := a.ids[len(a.ids) : len(a.ids)+n : len(a.ids)+n]
	a.ids = a.ids[:len(a.ids)+n]
	return s
}

// fidSlice returns an empty slice with capacity n.
func (a *arena) fidSlice(n int) []lb.FrontendID {
	if cap(a.fids)-len(a.fids) < n {
		a.fids = make([]lb.FrontendID, 0, max(arenaChunk, n))
	}
	s := a.fids[len(a.fids) : len(a.fids) : len(a.fids)+n]
	a.fids = a.fids[:len(a.fids)+n]
	return s
}
