package ebpf

import (
	"net/netip"
	"slices"
	"testing"
	"unsafe"

	"github.com/lbkit/lbkit/bpf"
	"github.com/lbkit/lbkit/internal/slottest"
	"github.com/lbkit/lbkit/lb"
)

func TestAddrWordsAreNetworkOrderInMemory(t *testing.T) {
	for _, s := range []string{"198.18.100.1", "2001:2::1", "2001:2:0:100::7"} {
		a := netip.MustParseAddr(s)
		w := addrWords(a)
		mem := unsafe.Slice((*byte)(unsafe.Pointer(&w[0])), 16)
		want := a.AsSlice()
		if !slices.Equal(mem[:len(want)], want) {
			t.Errorf("%s: words in memory %x, want %x first", s, mem, want)
		}
		if got := wordsAddr(w, familyOf(a)); got != a {
			t.Errorf("wordsAddr(addrWords(%s)) = %s", s, got)
		}
	}
	if w := addrWords(netip.MustParseAddr("::ffff:198.18.0.1")); w != addrWords(netip.MustParseAddr("198.18.0.1")) {
		t.Errorf("a v4-mapped address is not stored as IPv4: %x", w)
	}
	p := netPort(8080)
	mem := unsafe.Slice((*byte)(unsafe.Pointer(&p)), 2)
	if mem[0] != 0x1f || mem[1] != 0x90 || hostPort(p) != 8080 {
		t.Errorf("netPort(8080) in memory %x, want 1f90", mem)
	}
}

func TestSvcKeyRoundTrip(t *testing.T) {
	for _, id := range []lb.FrontendID{
		{Addr: netip.MustParseAddr("198.18.100.1"), Port: 80, Protocol: lb.TCP},
		{Addr: netip.MustParseAddr("2001:2:0:100::1"), Port: 53, Protocol: lb.UDP},
		{Addr: netip.IPv4Unspecified(), Port: 30080, Protocol: lb.TCP},
	} {
		k, err := svcKey(id, 3)
		if err != nil {
			t.Fatal(err)
		}
		if k.Slot != 3 {
			t.Errorf("%s: slot %d", id, k.Slot)
		}
		k.Slot = 0
		if got := frontendOf(k); got != id {
			t.Errorf("frontendOf(svcKey(%s)) = %s", id, got)
		}
	}
	if _, err := svcKey(lb.FrontendID{Addr: netip.MustParseAddr("198.18.100.1"), Port: 80, Protocol: lb.SCTP}, 0); err == nil {
		t.Error("svcKey accepted SCTP")
	}
}

func TestStructSizesMatchC(t *testing.T) {
	// The sizes of bpf/lb.h's structs; a mismatch means the generated
	// types and the object disagree.
	for _, c := range []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"svc_key", unsafe.Sizeof(bpf.LBSvcKey{}), 24},
		{"svc_value", unsafe.Sizeof(bpf.LBSvcValue{}), 16 + 4*8},
		{"backend", unsafe.Sizeof(bpf.LBBackend{}), 24},
		{"ct_key", unsafe.Sizeof(bpf.LBCtKey{}), 40},
		{"ct_value", unsafe.Sizeof(bpf.LBCtValue{}), 48},
		{"rev_ports", unsafe.Sizeof(bpf.LBRevPorts{}), 2 * 65536},
	} {
		if c.got != c.want {
			t.Errorf("struct %s: %d bytes, want %d", c.name, c.got, c.want)
		}
	}
}

// TestSlotsOfSharedSplit: the slots planFrontend programs (slotsOf) split
// every weight set of the shared table exactly as the other slot-based
// datapaths do (internal/slottest, lb.SlotCounts).
func TestSlotsOfSharedSplit(t *testing.T) {
	var mem arena
	for _, tc := range slottest.Cases() {
		bes := make([]beState, len(tc.Weights))
		for i, w := range tc.Weights {
			bes[i] = beState{id: uint32(100 + i), weight: max(w, 1)}
		}
		got := make([]int, len(bes))
		for _, id := range slotsOf(&mem, bes) {
			got[id-100]++
		}
		if !slices.Equal(got, tc.Counts) {
			t.Errorf("weights %v: slot counts %v, want %v", tc.Weights, got, tc.Counts)
		}
	}
}

func TestIDAllocReusesOldestLast(t *testing.T) {
	a := newIDAlloc("test", 3)
	var got []uint32
	for range 3 {
		id, err := a.get()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, id)
	}
	a.commit()
	if !slices.Equal(got, []uint32{1, 2, 3}) {
		t.Fatalf("ids %v, want 1 2 3", got)
	}
	if _, err := a.get(); err == nil {
		t.Fatal("a fourth id out of 3")
	}
	a.put(2)
	a.put(1)
	if id, _ := a.get(); id != 2 {
		t.Errorf("reused %d first, want the id released first (2)", id)
	}
	a.rollback()
	if n := a.inUse(); n != 1 {
		t.Errorf("after rollback %d ids in use, want 1 (3)", n)
	}
	if id, _ := a.get(); id != 1 {
		t.Errorf("after rollback got %d, want 1 (2 went back to the end of the queue)", id)
	}
}
