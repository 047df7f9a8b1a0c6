package maglev

import (
	"cmp"
	"slices"
)

// walk is a backend's position in its preference list.
type walk struct {
	pos, skip uint64 // next slot to try, and the stride of the walk
}

// advance moves the walk to the next slot of the preference list.
func (w *walk) advance(m uint64) {
	w.pos += w.skip
	if w.pos >= m {
		w.pos -= m
	}
}

// populate fills m slots for the backends whose walks and weights (>= 1) are
// given, indexed in Name order, and returns for every slot the index of its
// owner, or -1 everywhere if there are no backends.
//
// The next turn goes to the backend with the earliest virtual time
// (claimed+1)/weight, ties to the lower index (see the package doc). Backends
// of equal weight have identical virtual times in every round, so among them
// the turns go round robin by index; populate therefore keeps one group per
// distinct weight and a heap of groups, which with equal weights is a single
// group and no heap work at all.
func populate(walks []walk, weights []uint64, m uint64) []int32 {
	slots := make([]int32, m)
	for i := range slots {
		slots[i] = -1
	}
	if len(walks) == 0 {
		return slots
	}
	h := newGroupHeap(weights)
	for filled := uint64(0); filled < m; filled++ {
		g := h.top()
		k := g.members[g.next]
		w := &walks[k]
		// The walk visits every slot once per m steps, so it always finds a
		// free slot while the table is not full.
		for slots[w.pos] >= 0 {
			w.advance(m)
		}
		slots[w.pos] = k
		w.advance(m)
		g.step()
		h.fixTop()
	}
	return slots
}

// group holds the backends of one weight. In the current round, members
// before next have claimed round+1 slots and the others round slots.
type group struct {
	weight  uint64
	members []int32 // backend indices, ascending
	next    int     // position of the member whose turn is next
	round   uint64
}

// step moves the turn to the next member after one claimed a slot.
func (g *group) step() {
	g.next++
	if g.next == len(g.members) {
		g.next = 0
		g.round++
	}
}

// before reports whether group a's next turn comes before group b's: virtual
// time (round_a+1)/weight_a < (round_b+1)/weight_b, compared exactly by cross
// multiplication (round <= MaxSize and weight < 2^32, so no overflow), ties
// going to the lower backend index.
func before(a, b *group) bool {
	ta, tb := (a.round+1)*b.weight, (b.round+1)*a.weight
	if ta != tb {
		return ta < tb
	}
	return a.members[a.next] < b.members[b.next]
}

// groupHeap is a binary min-heap of groups ordered by before.
type groupHeap []*group

// newGroupHeap groups backend indices by weight and returns them as a heap.
func newGroupHeap(weights []uint64) groupHeap {
	order := make([]int32, len(weights))
	for i := range order {
		order[i] = int32(i)
	}
	// Stable, so members stay in ascending index order within a weight.
	slices.SortStableFunc(order, func(a, b int32) int { return cmp.Compare(weights[a], weights[b]) })
	var h groupHeap
	for start := 0; start < len(order); {
		end := start + 1
		for end < len(order) && weights[order[end]] == weights[order[start]] {
			end++
		}
		h = append(h, &group{weight: weights[order[start]], members: order[start:end:end]})
		start = end
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
	return h
}

// top returns the group whose member has the next turn.
func (h groupHeap) top() *group { return h[0] }

// fixTop restores heap order after the top group took a turn.
func (h groupHeap) fixTop() {
	if len(h) > 1 {
		h.down(0)
	}
}

// down sifts the group at position i down to its place.
func (h groupHeap) down(i int) {
	for {
		c := 2*i + 1
		if c >= len(h) {
			return
		}
		if r := c + 1; r < len(h) && before(h[r], h[c]) {
			c = r
		}
		if !before(h[c], h[i]) {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}
