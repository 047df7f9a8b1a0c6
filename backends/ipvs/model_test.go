package ipvs

import (
	"errors"
	"maps"
	"net/netip"
	"slices"
	"testing"
	"time"

	mobyipvs "github.com/moby/ipvs"

	"github.com/lbkit/lbkit/lb"
)

var (
	vip   = netip.MustParseAddr("198.18.100.1")
	vip6  = netip.MustParseAddr("2001:2:0:100::1")
	b0    = netip.MustParseAddrPort("198.18.2.10:8080")
	b1    = netip.MustParseAddrPort("198.18.2.11:8080")
	b2    = netip.MustParseAddrPort("198.18.2.12:8080")
	node1 = netip.MustParseAddr("198.18.1.1")
	node2 = netip.MustParseAddr("198.18.2.1")
)

// state builds a ServiceState the way the engine does.
func state(svc *lb.Service, eps ...lb.Endpoint) *lb.ServiceState {
	return lb.Select(svc, eps, lb.Node{Name: "node-a"})
}

func ready(a netip.AddrPort, weight uint32) lb.Endpoint {
	ep := lb.ReadyEndpoint(a)
	ep.Weight, ep.NodeName = weight, "node-a"
	return ep
}

func noNodes(bool) ([]netip.Addr, error) { return nil, errors.New("no node addresses in this test") }

func TestDesiredSchedulers(t *testing.T) {
	for _, tc := range []struct {
		sched     lb.Scheduler
		def       string
		wantName  string
		wantFlags uint32
	}{
		{lb.RR, "", "rr", 0},
		{lb.WRR, "", "wrr", 0},
		{lb.LC, "", "lc", 0},
		{lb.WLC, "", "wlc", 0},
		{lb.SH, "", "sh", flagSched1},
		{lb.DH, "", "dh", 0},
		{lb.SED, "", "sed", 0},
		{lb.NQ, "", "nq", 0},
		{lb.Maglev, "", "mh", flagSched1 | flagSched2},
		{lb.Random, "rr", "rr", 0},
		{lb.Random, "mh", "mh", flagSched1 | flagSched2},
		{lb.Random, "lblc", "lblc", 0},
	} {
		svc := &lb.Service{Key: "s", Scheduler: tc.sched, Frontends: []lb.Frontend{{Addr: vip, Port: 80, Protocol: lb.TCP, Kind: lb.ClusterIP}}}
		vs, err := desiredOf(state(svc, ready(b0, 0)), &Options{Scheduler: tc.def}, noNodes)
		if err != nil {
			t.Fatalf("%s (default %q): %v", tc.sched, tc.def, err)
		}
		v := vs[vsKey{Addr: vip, Port: 80, Protocol: lb.TCP}]
		if v == nil || v.sched != tc.wantName || v.flags != tc.wantFlags {
			t.Errorf("%s (default %q): got %+v, want scheduler %s flags %#x", tc.sched, tc.def, v, tc.wantName, tc.wantFlags)
		}
	}
	svc := &lb.Service{Key: "r", Frontends: []lb.Frontend{{Addr: vip, Port: 80, Protocol: lb.TCP, Kind: lb.ClusterIP}}}
	_, err := desiredOf(state(svc), &Options{}, noNodes)
	var uerr *lb.UnsupportedError
	if !errors.As(err, &uerr) || uerr.Field != "scheduler" || uerr.Value != "random" || uerr.Datapath != "ipvs" {
		t.Errorf("random without Options.Scheduler: err = %v, want an UnsupportedError for scheduler random", err)
	}
}

func TestCapabilitiesDeclareRandomOnlyWithDefault(t *testing.T) {
	strict, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if strict.Capabilities().SupportsScheduler(lb.Random) {
		t.Error("without Options.Scheduler the datapath declares random")
	}
	kube, err := New(Options{Scheduler: "rr"})
	if err != nil {
		t.Fatal(err)
	}
	caps := kube.Capabilities()
	for _, s := range []lb.Scheduler{lb.Random, lb.RR, lb.WRR, lb.LC, lb.WLC, lb.SH, lb.DH, lb.SED, lb.NQ, lb.Maglev} {
		if !caps.SupportsScheduler(s) {
			t.Errorf("Options.Scheduler rr: %s not declared", s)
		}
	}
	if !caps.SupportsProtocol(lb.SCTP) || !caps.IPv6 || !caps.Affinity || !caps.Weights || !caps.LocalPolicy {
		t.Errorf("capabilities %+v: want SCTP, IPv6, affinity, weights and Local policies", caps)
	}
}

