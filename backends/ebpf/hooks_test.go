package ebpf

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lbkit/lbkit/internal/netns"
	"github.com/lbkit/lbkit/lb"
)

// hookEnv is a topology with one TCP service over its backends, programmed
// by a datapath with opts.
type hookEnv struct {
	topo *netns.Topology
	d    *Datapath
	eng  *lb.Engine
	fe   lb.Frontend
}

func newHookEnv(t *testing.T, opts Options, kind lb.FrontendKind, policy lb.TrafficPolicy) *hookEnv {
	t.Helper()
	return newHookEnvWith(t, opts, kind, policy, hookSetup{})
}

// hookSetup customizes newHookEnvWith.
type hookSetup struct {
	// prepare runs once the topology exists, before the datapath.
	prepare func(*netns.Topology)
	// tweak runs on the new datapath before its first Sync.
	tweak func(*Datapath)
}

// newHookEnvWith is newHookEnv with setup hooks.
func newHookEnvWith(t *testing.T, opts Options, kind lb.FrontendKind, policy lb.TrafficPolicy, setup hookSetup) *hookEnv {
	t.Helper()
	requireBPF(t)
	netns.Require(t)
	topo := netns.New(t, netns.Options{})
	if setup.prepare != nil {
		setup.prepare(topo)
	}
	opts.Netns = topo.Node.Path
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if setup.tweak != nil {
		setup.tweak(d)
	}
	eng, err := lb.NewEngine(d, lb.Config{NodeName: "node-a"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := eng.Cleanup(t.Context()); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
		left, err := leftovers(topo.Node.Path)
		if err != nil {
			t.Errorf("leftovers: %v", err)
		}
		for _, l := range left {
			if opts.LegacyTC && strings.HasSuffix(l, "clsact qdisc") {
				continue // left by a released datapath (TestLegacyTC)
			}
			t.Errorf("after Cleanup: %s", l)
		}
	})
	fe := lb.Frontend{Addr: netip.MustParseAddr("198.18.100.1"), Port: 80, Protocol: lb.TCP, Kind: kind}
	if kind == lb.NodePort {
		fe.Addr, fe.Port = netip.IPv4Unspecified(), 30080
	}
	svc := &lb.Service{Key: "hooks", Frontends: []lb.Frontend{fe}, ExternalPolicy: policy}
	if err := eng.Upsert(svc); err != nil {
		t.Fatal(err)
	}
	var eps []lb.Endpoint
	for _, b := range topo.Backends {
		ep := lb.ReadyEndpoint(netip.AddrPortFrom(b.IPv4, netns.DefaultPort))
		ep.NodeName = "node-a"
		eps = append(eps, ep)
	}
	if err := eng.SetEndpoints(svc.Key, eps); err != nil {
		t.Fatal(err)
	}
	if err := eng.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	return &hookEnv{topo: topo, d: d, eng: eng, fe: fe}
}

// requests sends n TCP requests to addr from the client and returns the
// client addresses the backends saw.
func (h *hookEnv) requests(t *testing.T, addr netip.AddrPort, n int) map[netip.Addr]int {
	t.Helper()
	seen := make(map[netip.Addr]int)
	for i := range n {
		r, err := h.topo.Client.Request(t.Context(), "tcp", addr)
		if err != nil {
			t.Fatalf("request %d to %s: %v", i, addr, err)
		}
		seen[r.Client.Addr()]++
	}
	return seen
}

