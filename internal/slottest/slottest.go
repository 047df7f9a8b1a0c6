// Package slottest holds the weight splits every slot-based datapath must
// produce (lb.SlotCounts at lb.MaxSlots), written out by hand. Each such
// datapath runs its own planning function over Cases in a test, so that
// one service provably splits the same way in every datapath. Backends
// never import each other; this test kit is what they share.
package slottest

// Case is one frontend's backend weights and the slots each backend must
// get, in backend order.
type Case struct {
	Weights []uint32
	Counts  []int
}

// Cases returns the shared table. Counts add up to at most 256 slots;
// where the reduced weights do not fit, every backend has one slot and
// the rest are shared out by largest remainder.
func Cases() []Case {
	seq := make([]uint32, 23)
	for i := range seq {
		seq[i] = uint32(i + 1)
	}
	return []Case{
		{[]uint32{1, 1, 1}, []int{1, 1, 1}},
		{[]uint32{1, 2}, []int{1, 2}},
		{[]uint32{10, 20, 30}, []int{1, 2, 3}}, // divided by the gcd
		{[]uint32{0, 2}, []int{1, 2}},          // 0 is the default weight, 1
		{[]uint32{3, 5, 7}, []int{3, 5, 7}},
		{[]uint32{1, 65535}, []int{1, 255}},
		{[]uint32{100, 200, 65535}, []int{1, 2, 253}},
		// 254 slots beyond the first of each: shares 253.16 and 0.84, the
		// slot left over goes to the larger remainder (flooring would leave
		// it unused and backend 1 at one slot).
		{[]uint32{300, 1}, []int{254, 2}},
		{[]uint32{65535, 1, 32768}, []int{170, 1, 85}},
		{[]uint32{997, 991, 983, 977}, []int{65, 64, 64, 63}},
		{seq, []int{2, 3, 4, 4, 5, 6, 7, 8, 9, 9, 10, 11, 12, 13, 14, 14, 15, 16, 17, 18, 19, 20, 20}},
	}
}