func TestDesiredAffinityWeightsAndKinds(t *testing.T) {
	svc := &lb.Service{
		Key: "web", Scheduler: lb.WRR,
		Affinity: lb.SessionAffinity{Type: lb.AffinityClientIP, Timeout: 90*time.Second + 500*time.Millisecond},
		Frontends: []lb.Frontend{
			{Addr: vip, Port: 80, Protocol: lb.TCP, Kind: lb.ClusterIP},
			{Addr: netip.IPv4Unspecified(), Port: 30080, Protocol: lb.UDP, Kind: lb.NodePort},
			{Addr: netip.MustParseAddr("198.18.200.1"), Port: 443, Protocol: lb.SCTP, Kind: lb.LoadBalancer},
		},
	}
	nodes := func(v6 bool) ([]netip.Addr, error) {
		if v6 {
			t.Error("IPv6 node addresses asked for an IPv4 NodePort")
		}
		return []netip.Addr{node1, node2}, nil
	}
	vs, err := desiredOf(state(svc, ready(b0, 3), ready(b1, 0)), &Options{}, nodes)
	if err != nil {
		t.Fatal(err)
	}
	keys := slices.SortedFunc(maps.Keys(vs), compareKeys)
	want := []vsKey{
		{Addr: node1, Port: 30080, Protocol: lb.UDP},
		{Addr: node2, Port: 30080, Protocol: lb.UDP},
		{Addr: vip, Port: 80, Protocol: lb.TCP},
		{Addr: netip.MustParseAddr("198.18.200.1"), Port: 443, Protocol: lb.SCTP},
	}
	if !slices.Equal(keys, want) {
		t.Fatalf("virtual servers %v, want %v", keys, want)
	}
	for k, v := range vs {
		if v.flags&flagPersistent == 0 || v.timeout != 91 {
			t.Errorf("%s: flags %#x timeout %d, want persistent with 91s (rounded up)", k, v.flags, v.timeout)
		}
		if w := map[netip.AddrPort]int{b0: 3, b1: 1}; !maps.Equal(v.dests, w) {
			t.Errorf("%s: real servers %v, want %v", k, v.dests, w)
		}
		if bind := v.kind != lb.NodePort; v.bind != bind {
			t.Errorf("%s (%s): bind = %v, want %v", k, v.kind, v.bind, bind)
		}
		// External kinds under the Cluster policy are masqueraded.
		if masq := v.kind.External(); v.masq != masq {
			t.Errorf("%s (%s): masq = %v, want %v", k, v.kind, v.masq, masq)
		}
	}
}

func TestDesiredMasquerade(t *testing.T) {
	svc := &lb.Service{Key: "m", Scheduler: lb.RR, ExternalPolicy: lb.PolicyLocal, Frontends: []lb.Frontend{
		{Addr: vip, Port: 80, Protocol: lb.TCP, Kind: lb.ClusterIP},
		{Addr: vip6, Port: 80, Protocol: lb.TCP, Kind: lb.ClusterIP},
		{Addr: node1, Port: 30080, Protocol: lb.TCP, Kind: lb.NodePort},
	}}
	cidr4 := []netip.Prefix{netip.MustParsePrefix("198.18.1.0/24")}
	for _, tc := range []struct {
		name string
		o    Options
		// masq and outside for the v4 ClusterIP, the v6 ClusterIP and the
		// Local NodePort.
		masq, outside [3]bool
	}{
		{"defaults", Options{}, [3]bool{}, [3]bool{}},
		{"masqueradeAll", Options{MasqueradeAll: true}, [3]bool{true, true, true}, [3]bool{}},
		{"IPv4 cluster CIDR", Options{ClusterCIDRs: cidr4}, [3]bool{}, [3]bool{true, false, false}},
	} {
		vs, err := desiredOf(state(svc, ready(b0, 0)), &tc.o, noNodes)
		if err != nil {
			t.Fatal(err)
		}
		for i, k := range []vsKey{{Addr: vip, Port: 80, Protocol: lb.TCP}, {Addr: vip6, Port: 80, Protocol: lb.TCP}, {Addr: node1, Port: 30080, Protocol: lb.TCP}} {
			v := vs[k]
			if v.masq != tc.masq[i] || v.masqOutside != tc.outside[i] {
				t.Errorf("%s: %s masq %v outside %v, want %v %v", tc.name, k, v.masq, v.masqOutside, tc.masq[i], tc.outside[i])
			}
		}
	}
}

