package maglev

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
)

// backendSet returns n backends with distinct, address-like names; set picks
// one of many disjoint families of names.
func backendSet(set, n int) []Backend {
	bs := make([]Backend, n)
	for i := range bs {
		bs[i] = Backend{Name: fmt.Sprintf("198.18.%d.%d:%d", set%256, i%256, 8080+i/256)}
	}
	return bs
}

// mustNew builds a table or fails the test.
func mustNew(tb testing.TB, bs []Backend, m uint64) *Table {
	tb.Helper()
	t, err := New(bs, m)
	if err != nil {
		tb.Fatalf("New(%d backends, %d): %v", len(bs), m, err)
	}
	return t
}

// counts returns how many slots each of n backends owns, failing the test if
// a slot holds anything but a valid index.
func counts(tb testing.TB, t *Table, n int) []int {
	tb.Helper()
	c := make([]int, n)
	for s, k := range t.Slots() {
		if k < 0 || int(k) >= n {
			tb.Fatalf("slot %d holds %d, want an index in [0,%d)", s, k, n)
		}
		c[k]++
	}
	return c
}

// slotNames maps every slot to its backend's name.
func slotNames(t *Table, bs []Backend) []string {
	out := make([]string, t.Size())
	for s, k := range t.Slots() {
		if k >= 0 {
			out[s] = bs[k].Name
		}
	}
	return out
}

func TestSipHash24ReferenceVectors(t *testing.T) {
	// Appendix A of the SipHash paper: key 00..0f, message 00..len-1.
	want := map[int]uint64{
		0:  0x726fdb47dd0e0e31,
		1:  0x74f839c593dc67fd,
		7:  0xab0200f58b01d137,
		8:  0x93f5f5799a932462,
		15: 0xa129ca6149be45e5,
		16: 0x3f2acc7f57c29bdb,
		63: 0x958a324ceb064572,
	}
	key := [2]uint64{0x0706050403020100, 0x0f0e0d0c0b0a0908}
	msg := make([]byte, 64)
	for i := range msg {
		msg[i] = byte(i)
	}
	for n, w := range want {
		if got := sipHash24(key, msg[:n]); got != w {
			t.Errorf("SipHash-2-4 of %d bytes = %#x, want %#x", n, got, w)
		}
	}
}

func TestPermutationIsStable(t *testing.T) {
	// Pinned values: a change here changes every table ever built, and the
	// eBPF and userspace datapaths of different versions would disagree.
	if off, skip := permutation("198.18.2.10:8080", DefaultSize); off != 8167 || skip != 9767 {
		t.Errorf("permutation = (%d, %d), want (8167, 9767)", off, skip)
	}
	want := []int32{1, 0, 0, 0, 2, 1, 1, 1, 1, 2, 2, 0, 0, 0, 2, 2}
	if got := mustNew(t, backendSet(2, 3), DefaultSize).Slots()[:16]; !slices.Equal(got, want) {
		t.Errorf("first slots = %v, want %v", got, want)
	}
}

func TestIsPrimeMatchesSieve(t *testing.T) {
	const limit = 200000
	composite := make([]bool, limit)
	for i := 2; i < limit; i++ {
		if !composite[i] {
			for j := i * i; j < limit; j += i {
				composite[j] = true
			}
		}
		if got, want := IsPrime(uint64(i)), !composite[i]; got != want {
			t.Fatalf("IsPrime(%d) = %v, want %v", i, got, want)
		}
	}
	for _, n := range []uint64{0, 1} {
		if IsPrime(n) {
			t.Errorf("IsPrime(%d) = true", n)
		}
	}
}