func (h *hookEnv) stats(t *testing.T) Stats {
	t.Helper()
	s, err := h.d.Stats()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestXDPBalancesAndTCReverses: in XDP mode the XDP program translates
// every forward packet (TC ingress none) and TC egress the replies.
func TestXDPBalancesAndTCReverses(t *testing.T) {
	for _, mode := range []string{XDPNative, XDPGeneric} {
		t.Run(mode, func(t *testing.T) {
			h := newHookEnv(t, Options{Attach: AttachXDP, XDPMode: mode}, lb.LoadBalancer, lb.PolicyLocal)
			seen := h.requests(t, netip.AddrPortFrom(h.fe.Addr, h.fe.Port), 20)
			if seen[h.topo.Client.IPv4] != 20 {
				t.Errorf("backends saw clients %v, want the client's own address (Local policy: no masquerade)", seen)
			}
			s := h.stats(t)
			if s.XDPForward == 0 || s.TCForward != 0 || s.TCReverse == 0 {
				t.Errorf("stats %+v: want forward packets translated by XDP only, replies by TC egress", s)
			}
		})
	}
}

// TestLegacyTC: with Options.LegacyTC the programs run from a clsact qdisc
// and Cleanup removes qdisc and filters (checked by newHookEnv).
func TestLegacyTC(t *testing.T) {
	h := newHookEnv(t, Options{LegacyTC: true}, lb.ClusterIP, lb.PolicyCluster)
	h.requests(t, netip.AddrPortFrom(h.fe.Addr, h.fe.Port), 10)
	left, err := leftovers(h.topo.Node.Path)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) == 0 {
		t.Fatal("no clsact qdisc or filter found while the datapath is attached: the leftover check would prove nothing")
	}
	if s := h.stats(t); s.TCForward == 0 || s.TCReverse == 0 {
		t.Errorf("stats %+v: want packets translated by the clsact filters", s)
	}

	// Filters outlive their process: a new process's Cleanup removes
	// those an exited one left (the empty qdisc may stay).
	h.d.release()
	h.requests(t, netip.AddrPortFrom(h.fe.Addr, h.fe.Port), 2)
	d2, err := New(Options{Netns: h.topo.Node.Path, LegacyTC: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := d2.Cleanup(t.Context()); err != nil {
		t.Fatal(err)
	}
	left, err = leftovers(h.topo.Node.Path)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range left {
		if !strings.HasSuffix(l, "clsact qdisc") {
			t.Errorf("after a new process's Cleanup: %s", l)
		}
	}
}

// TestNodePortMasquerade: a NodePort with the Cluster policy is reached on
// the node's address and masqueraded (backends see the node's bridge
// address); with MasqueradeAll a ClusterIP is too.
func TestNodePortMasquerade(t *testing.T) {
	h := newHookEnv(t, Options{}, lb.NodePort, lb.PolicyCluster)
	seen := h.requests(t, netip.AddrPortFrom(h.topo.Node.IPv4, h.fe.Port), 20)
	if seen[h.topo.BridgeIPv4] != 20 {
		t.Errorf("backends saw clients %v, want all from the node's bridge address %s", seen, h.topo.BridgeIPv4)
	}
	if s := h.stats(t); s.MasqForward == 0 || s.MasqReverse == 0 {
		t.Errorf("stats %+v: want masqueraded packets both ways", s)
	}

	all := newHookEnv(t, Options{MasqueradeAll: true}, lb.ClusterIP, lb.PolicyCluster)
	seen = all.requests(t, netip.AddrPortFrom(all.fe.Addr, all.fe.Port), 10)
	if seen[all.topo.BridgeIPv4] != 10 {
		t.Errorf("MasqueradeAll: backends saw clients %v, want %s", seen, all.topo.BridgeIPv4)
	}
}

// TestHairpin: a backend reaching its own service through the frontend
// gets answered by itself too (masqueraded, else its kernel would drop a
// packet from its own address).
func TestHairpin(t *testing.T) {
	h := newHookEnv(t, Options{}, lb.ClusterIP, lb.PolicyCluster)
	self := h.topo.Backends[0]
	answered := map[string]int{}
	for i := range 30 {
		r, err := self.Request(t.Context(), "tcp", netip.AddrPortFrom(h.fe.Addr, h.fe.Port))
		if err != nil {
			t.Fatalf("request %d from %s: %v (answers so far %v)", i, self.Name, err, answered)
		}
		answered[r.Backend]++
	}
	if answered[self.Name] == 0 {
		t.Errorf("answers %v: %s never reached itself in 30 requests", answered, self.Name)
	}
}

// TestRejectIPv6: frontends without endpoints refuse IPv6 connections too:
// a TCP reset and an ICMPv6 port unreachable (both ECONNREFUSED).
func TestRejectIPv6(t *testing.T) {
	requireBPF(t)
	netns.Require(t)
	topo := netns.New(t, netns.Options{IPv6: true})
	d, err := New(Options{Netns: topo.Node.Path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Cleanup(context.Background()) })
	vip := netip.MustParseAddr("2001:2:0:100::1")
	fes := []lb.Frontend{
		{Addr: vip, Port: 80, Protocol: lb.TCP, Kind: lb.ClusterIP},
		{Addr: vip, Port: 80, Protocol: lb.UDP, Kind: lb.ClusterIP},
	}
	svc := &lb.Service{Key: "empty6", Frontends: fes}
	st := &lb.ServiceState{Service: svc}
	for _, fe := range fes {
		st.Frontends = append(st.Frontends, lb.FrontendState{Frontend: fe})
	}
	if err := d.Sync(t.Context(), (*lb.Snapshot)(nil).With(st), lb.ChangeSet{Full: true}); err != nil {
		t.Fatal(err)
	}
	for _, fe := range fes {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		_, err := topo.Client.Request(ctx, fe.Protocol.String(), netip.AddrPortFrom(fe.Addr, fe.Port))
		cancel()
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("%s without endpoints: %v, want ECONNREFUSED", fe, err)
		}
	}
}
