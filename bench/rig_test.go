package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lbkit/lbkit/internal/netns"
	"github.com/lbkit/lbkit/lb"
)

// The lean rig's service: one VIP with a TCP frontend (connections) and a UDP
// one (DNS-like queries), over every backend's lean servers.
var (
	leanVIP = netip.MustParseAddr("198.18.100.1")
)

// Ports of the lean rig.
const (
	leanTCPPort     = 80
	leanUDPPort     = 53
	leanBackendPort = 8080
)

// Sizes of the lean rig.
const (
	// leanSources is the number of client source addresses (198.18.1.10
	// and up, in the client namespace).
	leanSources = 64
)

// rig is one topology set up for the lean load: lean servers on every
// backend, extra client source addresses and, unless plain, a datapath on the
// node programmed with the lean VIP and filler services.
type rig struct {
	dp      datapath
	topo    *netns.Topology
	sources []netip.Addr
	// seq numbers the rig's operations, so that source tuples do not repeat
	// across loads.
	seq atomic.Uint64
}

// newRig builds a rig whose datapath holds services services in all: the
// lean VIP's service and services-1 generated ones (bench.Generate, 3
// endpoints each). Everything is removed in tb.Cleanup.
func newRig(tb testing.TB, dp datapath, services int) *rig {
	tb.Helper()
	if services < 1 || services-1 > MaxServices {
		tb.Fatalf("rig: %d services, want 1 to %d", services, MaxServices+1)
	}
	netns.Require(tb) // root first: without it the tools do not matter
	dp.requireTools(tb)
	topo := netns.New(tb, netns.Options{TCPPorts: []uint16{}, UDPPorts: []uint16{}})
	r := &rig{dp: dp, topo: topo}
	for i, h := range topo.Backends {
		serveLean(tb, h, i, leanBackendPort)
	}
	r.sources = addSources(tb, topo.Client, leanSources)
	if dp.plain() {
		return r
	}
	d, err := dp.new(topo.Node.Path)
	if err != nil {
		tb.Fatalf("%s: %v", dp.name, err)
	}
	tb.Cleanup(func() {
		if err := d.Cleanup(context.Background()); err != nil {
			tb.Errorf("%s: cleanup: %v", dp.name, err)
		}
	})
	e, err := lb.NewEngine(d, lb.Config{NodeName: "node-a"})
	if err != nil {
		tb.Fatal(err)
	}
	items, err := Generate(services-1, 3)
	if err != nil {
		tb.Fatal(err)
	}
	if err := Load(e, items); err != nil {
		tb.Fatal(err)
	}
	svc := &lb.Service{Key: "bench/lean", Frontends: []lb.Frontend{
		{Addr: leanVIP, Port: leanTCPPort, Protocol: lb.TCP, Kind: lb.ClusterIP},
		{Addr: leanVIP, Port: leanUDPPort, Protocol: lb.UDP, Kind: lb.ClusterIP},
	}}
	var eps []lb.Endpoint
	for _, h := range topo.Backends {
		eps = append(eps, lb.ReadyEndpoint(netip.AddrPortFrom(h.IPv4, leanBackendPort)))
	}
	if err := e.Upsert(svc); err != nil {
		tb.Fatal(err)
	}
	if err := e.SetEndpoints(svc.Key, eps); err != nil {
		tb.Fatal(err)
	}
	start := time.Now()
	if err := e.Flush(context.Background()); err != nil {
		tb.Fatalf("%s: program %d services: %v", dp.name, services, err)
	}
	tb.Logf("%s: programmed %d services in %v", dp.name, services, time.Since(start).Round(time.Millisecond))
	return r
}

// target returns where the lean clients send proto traffic: the VIP, or the
// backends directly without a datapath.
func (r *rig) target(proto string) leanTarget {
	if r.dp.plain() {
		t := leanTarget{direct: true}
		for _, h := range r.topo.Backends {
			t.addrs = append(t.addrs, netip.AddrPortFrom(h.IPv4, leanBackendPort))
		}
		return t
	}
	port := uint16(leanTCPPort)
	if proto != protoTCP {
		port = leanUDPPort
	}
	return leanTarget{addrs: []netip.AddrPort{netip.AddrPortFrom(leanVIP, port)}}
}

// start starts a lean load of clients client threads with depth operations
// in flight each; limit 0 runs until finish.
func (r *rig) start(proto string, clients, depth int, limit uint64) *leanLoad {
	return startLean(r.topo.Client, proto, r.target(proto), r.sources, &r.seq, clients, depth, limit, len(r.topo.Backends))
}

// addSources assigns n more addresses (198.18.1.10 and up) to the client's
// interface, inside the client namespace, and returns them. They go away
// with the namespace.
func addSources(tb testing.TB, client *netns.Host, n int) []netip.Addr {
	tb.Helper()
	base := client.IPv4.As4()
	var batch strings.Builder
	var addrs []netip.Addr
	for i := range n {
		a := base
		a[3] = byte(10 + i)
		addr := netip.AddrFrom4(a)
		addrs = append(addrs, addr)
		fmt.Fprintf(&batch, "addr add %s/24 dev %s\n", addr, client.Link)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "-n", client.NS, "-batch", "-")
	cmd.Stdin = strings.NewReader(batch.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("add client source addresses in %s: %v: %s", client.NS, err, bytes.TrimSpace(out))
	}
	return addrs
}
