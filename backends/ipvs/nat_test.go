package ipvs

import (
	"bytes"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/nftables/expr"

	"github.com/lbkit/lbkit/lb"
)

func TestVSElemsEncoding(t *testing.T) {
	got := vsElems([]vsKey{{Addr: vip, Port: 0x1f90, Protocol: lb.UDP}})[0].Key
	want := []byte{198, 18, 100, 1, 17, 0, 0, 0, 0x1f, 0x90, 0, 0}
	if !bytes.Equal(got, want) {
		t.Errorf("key %v, want %v (addr . proto . port, each padded to 4 bytes)", got, want)
	}
	if k := vsElems([]vsKey{{Addr: vip6, Port: 80, Protocol: lb.TCP}})[0].Key; len(k) != 24 {
		t.Errorf("IPv6 key is %d bytes, want 24", len(k))
	}
	if k := pairElems([]netip.Addr{b0.Addr()})[0].Key; !bytes.Equal(k, []byte{198, 18, 2, 10, 198, 18, 2, 10}) {
		t.Errorf("hairpin key %v", k)
	}
}

func TestIntervalElems(t *testing.T) {
	ps := []netip.Prefix{
		netip.MustParsePrefix("198.18.1.7/24"),   // not masked
		netip.MustParsePrefix("198.18.1.128/25"), // inside the first
		netip.MustParsePrefix("2001:2::/48"),     // other family
		netip.MustParsePrefix("240.0.0.0/4"),     // reaches the end
	}
	es := intervalElems(ps, false)
	if len(es) != 3 {
		t.Fatalf("%d elements, want 3: %v", len(es), es)
	}
	if !bytes.Equal(es[0].Key, []byte{198, 18, 1, 0}) || es[0].IntervalEnd ||
		!bytes.Equal(es[1].Key, []byte{198, 18, 2, 0}) || !es[1].IntervalEnd ||
		!bytes.Equal(es[2].Key, []byte{240, 0, 0, 0}) || es[2].IntervalEnd {
		t.Errorf("elements %v", es)
	}
	if got := lastAddr(netip.MustParsePrefix("2001:2::/48")); got != netip.MustParseAddr("2001:2:0:ffff:ffff:ffff:ffff:ffff") {
		t.Errorf("lastAddr = %s", got)
	}
}

func TestNatElemsRefcounts(t *testing.T) {
	e := newNatElems()
	k1 := vsKey{Addr: vip, Port: 80, Protocol: lb.TCP}
	k2 := vsKey{Addr: vip, Port: 81, Protocol: lb.TCP}
	v1 := &virtualServer{key: k1, masq: true, dests: map[netip.AddrPort]int{b0: 1, b1: 1}}
	v2 := &virtualServer{key: k2, masqOutside: true, dests: map[netip.AddrPort]int{b1: 1, netip.AddrPortFrom(b1.Addr(), 9): 1}}
	var d natDelta
	e.add(v1, &d)
	e.add(v2, &d)
	if !slices.Equal(d.addMasq[0], []vsKey{k1}) || !slices.Equal(d.addOutside[0], []vsKey{k2}) ||
		!slices.Equal(d.addHairpin[0], []netip.Addr{b0.Addr(), b1.Addr()}) {
		t.Errorf("adds: %+v", d)
	}
	var d2 natDelta
	e.remove(v1, &d2)
	if !slices.Equal(d2.delMasq[0], []vsKey{k1}) || !slices.Equal(d2.delHairpin[0], []netip.Addr{b0.Addr()}) {
		t.Errorf("removing v1: %+v (b1 is still used by v2)", d2)
	}
	var d3 natDelta
	e.remove(v2, &d3)
	if !e.empty() || !slices.Equal(d3.delHairpin[0], []netip.Addr{b1.Addr()}) {
		t.Errorf("after removing everything: elems %+v, delta %+v", e, d3)
	}
}

// TestNatRules: three rules per family (as the package doc and README
// say), each ending in the masquerade every lbkit datapath uses, with the
// hairpin key "saddr . daddr" in consecutive registers.
func TestNatRules(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		rules := natRules(v6)
		if len(rules) != 3 {
			t.Fatalf("v6=%v: %d rules, want 3", v6, len(rules))
		}
		for i, r := range rules {
			if m, ok := r[len(r)-1].(*expr.Masq); !ok || !m.FullyRandom {
				t.Errorf("v6=%v rule %d ends in %#v, want masquerade fully-random", v6, i, r[len(r)-1])
			}
		}
		hp := rules[2]
		s, d := hp[0].(*expr.Payload), hp[1].(*expr.Payload)
		words := uint32(1)
		if v6 {
			words = 4
		}
		if d.DestRegister != s.DestRegister+words || s.Offset == d.Offset {
			t.Errorf("v6=%v hairpin loads %+v and %+v, want saddr then daddr in the next registers", v6, s, d)
		}
	}
}