func TestPlanVS(t *testing.T) {
	key := vsKey{Addr: vip, Port: 80, Protocol: lb.TCP}
	want := &virtualServer{key: key, sched: "rr", dests: map[netip.AddrPort]int{b0: 1, b1: 2}}
	none := func(netip.AddrPort) bool { return false }

	p := planVS(nil, want, none)
	if !p.create || len(p.add) != 2 {
		t.Errorf("absent virtual server: plan %+v, want create with two real servers", p)
	}
	same := &virtualServer{key: key, sched: "rr", dests: map[netip.AddrPort]int{b0: 1, b1: 2}}
	if p := planVS(same, want, none); !p.empty() {
		t.Errorf("equal virtual server: plan %+v, want nothing", p)
	}
	cur := &virtualServer{key: key, sched: "wrr", dests: map[netip.AddrPort]int{b0: 5, b2: 1}}
	p = planVS(cur, want, none)
	if !p.update || !maps.Equal(p.add, map[netip.AddrPort]int{b1: 2}) || !maps.Equal(p.set, map[netip.AddrPort]int{b0: 1}) ||
		!slices.Equal(p.drain, []netip.AddrPort{b2}) || len(p.remove) != 0 {
		t.Errorf("TCP plan %+v: want update, add b1, set b0, drain b2", p)
	}
	// UDP real servers go at once.
	udpKey := vsKey{Addr: vip, Port: 53, Protocol: lb.UDP}
	p = planVS(&virtualServer{key: udpKey, dests: map[netip.AddrPort]int{b2: 1}}, &virtualServer{key: udpKey, dests: map[netip.AddrPort]int{}}, none)
	if len(p.drain) != 0 || !slices.Equal(p.remove, []netip.AddrPort{b2}) {
		t.Errorf("UDP plan %+v: want b2 removed, not drained", p)
	}
	// Already draining: left to the drain pass. Wanted again: weight back.
	draining := &virtualServer{key: key, sched: "rr", dests: map[netip.AddrPort]int{b0: 1, b1: 2, b2: 0}}
	if p := planVS(draining, want, func(d netip.AddrPort) bool { return d == b2 }); !p.empty() {
		t.Errorf("draining real server: plan %+v, want nothing", p)
	}
	back := &virtualServer{key: key, sched: "rr", dests: map[netip.AddrPort]int{b0: 0, b1: 2}}
	if p := planVS(back, want, func(d netip.AddrPort) bool { return d == b0 }); !maps.Equal(p.set, map[netip.AddrPort]int{b0: 1}) {
		t.Errorf("re-added draining real server: plan %+v, want its weight set back to 1", p)
	}
}

func TestOptionsErrors(t *testing.T) {
	for _, o := range []Options{
		{Scheduler: "random"},
		{Device: "a-name-far-too-long"},
		{Device: "bad/name"},
		{TCPTimeout: -time.Second},
		{UDPTimeout: 500 * time.Millisecond},
		{ClusterCIDRs: []netip.Prefix{{}}},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
	d, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d.o.Device != DefaultDevice || d.o.GracefulTerminationTimeout != DefaultGracefulTerminationTimeout || d.Name() != "ipvs" {
		t.Errorf("defaults: %+v", d.o)
	}
}

func TestServiceRoundTrip(t *testing.T) {
	for _, k := range []vsKey{{Addr: vip, Port: 80, Protocol: lb.TCP}, {Addr: vip6, Port: 53, Protocol: lb.UDP}, {Addr: vip, Port: 9, Protocol: lb.SCTP}} {
		want := &virtualServer{key: k, sched: "mh", flags: flagSched1 | flagSched2 | flagPersistent, timeout: 30}
		s := toService(want)
		s.Flags |= flagHashed // as the kernel reports it
		got, ok := fromService(s)
		if !ok || got.key != k || !got.sameService(want) {
			t.Errorf("round trip of %s: %+v, %v", k, got, ok)
		}
	}
	if _, ok := fromService(&mobyipvs.Service{FWMark: 7}); ok {
		t.Error("a firewall-mark virtual server was taken as one of ours")
	}
}

func TestAvailableWithoutIPVS(t *testing.T) {
	if Available() == nil {
		t.Skip("this kernel has IPVS")
	}
	if err := Available(); !errors.Is(err, ErrNoIPVS) {
		t.Errorf("Available() = %v, want ErrNoIPVS", err)
	}
	d, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(t.Context(), nil, lb.ChangeSet{Full: true}); !errors.Is(err, ErrNoIPVS) {
		t.Errorf("Sync without IPVS = %v, want an error wrapping ErrNoIPVS", err)
	}
}
