package userspace

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/lbkit/lbkit/lb"
)

// testBackends returns backends 198.18.0.1:80, .2, ... with the weights.
func testBackends(weights ...uint32) []*backend {
	bs := make([]*backend, len(weights))
	for i, w := range weights {
		addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 0, byte(i + 1)}), 80)
		bs[i] = &backend{Backend: lb.Backend{Addr: addr, Weight: w}, stats: &backendStats{}}
	}
	return bs
}

// picks returns n picks for a fixed client.
func picks(p picker, n int) []int {
	client := netip.MustParseAddrPort("198.18.1.1:1234")
	out := make([]int, n)
	for i := range out {
		out[i] = p.pick(client)
	}
	return out
}

func mustPicker(t *testing.T, s lb.Scheduler, bs []*backend) picker {
	t.Helper()
	p, err := newPicker(s, bs, rand.New(rand.NewPCG(1, 2)).Uint64)
	if err != nil {
		t.Fatalf("newPicker(%s): %v", s, err)
	}
	return p
}

func TestRRPickerRotatesIgnoringWeights(t *testing.T) {
	p := mustPicker(t, lb.RR, testBackends(5, 1, 1))
	want := []int{0, 1, 2, 0, 1, 2, 0}
	if got := picks(p, len(want)); !slices.Equal(got, want) {
		t.Fatalf("rr picks = %v, want %v", got, want)
	}
}

