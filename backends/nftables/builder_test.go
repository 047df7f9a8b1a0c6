package nftables

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lbkit/lbkit/internal/slottest"
	"github.com/lbkit/lbkit/lb"
)

// These tests need no privileges: they check the objects the datapath
// builds (keys, elements, chains and their register layout, plans) without
// a kernel.

func mustConfig(t testing.TB, o Options) *config {
	t.Helper()
	c, err := o.resolve()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// testConfig masquerades ClusterIP traffic from outside 198.18.64.0/18 and
// serves NodePorts on 198.18.1.0/24 only (IPv4).
func testConfig(t testing.TB) *config {
	return mustConfig(t, Options{
		ClusterCIDRs:      []netip.Prefix{netip.MustParsePrefix("198.18.64.0/18"), netip.MustParsePrefix("2001:2:0:64::/64")},
		NodePortAddresses: []netip.Prefix{netip.MustParsePrefix("198.18.1.0/24")},
	})
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func fe(addr string, port uint16, p lb.Protocol, k lb.FrontendKind) lb.Frontend {
	return lb.Frontend{Addr: netip.MustParseAddr(addr), Port: port, Protocol: p, Kind: k}
}

// testStates are services covering every kind of element and chain.
func testStates() []*lb.ServiceState {
	web := &lb.Service{Key: "default/web/http", Frontends: []lb.Frontend{
		fe("198.18.100.1", 80, lb.TCP, lb.ClusterIP),
		fe("0.0.0.0", 30080, lb.UDP, lb.NodePort),
		fe("2001:2:0:100::1", 80, lb.TCP, lb.LoadBalancer),
	}}
	webEps := []lb.Endpoint{
		lb.ReadyEndpoint(ap("198.18.2.10:8080")), lb.ReadyEndpoint(ap("198.18.2.11:8080")),
		lb.ReadyEndpoint(ap("[2001:2:0:2::a]:8080")),
	}
	webEps[1].Weight = 2
	empty := &lb.Service{Key: "default/empty/dns", Frontends: []lb.Frontend{
		fe("198.18.100.2", 53, lb.UDP, lb.ClusterIP), fe("0.0.0.0", 30053, lb.UDP, lb.NodePort),
	}}
	sticky := &lb.Service{Key: "default/sticky/http", Affinity: lb.SessionAffinity{Type: lb.AffinityClientIP, Timeout: 90 * time.Minute},
		ExternalPolicy: lb.PolicyLocal,
		Frontends:      []lb.Frontend{fe("198.18.100.3", 443, lb.TCP, lb.ExternalIP), fe("0.0.0.0", 30443, lb.TCP, lb.NodePort)}}
	stickyEps := []lb.Endpoint{lb.ReadyEndpoint(ap("198.18.2.10:8443")), lb.ReadyEndpoint(ap("198.18.2.12:8443"))}
	return []*lb.ServiceState{lb.Select(web, webEps, lb.Node{}), lb.Select(empty, nil, lb.Node{}), lb.Select(sticky, stickyEps, lb.Node{})}
}

func TestElementsGolden(t *testing.T) {
	c := testConfig(t)
	var b strings.Builder
	for _, st := range testStates() {
		elems, chains, hairpin := c.serviceElems(st)
		fmt.Fprintf(&b, "service %s\n", st.Key())
		var lines []string
		for _, e := range elems {
			lines = append(lines, "  "+e.String())
		}
		slices.Sort(lines)
		b.WriteString(strings.Join(lines, "\n") + "\n")
		for _, ch := range chains {
			fmt.Fprintf(&b, "  needs chain %s %s\n", familyName(ch.v6), ch.name())
		}
		for _, a := range hairpin {
			fmt.Fprintf(&b, "  hairpin %s\n", hairpinElem(a))
		}
	}
	golden(t, "elements.golden", b.String())
}

func TestChainsGolden(t *testing.T) {
	c := testConfig(t)
	var b strings.Builder
	for _, v6 := range []bool{false, true} {
		fmt.Fprintf(&b, "# table %s\n", familyName(v6))
		for _, def := range c.fixedChains(v6) {
			b.WriteString(renderChain(def))
		}
	}
	seen := map[chainKey]bool{}
	for _, st := range testStates() {
		_, chains, _ := c.serviceElems(st)
		for _, ch := range chains {
			if seen[ch.key()] {
				continue
			}
			seen[ch.key()] = true
			fmt.Fprintf(&b, "# table %s\n", familyName(ch.v6))
			b.WriteString(renderChain(ch.def()))
		}
	}
	golden(t, "chains.golden", b.String())
}

// TestRegisterLayout checks every rule the datapath can build: each read
// covers registers written before, with the length of the set's keys, and
// stays within the 16 data registers.
func TestRegisterLayout(t *testing.T) {
	for _, o := range []Options{{}, {MasqueradeAll: true}, {NodePortAddresses: []netip.Prefix{netip.MustParsePrefix("198.18.1.0/24"), netip.MustParsePrefix("2001:2:0:1::/64")}}} {
		c := mustConfig(t, o)
		for _, v6 := range []bool{false, true} {
			for _, def := range c.fixedChains(v6) {
				for _, r := range def.rules {
					checkRegisters(t, def.name, v6, r)
				}
			}
		}
	}
	var refs []chainRef
	for _, v6 := range []bool{false, true} {
		addr := "198.18.100.9"
		be := ap("198.18.2.10:8080")
		if v6 {
			addr, be = "2001:2:0:100::9", ap("[2001:2:0:2::a]:8080")
		}
		for _, wild := range []bool{false, true} {
			f := fe(addr, 80, lb.TCP, lb.ClusterIP)
			if wild {
				f = lb.Frontend{Addr: netip.IPv6Unspecified(), Port: 80, Protocol: lb.TCP, Kind: lb.NodePort}
				if !v6 {
					f.Addr = netip.IPv4Unspecified()
				}
			}
			for m := masqNone; m <= masqLocalSource; m++ {
				for _, n := range []int{1, 3, lb.MaxSlots} {
					refs = append(refs, chainRef{kind: targetChain, v6: v6, target: target{v6: v6, wildcard: wild, masq: m, slots: n}})
					refs = append(refs, chainRef{kind: affinityFrontendChain, v6: v6, svc: 42, fe: f, masq: m, timeout: 10,
						slots: n, backends: string(backendValue(be))})
				}
			}
			refs = append(refs, chainRef{kind: affinityBackendChain, v6: v6, svc: 42, timeout: 10, backend: be})
		}
	}
	for _, r := range refs {
		def := r.def()
		if len(def.rules) == 0 {
			t.Errorf("chain %s has no rules", def.name)
		}
		for _, rule := range def.rules {
			checkRegisters(t, def.name, r.v6, rule)
		}
	}
}

// TestSlotTableSharedSplit: the slots the verdict maps get (slotTable, as
// elems uses it) split every weight set of the shared table exactly as the
// other slot-based datapaths do (internal/slottest, lb.SlotCounts).
func TestSlotTableSharedSplit(t *testing.T) {
	for _, tc := range slottest.Cases() {
		bs := make([]lb.Backend, len(tc.Weights))
		for i, w := range tc.Weights {
			bs[i] = lb.Backend{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 2, byte(i)}), 80), Weight: w}
		}
		got := make([]int, len(bs))
		table := slotTable(bs)
		for j, i := range table {
			if j > 0 && i < table[j-1] {
				t.Fatalf("weights %v: slot table %v is not in backend order", tc.Weights, table)
			}
			got[i]++
		}
		if !slices.Equal(got, tc.Counts) {
			t.Errorf("weights %v: slot counts %v, want %v", tc.Weights, got, tc.Counts)
		}
	}
}