func TestIsPrimeLarge(t *testing.T) {
	for n, want := range map[uint64]bool{
		DefaultSize:          true,
		65537:                true,
		1<<61 - 1:            true,  // Mersenne prime
		math.MaxUint64 - 58:  true,  // largest 64-bit prime
		math.MaxUint64:       false, // 3 * 5 * 17 * ...
		561:                  false, // Carmichael number
		3215031751:           false, // strong pseudoprime to bases 2, 3, 5, 7
		3825123056546413051:  false, // strong pseudoprime to bases 2..23
		18446744030759878681: false, // 4294967291^2
	} {
		if got := IsPrime(n); got != want {
			t.Errorf("IsPrime(%d) = %v, want %v", n, got, want)
		}
	}
}

func TestEqualWeightsAreEven(t *testing.T) {
	// With equal weights the turns are round robin, so counts are exactly
	// floor(M/n) or ceil(M/n).
	for _, tc := range []struct {
		n int
		m uint64
	}{{1, DefaultSize}, {3, DefaultSize}, {10, DefaultSize}, {100, DefaultSize}, {1000, 65537}, {7, 7}} {
		c := counts(t, mustNew(t, backendSet(1, tc.n), tc.m), tc.n)
		lo, hi := int(tc.m)/tc.n, (int(tc.m)+tc.n-1)/tc.n
		for i, got := range c {
			if got < lo || got > hi {
				t.Errorf("n=%d M=%d: backend %d owns %d slots, want %d..%d", tc.n, tc.m, i, got, lo, hi)
			}
		}
	}
}

// checkWeightedShares asserts the bound of the package doc: a backend of
// weight w owns between M*w/W - 1 and M*w/W + n*w/W slots.
func checkWeightedShares(t *testing.T, bs []Backend, m uint64) {
	t.Helper()
	c := counts(t, mustNew(t, bs, m), len(bs))
	var sum float64
	for _, b := range bs {
		sum += float64(max(b.Weight, 1))
	}
	n := float64(len(bs))
	for i, b := range bs {
		w := float64(max(b.Weight, 1))
		want := float64(m) * w / sum
		if lo, hi := want-1, want+n*w/sum; float64(c[i]) < lo || float64(c[i]) > hi {
			t.Errorf("backend %d (weight %d) owns %d slots, want %.2f..%.2f", i, b.Weight, c[i], lo, hi)
		}
	}
}

func TestWeightsAreProportional(t *testing.T) {
	bs := backendSet(3, 3)
	for i := range bs {
		bs[i].Weight = uint32(i + 1)
	}
	checkWeightedShares(t, bs, DefaultSize)

	// Many backends with weights from 1 to 4e9, zero included.
	bs = backendSet(4, 200)
	for i := range bs {
		bs[i].Weight = uint32((uint64(i) * 2654435761) % 1000)
	}
	bs[7].Weight = 4_000_000_000
	checkWeightedShares(t, bs, 65537)
}

func TestZeroWeightCountsAsOne(t *testing.T) {
	a, b := backendSet(5, 4), backendSet(5, 4)
	for i := range a {
		a[i].Weight, b[i].Weight = 0, 1
	}
	if !slices.Equal(mustNew(t, a, DefaultSize).Slots(), mustNew(t, b, DefaultSize).Slots()) {
		t.Error("weight 0 builds a different table than weight 1")
	}
}

func TestOrderIndependence(t *testing.T) {
	bs := backendSet(6, 50)
	for i := range bs {
		bs[i].Weight = uint32(1 + i%4)
	}
	want := slotNames(mustNew(t, bs, DefaultSize), bs)
	rev := slices.Clone(bs)
	slices.Reverse(rev)
	rot := append(slices.Clone(bs[17:]), bs[:17]...)
	for name, perm := range map[string][]Backend{"reversed": rev, "rotated": rot} {
		if got := slotNames(mustNew(t, perm, DefaultSize), perm); !slices.Equal(got, want) {
			t.Errorf("%s input order maps slots to different backends", name)
		}
	}
}

