package lb

import (
	"slices"
	"testing"

	"github.com/lbkit/lbkit/internal/slottest"
)

func TestSlotCounts(t *testing.T) {
	for _, tc := range []struct {
		weights []uint32
		limit   int
		want    []int
	}{
		{nil, MaxSlots, nil},
		{[]uint32{1}, MaxSlots, []int{1}},
		{[]uint32{1, 1, 1}, MaxSlots, []int{1, 1, 1}},
		{[]uint32{1, 1, 4}, MaxSlots, []int{1, 1, 4}},
		{[]uint32{10, 20, 30}, MaxSlots, []int{1, 2, 3}}, // reduced by the gcd
		{[]uint32{0, 2}, MaxSlots, []int{1, 2}},          // 0 is DefaultWeight
		{[]uint32{1, 65535}, MaxSlots, []int{1, 255}},    // one slot each, the rest in proportion
		{[]uint32{100, 200, 65535}, MaxSlots, []int{1, 2, 253}},
		// Largest remainder: 8 left after one each, exact shares 8/3 each:
		// floors 2+2+2, the two left over to the lowest indices.
		{[]uint32{5, 5, 5, 1}, 10, []int{3, 3, 3, 1}},
		{[]uint32{7, 7, 7}, 2, []int{1, 1, 1}}, // a limit below n is raised to n
		{[]uint32{3, 3, 3, 2}, 6, []int{2, 2, 1, 1}},
		// Flooring would give 1+0, 1+2 = 1, 3: one slot short of the limit.
		{[]uint32{1, 3}, 3, []int{1, 2}},
	} {
		got := SlotCounts(tc.weights, tc.limit)
		if !slices.Equal(got, tc.want) {
			t.Errorf("SlotCounts(%v, %d) = %v, want %v", tc.weights, tc.limit, got, tc.want)
		}
	}
}

// TestSlotCountsProperties checks, over many weight sets, what datapaths
// rely on: every backend has a slot, the total never exceeds the limit (or
// the backend count), a scaled split uses the limit exactly, and no backend
// is more than one slot from its exact share of the slots beyond the first.
func TestSlotCountsProperties(t *testing.T) {
	weightSets := [][]uint32{
		{65535, 1, 32768},
		{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23},
		{997, 991, 983, 977},
		{65535, 65534},
	}
	many := make([]uint32, 300)
	for i := range many {
		many[i] = uint32(1 + i%3)
	}
	weightSets = append(weightSets, many)
	for _, ws := range weightSets {
		for _, limit := range []int{1, 7, 64, MaxSlots, 1024} {
			got := SlotCounts(ws, limit)
			capacity := max(limit, len(ws))
			total := 0
			var sum uint64
			for i, c := range got {
				if c < 1 {
					t.Errorf("SlotCounts(%v, %d): backend %d has no slot", ws, limit, i)
				}
				total += c
				sum += uint64(ws[i])
			}
			if total > capacity {
				t.Errorf("SlotCounts(%v, %d): %d slots, more than %d", ws, limit, total, capacity)
			}
			if total == capacity && capacity > len(ws) {
				rest := float64(capacity - len(ws))
				for i, c := range got {
					exact := rest * float64(ws[i]) / float64(sum)
					if d := float64(c-1) - exact; d <= -1 || d >= 1 {
						t.Errorf("SlotCounts(%v, %d): backend %d has %d slots, exact share 1+%.2f", ws, limit, i, c, exact)
					}
				}
			}
		}
	}
}

func TestSlotTable(t *testing.T) {
	if got := SlotTable([]uint32{1, 2}, MaxSlots); !slices.Equal(got, []int{0, 1, 1}) {
		t.Errorf("SlotTable(1, 2) = %v, want [0 1 1]", got)
	}
	if got := SlotTable(nil, MaxSlots); len(got) != 0 {
		t.Errorf("SlotTable(nil) = %v, want none", got)
	}
}

// TestSlotCountsSharedTable: the table every slot-based datapath's own test
// checks its planning against is what SlotCounts gives.
func TestSlotCountsSharedTable(t *testing.T) {
	for _, tc := range slottest.Cases() {
		if got := SlotCounts(tc.Weights, MaxSlots); !slices.Equal(got, tc.Counts) {
			t.Errorf("SlotCounts(%v, MaxSlots) = %v, want %v", tc.Weights, got, tc.Counts)
		}
	}
}