func TestKeys(t *testing.T) {
	f := fe("198.18.100.1", 80, lb.UDP, lb.ClusterIP)
	if got, want := frontendKey(f), []byte{198, 18, 100, 1, 17, 0, 0, 0, 0, 80, 0, 0}; !slices.Equal(got, want) {
		t.Errorf("frontendKey = %v, want %v", got, want)
	}
	k := endpointKey(f, 7)
	if len(k) != 16 || binary.NativeEndian.Uint32(k[12:]) != 7 {
		t.Errorf("endpointKey(slot 7) = %v, want the frontend key then 7 in host order", k)
	}
	for _, s := range []string{"198.18.2.10:8080", "[2001:2:0:2::a]:53"} {
		a := ap(s)
		got, err := parseBackendValue(backendValue(a))
		if err != nil || got != a {
			t.Errorf("backendValue round trip of %s = %s, %v", a, got, err)
		}
	}
	v6 := fe("2001:2:0:100::1", 443, lb.SCTP, lb.LoadBalancer)
	addr, p, port, err := parseFrontendKey(frontendKey(v6))
	if err != nil || addr != v6.Addr || p != lb.SCTP || port != 443 {
		t.Errorf("parseFrontendKey = %s %s %d %v, want %s sctp 443", addr, p, port, err, v6.Addr)
	}
	if _, _, _, err := parseFrontendKey([]byte{1, 2, 3}); err == nil {
		t.Error("parseFrontendKey accepted 3 bytes")
	}
	if got := formatKey(setFor(setEndpoints, false).key, k); got != "198.18.100.1 . udp . 80 . 7" {
		t.Errorf("formatKey = %q", got)
	}
}

