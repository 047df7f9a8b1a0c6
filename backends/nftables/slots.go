package nftables

import (
	"slices"

	"github.com/lbkit/lbkit/lb"
)

// MaxSlots bounds the slots one frontend's backends are spread over. A
// frontend with n backends of weights w1..wn gets sum(w)/gcd(w) slots, each
// backend as many consecutive slots as its reduced weight; a new connection
// picks a slot uniformly (numgen random mod N). When the reduced weights add
// up to more than max(MaxSlots, n), every backend keeps one slot and the
// rest are shared out in proportion to the weights (largest remainder), so
// a backend's share is exact to within 1/MaxSlots.
const MaxSlots = 256

// slotCounts returns how many slots each backend gets.
func slotCounts(bs []lb.Backend) []int {
	if len(bs) == 0 {
		return nil
	}
	w := make([]uint64, len(bs))
	var g, total uint64
	for i, b := range bs {
		w[i] = uint64(max(b.Weight, 1))
		g = gcd(g, w[i])
	}
	for i := range w {
		w[i] /= g
		total += w[i]
	}
	capacity := uint64(max(MaxSlots, len(bs)))
	counts := make([]int, len(bs))
	if total <= capacity {
		for i := range w {
			counts[i] = int(w[i])
		}
		return counts
	}
	// One slot each, the rest in proportion to the weights.
	rest := capacity - uint64(len(bs))
	type remainder struct {
		i    int
		frac uint64
	}
	rems := make([]remainder, len(bs))
	given := uint64(0)
	for i := range w {
		share := rest * w[i]
		counts[i] = 1 + int(share/total)
		given += share / total
		rems[i] = remainder{i, share % total}
	}
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

// slotTable returns, for every slot, the index of the backend it holds:
// backend 0's slots first, then backend 1's, and so on.
func slotTable(bs []lb.Backend) []int {
	counts := slotCounts(bs)
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

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