func TestWRRPickerInterleaves(t *testing.T) {
	cases := []struct {
		weights []uint32
		want    []int
	}{
		{[]uint32{1, 2}, []int{1, 0, 1, 1, 0, 1}},
		// IPVS's textbook example: weights 4, 3, 2.
		{[]uint32{4, 3, 2}, []int{0, 0, 1, 0, 1, 2, 0, 1, 2, 0, 0, 1}},
		// gcd 2 behaves as weights 1, 2.
		{[]uint32{2, 4}, []int{1, 0, 1, 1, 0, 1}},
		// zero weight counts as 1.
		{[]uint32{0, 1}, []int{0, 1, 0, 1}},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.weights), func(t *testing.T) {
			p := mustPicker(t, lb.WRR, testBackends(tc.weights...))
			if got := picks(p, len(tc.want)); !slices.Equal(got, tc.want) {
				t.Fatalf("wrr picks = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestWRRPickerSharesMatchWeights(t *testing.T) {
	weights := []uint32{3, 7, 1, 5}
	p := mustPicker(t, lb.WRR, testBackends(weights...))
	// One full cycle is the sum of weights (gcd 1): exact shares.
	got := make([]uint32, len(weights))
	for _, i := range picks(p, 16*10) {
		got[i]++
	}
	for i, w := range weights {
		if got[i] != w*10 {
			t.Errorf("backend %d got %d of 160 picks, want %d", i, got[i], w*10)
		}
	}
}

func TestRandomPickerFollowsWeights(t *testing.T) {
	weights := []uint32{1, 2, 7}
	p := mustPicker(t, lb.Random, testBackends(weights...))
	const n = 100000
	got := make([]int, len(weights))
	for _, i := range picks(p, n) {
		got[i]++
	}
	// Expected 10%, 20%, 70%; +-2 points is more than 20 standard deviations.
	for i, w := range weights {
		want := n * int(w) / 10
		if got[i] < want-2000 || got[i] > want+2000 {
			t.Errorf("backend %d (weight %d) got %d of %d picks, want about %d", i, w, got[i], n, want)
		}
	}
}

func TestLCPickerPrefersFewestAndRotatesTies(t *testing.T) {
	bs := testBackends(1, 1, 1)
	p := mustPicker(t, lb.LC, bs)
	bs[0].stats.active.Store(2)
	bs[1].stats.active.Store(1)
	bs[2].stats.active.Store(1)
	got := picks(p, 4)
	for _, i := range got {
		if i == 0 {
			t.Fatalf("lc picked the busiest backend: %v", got)
		}
	}
	if !slices.Contains(got, 1) || !slices.Contains(got, 2) {
		t.Fatalf("lc did not rotate over the tied backends: %v", got)
	}
	bs[2].stats.active.Store(0)
	for _, i := range picks(p, 5) {
		if i != 2 {
			t.Fatalf("lc picked %d, want the idle backend 2", i)
		}
	}
}

func TestSHPickerIgnoresPortAndIsStable(t *testing.T) {
	bs := testBackends(1, 1, 1)
	p1 := mustPicker(t, lb.SH, bs)
	p2 := mustPicker(t, lb.SH, testBackends(1, 1, 1)) // a rebuilt, equal set
	seen := make(map[int]bool)
	for ip := range 50 {
		addr := netip.AddrFrom4([4]byte{198, 19, 0, byte(ip)})
		first := p1.pick(netip.AddrPortFrom(addr, 1000))
		seen[first] = true
		for port := range uint16(20) {
			c := netip.AddrPortFrom(addr, 2000+port)
			if got := p1.pick(c); got != first {
				t.Fatalf("sh: client %s went to %d, its other connections to %d", c, got, first)
			}
			if got := p2.pick(c); got != first {
				t.Fatalf("sh: client %s went to %d after a rebuild, %d before", c, got, first)
			}
		}
	}
	if len(seen) != 3 {
		t.Fatalf("sh used backends %v for 50 clients, want all 3", seen)
	}
}

func TestMaglevPickerSpreadsFlowsOfOneClient(t *testing.T) {
	p := mustPicker(t, lb.Maglev, testBackends(1, 1, 1))
	client := netip.MustParseAddr("198.19.0.1")
	got := make([]int, 3)
	for port := range uint16(3000) {
		c := netip.AddrPortFrom(client, 10000+port)
		i := p.pick(c)
		if again := p.pick(c); again != i {
			t.Fatalf("maglev: flow %s went to %d then %d", c, i, again)
		}
		got[i]++
	}
	for i, n := range got {
		if n < 600 { // expected 1000
			t.Errorf("maglev: backend %d got %d of 3000 flows", i, n)
		}
	}
}

func TestMaglevPickerKeepsFlowsWhenABackendGoes(t *testing.T) {
	all := testBackends(1, 1, 1, 1)
	before := mustPicker(t, lb.Maglev, all)
	after := mustPicker(t, lb.Maglev, []*backend{all[0], all[1], all[3]})
	afterIdx := []int{0, 1, -1, 2} // index in before -> index in after
	moved := 0
	for port := range uint16(2000) {
		c := netip.AddrPortFrom(netip.MustParseAddr("198.19.0.7"), 20000+port)
		b := before.pick(c)
		a := after.pick(c)
		if b != 2 && afterIdx[b] != a {
			moved++
		}
	}
	// Maglev moves only a few percent of the flows of surviving backends.
	if moved > 200 {
		t.Fatalf("%d of about 1500 flows on surviving backends moved", moved)
	}
}

func TestFlowHashIsMixedFNV1a(t *testing.T) {
	for _, s := range []string{"198.18.0.1:80", "[2001:2::1]:65535", "[::ffff:198.18.0.1]:1"} {
		ap := netip.MustParseAddrPort(s)
		h := fnv.New64a()
		h.Write(ap.Addr().Unmap().AsSlice())
		ipOnly := h.Sum64()
		h.Write([]byte{byte(ap.Port() >> 8), byte(ap.Port())})
		if got := flowHash(ap, false); got != mix64(ipOnly) {
			t.Errorf("flowHash(%s, ip only) = %#x, want %#x", s, got, ipOnly)
		}
		if got, want := flowHash(ap, true), mix64(h.Sum64()); got != want {
			t.Errorf("flowHash(%s, with port) = %#x, want %#x", s, got, want)
		}
	}
}

// TestFlowHashSpreadsSequentialPorts: a client's consecutive source ports
// must spread over a maglev table about evenly (the bound is loose: 1000
// flows over 3 backends, each at least 25%).
func TestFlowHashSpreadsSequentialPorts(t *testing.T) {
	p, err := newPicker(lb.Maglev, testBackends(1, 1, 1), rand.Uint64)
	if err != nil {
		t.Fatal(err)
	}
	counts := make([]int, 3)
	for port := range uint16(1000) {
		counts[p.pick(netip.AddrPortFrom(netip.MustParseAddr("198.18.1.2"), 20000+port))]++
	}
	for i, c := range counts {
		if c < 250 {
			t.Fatalf("backend %d got %d of 1000 sequential-port flows: %v", i, c, counts)
		}
	}
}

func TestNewPickerRejectsUnknownScheduler(t *testing.T) {
	_, err := newPicker(lb.WLC, testBackends(1), rand.Uint64)
	if err == nil {
		t.Fatal("newPicker(wlc) succeeded")
	}
}

func TestPoolChooseFailsOverInOrder(t *testing.T) {
	bs := testBackends(1, 1, 1)
	p := &pool{backends: bs, index: map[netip.AddrPort]int{}, picker: &rrPicker{n: 3}}
	for i, b := range bs {
		p.index[b.Addr] = i
	}
	var tried []int
	dead := map[int]bool{0: true, 1: true}
	b, err := p.choose(netip.MustParseAddrPort("198.19.0.1:1"), func(b *backend) error {
		i := p.index[b.Addr]
		tried = append(tried, i)
		if dead[i] {
			return errors.New("refused")
		}
		return nil
	})
	if err != nil || b != bs[2] {
		t.Fatalf("choose = %v, %v; want backend 2", b, err)
	}
	if !slices.Equal(tried, []int{0, 1, 2}) {
		t.Fatalf("tried %v, want [0 1 2]", tried)
	}
	if got := p.active(); !slices.Equal(got, []int64{0, 0, 1}) {
		t.Fatalf("active = %v, want only the connected backend counted", got)
	}
	dead[2] = true
	if _, err := p.choose(netip.MustParseAddrPort("198.19.0.1:2"), func(b *backend) error {
		if dead[p.index[b.Addr]] {
			return errors.New("refused")
		}
		return nil
	}); err == nil {
		t.Fatal("choose succeeded with every backend dead")
	}
}

func TestPoolChooseUsesAndRecordsAffinity(t *testing.T) {
	bs := testBackends(1, 1, 1)
	p := &pool{backends: bs, index: map[netip.AddrPort]int{}, picker: &rrPicker{n: 3},
		aff: newAffinity(time.Hour, nil)}
	for i, b := range bs {
		p.index[b.Addr] = i
	}
	ok := func(*backend) error { return nil }
	c := netip.MustParseAddrPort("198.19.0.1:1")
	first, _ := p.choose(c, ok)
	for port := range uint16(10) {
		b, _ := p.choose(netip.AddrPortFrom(c.Addr(), 2+port), ok)
		if b != first {
			t.Fatalf("affinity: connection went to %s, first to %s", b.Addr, first.Addr)
		}
	}
	other, _ := p.choose(netip.MustParseAddrPort("198.19.0.2:1"), ok)
	if other == first {
		t.Fatalf("rr gave the second client the first client's backend %s", first.Addr)
	}
	// The remembered backend is gone from a new pool: pick anew.
	p2 := &pool{backends: []*backend{bs[1], bs[2]}, index: map[netip.AddrPort]int{},
		picker: &rrPicker{n: 2}, aff: p.aff}
	p2.index[bs[1].Addr], p2.index[bs[2].Addr] = 0, 1
	p.aff.record(c.Addr(), bs[0].Addr)
	b, _ := p2.choose(c, ok)
	if b == bs[0] {
		t.Fatal("affinity chose a backend that is no longer in the pool")
	}
	if got, _ := p.aff.lookup(c.Addr()); got != b.Addr {
		t.Fatalf("affinity now remembers %s, want the new pick %s", got, b.Addr)
	}
}