func TestChainNames(t *testing.T) {
	for _, tg := range []target{
		{slots: 3}, {v6: true, wildcard: true, masq: masqAlways, slots: 1},
		{masq: masqOutsideCluster, slots: 256}, {masq: masqLocalSource, wildcard: true, slots: 2},
	} {
		got, ok := parseTarget(tg.name(), tg.v6)
		if !ok || got != tg {
			t.Errorf("parseTarget(%q) = %+v, %v; want %+v", tg.name(), got, ok, tg)
		}
	}
	for _, bad := range []string{"svc", "svc-0", "svc-x-3", "svc-np-np-3", "aff-1-3", "svc-m-mc-3x"} {
		if _, ok := parseTarget(bad, false); ok {
			t.Errorf("parseTarget(%q) accepted it", bad)
		}
	}
	for _, s := range []string{"198.18.2.10:8080", "[2001:2:0:2::a]:8443"} {
		be := ap(s)
		name := affinityBackendName(serviceID("a/b/c"), be)
		if got, err := parseAffinityBackendName(name); err != nil || got != be {
			t.Errorf("parseAffinityBackendName(%q) = %s, %v; want %s", name, got, err, be)
		}
		if len(name) > 255 {
			t.Errorf("chain name %q longer than nftables allows", name)
		}
	}
	if serviceID("a/b/c") == serviceID("a/b/d") {
		t.Error("serviceID collides for distinct keys")
	}
}

func TestDiffElems(t *testing.T) {
	e := func(key, val string) elem { return elem{set: setRef{setEndpoints, false}, key: key, val: val} }
	have := index([]elem{e("a", "1"), e("b", "2"), e("c", "3")})
	want := index([]elem{e("a", "1"), e("b", "9"), e("d", "4")})
	del, add := diffElems(have, want)
	keys := func(es []elem) string {
		var s []string
		for _, x := range es {
			s = append(s, x.key+"="+x.val)
		}
		slices.Sort(s)
		return strings.Join(s, ",")
	}
	if got := keys(del); got != "b=2,c=3" {
		t.Errorf("deleted %s, want b=2,c=3", got)
	}
	if got := keys(add); got != "b=9,d=4" {
		t.Errorf("added %s, want b=9,d=4", got)
	}
	del, add = diffKernel(have, []elem{e("a", "1"), e("b", "9"), e("d", "4")})
	if keys(del) != "b=2,c=3" || keys(add) != "b=9,d=4" {
		t.Errorf("diffKernel: deleted %s, added %s", keys(del), keys(add))
	}
}

