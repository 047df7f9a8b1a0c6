package lb

import "slices"

// MaxSlots bounds the slots one frontend's backends are spread over by the
// datapaths that pick a backend by drawing a slot uniformly at random
// (nftables' numgen, eBPF's slot entries). Every such datapath passes it to
// SlotCounts, so that one service splits its traffic the same way whichever
// datapath programs it. A backend's share is exact to within 1/MaxSlots.
const MaxSlots = 256

// SlotCounts returns how many slots each backend gets when a frontend's
// backends, of the given weights, share at most limit slots. It is the one
// weight-to-slot rule of every slot-based datapath:
//
//   - A zero weight counts as DefaultWeight (as on Endpoint).
//   - The weights are divided by their greatest common divisor; when the
//     reduced weights add up to at most limit, each backend gets exactly its
//     reduced weight (weights 10, 20, 30 give 1, 2, 3 slots).
//   - Otherwise every backend gets one slot and the remaining
//     limit-len(weights) slots are shared out in proportion to the weights
//     by the largest remainder method: each backend first gets the floor of
//     its exact share, then the slots left over go one each to the backends
//     with the largest fractional remainders, ties to the lower index.
//     The total is then exactly limit.
//   - A limit below len(weights) is raised to len(weights): every backend
//     keeps a slot.
//
// Datapaths that honour weights exactly (the userspace proxy's random and
// wrr pickers, IPVS's schedulers) need no slots and do not use it.
func SlotCounts(weights []uint32, limit int) []int {
	if len(weights) == 0 {
		return nil
	}
	w := make([]uint64, len(weights))
	var g, total uint64
	for i, x := range weights {
		if x == 0 {
			x = DefaultWeight
		}
		w[i] = uint64(x)
		g = slotGCD(g, w[i])
	}
	for i := range w {
		w[i] /= g
		total += w[i]
	}
	counts := make([]int, len(w))
	capacity := uint64(max(limit, len(w)))
	if total <= capacity {
		for i, x := range w {
			counts[i] = int(x)
		}
		return counts
	}
	rest := capacity - uint64(len(w))
	type remainder struct {
		i    int
		frac uint64 // numerator of the fractional part, over total
	}
	rems := make([]remainder, len(w))
	given := uint64(0)
	for i, x := range w {
		share := rest * x
		counts[i] = 1 + int(share/total)
		given += share / total
		rems[i] = remainder{i, share % total}
	}
	// Stable: equal remainders keep index order.
	slices.SortStableFunc(rems, func(a, b remainder) int {
		switch {
		case a.frac > b.frac:
			return -1
		case a.frac < b.frac:
			return 1
		}
		return 0
	})
	for j := 0; given < rest; j++ {
		counts[rems[j].i]++
		given++
	}
	return counts
}

// SlotTable returns, for every slot, the index of the backend it holds, as
// SlotCounts shares the slots out: backend 0's slots first, then backend
// 1's, and so on.
func SlotTable(weights []uint32, limit int) []int {
	counts := SlotCounts(weights, limit)
	n := 0
	for _, c := range counts {
		n += c
	}
	out := make([]int, 0, n)
	for i, c := range counts {
		for range c {
			out = append(out, i)
		}
	}
	return out
}

// slotGCD returns the greatest common divisor of a and b (slotGCD(0, b) = b).
func slotGCD(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