func TestRemoveOneBackendMovesFewSlots(t *testing.T) {
	// Maglev does not promise zero disruption: removing a backend changes
	// the turns, so some slots of survivors move. Over 5000 random sets of
	// 10 backends at M=16381 the moved share of survivor slots averaged
	// 0.6% and never exceeded 6.3%.
	const sets, m = 20, DefaultSize
	var total float64
	for set := range sets {
		bs := backendSet(10+set, 10)
		before := slotNames(mustNew(t, bs, m), bs)
		gone := bs[set%10].Name
		rest := slices.Delete(slices.Clone(bs), set%10, set%10+1)
		after := slotNames(mustNew(t, rest, m), rest)
		kept, moved := 0, 0
		for s := range before {
			if after[s] == gone {
				t.Fatalf("set %d: slot %d still maps to the removed backend", set, s)
			}
			if before[s] != gone {
				kept++
				if after[s] != before[s] {
					moved++
				}
			}
		}
		frac := float64(moved) / float64(kept)
		total += frac
		t.Logf("remove set %d: %.3f%%", set, 100*frac)
		if frac > 0.08 {
			t.Errorf("set %d: %.2f%% of survivor slots moved, want <= 8%%", set, 100*frac)
		}
	}
	if mean := total / sets; mean > 0.02 {
		t.Errorf("mean moved share of survivor slots %.2f%%, want <= 2%%", 100*mean)
	}
}

func TestAddOneBackendChangesFewSlots(t *testing.T) {
	// The new backend must take 1/11 of the slots; over 5000 random sets the
	// share of changed slots averaged 9.7% and never exceeded 14.2%.
	const sets, m = 20, DefaultSize
	var total float64
	for set := range sets {
		bs := backendSet(40+set, 11)
		before := slotNames(mustNew(t, bs[:10], m), bs[:10])
		after := slotNames(mustNew(t, bs, m), bs)
		changed := 0
		for s := range before {
			if after[s] != before[s] {
				changed++
			}
		}
		frac := float64(changed) / float64(m)
		total += frac
		t.Logf("add set %d: %.3f%%", set, 100*frac)
		if limit := 1.0/11 + 0.06; frac > limit {
			t.Errorf("set %d: %.2f%% of slots changed, want <= %.2f%%", set, 100*frac, 100*limit)
		}
	}
	if mean, limit := total/sets, 1.0/11+0.015; mean > limit {
		t.Errorf("mean changed share %.2f%%, want <= %.2f%%", 100*mean, 100*limit)
	}
}

func TestNewRejectsBadInput(t *testing.T) {
	dup := backendSet(8, 5)
	dup[4].Name = dup[1].Name
	empty := backendSet(8, 3)
	empty[2].Name = ""
	for _, tc := range []struct {
		name     string
		bs       []Backend
		m        uint64
		is       error
		contains string
	}{
		{"zero size", nil, 0, ErrInvalidSize, "0 is not prime"},
		{"size one", nil, 1, ErrInvalidSize, "1 is not prime"},
		{"composite size", backendSet(8, 3), 16383, ErrInvalidSize, "16383 is not prime"},
		{"too large", nil, MaxSize + 1, ErrInvalidSize, "above the maximum"},
		{"too few slots", backendSet(8, 5), 3, ErrInvalidSize, "3 slots are fewer than the 5 backends"},
		{"duplicate name", dup, DefaultSize, ErrInvalidBackend, `backends[1] and backends[4] have the same name "198.18.8.1:8080"`},
		{"empty name", empty, DefaultSize, ErrInvalidBackend, "backends[2] has an empty name"},
	} {
		tb, err := New(tc.bs, tc.m)
		if err == nil {
			t.Errorf("%s: New succeeded with %d slots", tc.name, tb.Size())
			continue
		}
		if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.contains) {
			t.Errorf("%s: error %q, want one wrapping %q and containing %q", tc.name, err, tc.is, tc.contains)
		}
	}
}