func TestOptions(t *testing.T) {
	c := mustConfig(t, Options{})
	if c.table != DefaultTable || c.markBit != 1<<DefaultMasqueradeBit || !c.allNP[0] || !c.allNP[1] {
		t.Errorf("defaults: table %q, mark %#x, every NodePort address %v", c.table, c.markBit, c.allNP)
	}
	c = mustConfig(t, Options{MasqueradeBit: 3, NodePortAddresses: []netip.Prefix{netip.MustParsePrefix("198.18.1.7/24"), netip.MustParsePrefix("::/0")}})
	if c.markBit != 8 || c.allNP[0] || !c.allNP[1] || c.nodePort[0][0] != netip.MustParsePrefix("198.18.1.0/24") {
		t.Errorf("mark %#x, every address %v, ranges %v", c.markBit, c.allNP, c.nodePort)
	}
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{MasqueradeBit: 32}, "MasqueradeBit 32"},
		{Options{MasqueradeBit: -1}, "MasqueradeBit -1"},
		{Options{Table: "two words"}, "Options.Table"},
		{Options{ClusterCIDRs: []netip.Prefix{{}}}, "ClusterCIDRs[0]"},
		{Options{NodePortAddresses: []netip.Prefix{netip.MustParsePrefix("198.18.1.0/24"), {}}}, "NodePortAddresses[1]"},
	} {
		if _, err := New(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error naming %s", tc.o, err, tc.want)
		}
	}
}

func TestCheckRejectsWhatTheDatapathCannotExpress(t *testing.T) {
	svc := &lb.Service{Key: "rr", Scheduler: lb.RR, Frontends: []lb.Frontend{fe("198.18.100.1", 80, lb.TCP, lb.ClusterIP)}}
	var uerr *lb.UnsupportedError
	if err := check(lb.Select(svc, nil, lb.Node{})); !errors.As(err, &uerr) || uerr.Field != "scheduler" || uerr.Datapath != name {
		t.Errorf("check(rr) = %v, want an UnsupportedError for the scheduler", err)
	}
	svc = &lb.Service{Key: "ok", Frontends: []lb.Frontend{fe("198.18.100.1", 80, lb.SCTP, lb.ClusterIP)}}
	if err := check(lb.Select(svc, nil, lb.Node{})); err != nil {
		t.Errorf("check(random, SCTP) = %v", err)
	}
	caps := (&Datapath{}).Capabilities()
	if !slices.Equal(caps.Schedulers, []lb.Scheduler{lb.Random}) || !caps.Affinity || !caps.Weights || !caps.IPv6 || !caps.LocalPolicy || !caps.SupportsProtocol(lb.SCTP) {
		t.Errorf("capabilities %+v", caps)
	}
}

func TestMasqFor(t *testing.T) {
	none := mustConfig(t, Options{})
	cidr := testConfig(t)
	all := mustConfig(t, Options{MasqueradeAll: true})
	cluster := &lb.Service{}
	local := &lb.Service{ExternalPolicy: lb.PolicyLocal}
	cip, np := fe("198.18.100.1", 80, lb.TCP, lb.ClusterIP), fe("0.0.0.0", 30080, lb.TCP, lb.NodePort)
	for _, tc := range []struct {
		c    *config
		svc  *lb.Service
		f    lb.Frontend
		want masqMode
	}{
		{none, cluster, cip, masqNone},
		{cidr, cluster, cip, masqOutsideCluster},
		{all, cluster, cip, masqAlways},
		{none, cluster, np, masqAlways},
		{none, local, np, masqLocalSource},
		{all, local, np, masqAlways},
	} {
		if got := tc.c.masqFor(tc.svc, tc.f); got != tc.want {
			t.Errorf("masqFor(%s, policy %s) = %s, want %s", tc.f, tc.svc.ExternalPolicy, got, tc.want)
		}
	}
}

