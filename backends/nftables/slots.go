package nftables

import "github.com/lbkit/lbkit/lb"

// slotTable returns, for every slot of a frontend with backends bs, the
// index of the backend it holds: backend 0's slots first, then backend 1's,
// and so on. A new connection picks a slot uniformly (numgen random mod N).
// The split is lb.SlotCounts at lb.MaxSlots, the one every slot-based
// datapath uses: each backend gets its weight divided by the weights' gcd,
// scaled by largest remainder into lb.MaxSlots when that is exceeded (one
// slot each at least).
func slotTable(bs []lb.Backend) []int {
	weights := make([]uint32, len(bs))
	for i, b := range bs {
		weights[i] = b.Weight
	}
	return lb.SlotTable(weights, lb.MaxSlots)
}