func TestEmptyTable(t *testing.T) {
	tb := mustNew(t, nil, 7)
	if tb.Size() != 7 {
		t.Errorf("Size() = %d, want 7", tb.Size())
	}
	for _, h := range []uint64{0, 6, 7, math.MaxUint64} {
		if got := tb.Lookup(h); got != -1 {
			t.Errorf("Lookup(%d) = %d on an empty table, want -1", h, got)
		}
	}
	for s, k := range tb.Slots() {
		if k != -1 {
			t.Errorf("slot %d = %d on an empty table, want -1", s, k)
		}
	}
}

func TestLookupWrapsHash(t *testing.T) {
	bs := backendSet(9, 10)
	tb := mustNew(t, bs, DefaultSize)
	slots := tb.Slots()
	for s, k := range slots {
		if got := tb.Lookup(uint64(s)); got != int(k) {
			t.Fatalf("Lookup(%d) = %d, slot holds %d", s, got, k)
		}
	}
	const m = DefaultSize
	for _, h := range []uint64{m, m + 1, 2*m + 5, 1 << 40, math.MaxUint64} {
		if got, want := tb.Lookup(h), int(slots[h%m]); got != want {
			t.Errorf("Lookup(%d) = %d, want slot %d's %d", h, got, h%m, want)
		}
	}
}

func TestSlotsReturnsCopy(t *testing.T) {
	tb := mustNew(t, backendSet(10, 2), 5)
	before := tb.Lookup(0)
	s := tb.Slots()
	s[0] = 99
	if tb.Lookup(0) != before {
		t.Error("changing the slice from Slots changed the table")
	}
}

// referenceSlots builds a table the slow, obvious way: for every slot, scan
// all backends (in Name order) for the earliest virtual time
// (claimed+1)/weight, lowest index on ties, and let it claim the next free
// slot of its preference list. populate must agree with it exactly.
func referenceSlots(bs []Backend, m uint64) []string {
	sorted := slices.Clone(bs)
	slices.SortFunc(sorted, func(a, b Backend) int { return strings.Compare(a.Name, b.Name) })
	n := len(sorted)
	next := make([]uint64, n) // steps taken along each preference list
	claimed := make([]uint64, n)
	owner := make([]string, m)
	for range m {
		best := 0
		for i := 1; i < n; i++ {
			wi, wb := uint64(max(sorted[i].Weight, 1)), uint64(max(sorted[best].Weight, 1))
			if (claimed[i]+1)*wb < (claimed[best]+1)*wi {
				best = i
			}
		}
		off, skip := permutation(sorted[best].Name, m)
		for {
			s := (off + next[best]*skip) % m
			next[best]++
			if owner[s] == "" {
				owner[s] = sorted[best].Name
				break
			}
		}
		claimed[best]++
	}
	return owner
}

func TestPopulateMatchesReference(t *testing.T) {
	for _, tc := range []struct {
		name    string
		weights []uint32
		m       uint64
	}{
		{"equal", []uint32{1, 1, 1, 1, 1}, 1009},
		{"ties across groups", []uint32{2, 4, 2, 4, 1, 8, 0}, 1009},
		{"coprime weights", []uint32{3, 5, 7, 11, 13}, 2003},
		{"skewed", []uint32{1, 1000, 1, 999, 500}, 2003},
		{"pseudo-random", func() []uint32 {
			w := make([]uint32, 40)
			x := uint32(12345)
			for i := range w {
				x = x*1103515245 + 12345
				w[i] = x >> 28 // 0..15
			}
			return w
		}(), 4001},
		{"m equals n", []uint32{1, 2, 3, 4, 5, 6, 7}, 7},
	} {
		bs := backendSet(60, len(tc.weights))
		for i, w := range tc.weights {
			bs[i].Weight = w
		}
		slices.Reverse(bs) // callers' order must not matter
		got := slotNames(mustNew(t, bs, tc.m), bs)
		if want := referenceSlots(bs, tc.m); !slices.Equal(got, want) {
			t.Errorf("%s: table differs from the reference construction", tc.name)
		}
	}
}