// TestPartialPlanIsSmall: a partial sync of one service among many plans
// that service's elements only.
func TestPartialPlanIsSmall(t *testing.T) {
	snap := benchSnapshot(t, 1000)
	d, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	d.commitFull(d.desiredState(snap)) // as if the kernel had accepted it
	var key lb.ServiceKey
	var st *lb.ServiceState
	snap.Range(func(s *lb.ServiceState) bool { key, st = s.Key(), s; return false })

	// All three endpoints move to another port: their three slots change.
	eps := make([]lb.Endpoint, 0, 3)
	for _, b := range st.Frontends[0].Backends {
		eps = append(eps, lb.ReadyEndpoint(netip.AddrPortFrom(b.Addr.Addr(), b.Addr.Port()+1)))
	}
	next := snap.With(lb.Select(st.Service, eps, lb.Node{}))
	one := lb.ChangeSet{Changed: map[lb.ServiceKey]struct{}{key: {}}}
	w := d.planPartial(d.services.Work(next, one))
	if len(w.plan.del) != 3 || len(w.plan.add) != 3 || len(w.plan.chains) != 0 || len(w.plan.dropChain) != 0 {
		t.Errorf("one service's endpoints moved: plan deletes %d, adds %d elements, writes %d chains; want 3, 3, 0", len(w.plan.del), len(w.plan.add), len(w.plan.chains))
	}
	for _, e := range append(w.plan.del, w.plan.add...) {
		if e.set.id != setEndpoints {
			t.Errorf("plan touches %s, want only endpoints elements", e)
		}
	}

	// A fourth endpoint: a new chain (4 slots), the verdict element, a slot
	// and a hairpin element.
	eps = append(eps, lb.ReadyEndpoint(ap("198.19.255.1:8080")))
	next = snap.With(lb.Select(st.Service, eps, lb.Node{}))
	w = d.planPartial(d.services.Work(next, one))
	if len(w.plan.chains) != 1 || w.plan.chains[0].name() != "svc-4" {
		t.Errorf("a fourth endpoint: chains %v, want svc-4 created", w.plan.chains)
	}
	if n := len(w.plan.add); n > 6 {
		t.Errorf("a fourth endpoint: %d elements added, want at most 6", n)
	}

	// Deleting the service removes all its elements and nothing else.
	w = d.planPartial(d.services.Work(snap.Without(key), one))
	if len(w.plan.add) != 0 || len(w.plan.del) != 1+3+3 {
		t.Errorf("deleting a service: deletes %d, adds %d elements; want 7 (dispatch, 3 slots, 3 hairpin), 0", len(w.plan.del), len(w.plan.add))
	}
}

// TestBookkeepingMemory bounds what the datapath keeps per service: at 10k
// services x 3 endpoints, its applied states, hairpin counts and chains
// hold well under 20 MiB (the snapshot itself is the engine's).
func TestBookkeepingMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 10k services")
	}
	snap := benchSnapshot(t, 10000)
	d, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	d.commitFull(d.desiredState(snap)) // the elements went to the kernel
	runtime.GC()
	runtime.ReadMemStats(&after)
	kept := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	runtime.KeepAlive(d)
	runtime.KeepAlive(snap)
	t.Logf("bookkeeping for 10k services: %.1f MiB", float64(kept)/(1<<20))
	if kept > 20<<20 {
		t.Errorf("bookkeeping for 10k services holds %.1f MiB, want at most 20", float64(kept)/(1<<20))
	}
	if d.services.Len() != 10000 || len(d.hairpin) != 30000 {
		t.Errorf("services %d, hairpin addresses %d; want 10000, 30000", d.services.Len(), len(d.hairpin))
	}
}
