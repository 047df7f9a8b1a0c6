package conformance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/lbkit/lbkit/internal/netns"
	"github.com/lbkit/lbkit/internal/testenv"
	"github.com/lbkit/lbkit/lb"
)

// Fixed addresses of the scenarios.
const (
	// vipPort is the port of every frontend in namespace mode.
	vipPort uint16 = 80
	// loopbackBackends is the number of identity servers in loopback mode.
	loopbackBackends = 3
)

var loopbackAddr = netip.MustParseAddr("127.0.0.1")

// harness is one scenario's world: the topology (or loopback servers), the
// datapath, the engine driving it, and helpers to program services and send
// traffic. Its methods fail the test on unexpected errors.
type harness struct {
	t    *testing.T
	ctx  context.Context
	env  *Env
	opts Options
	dp   lb.Datapath
	caps lb.Capabilities
	eng  *lb.Engine
	// client sends the test traffic: the client namespace, or (in loopback
	// mode) a Host with no namespace path, i.e. the test process itself.
	client   *netns.Host
	backends []backend
	// vips counts the frontend addresses handed out so far.
	vips int
}

// backend is one identity server, reachable for TCP and UDP on one port.
type backend struct {
	name  string
	addr4 netip.AddrPort
	addr6 netip.AddrPort // invalid unless the topology has IPv6
}

// newHarness builds a scenario's world. In namespace mode the topology and
// its servers are removed in t.Cleanup; the engine's Cleanup runs before
// that.
func newHarness(t *testing.T, f Factory, opts Options, loopback, ipv6 bool, adjust func(*Env)) *harness {
	t.Helper()
	h := &harness{
		t:    t,
		ctx:  t.Context(),
		opts: opts,
		env:  &Env{NodeName: NodeName, Logger: testenv.LoggerAt(t, slog.LevelInfo)},
	}
	if loopback {
		h.client = &netns.Host{Name: "loopback-client", IPv4: loopbackAddr}
		h.backends = startLoopbackBackends(t, loopbackBackends)
	} else {
		topo := netns.New(t, netns.Options{IPv6: ipv6, LocalVIPs: opts.LocalVIPs})
		h.env.Topo, h.env.Netns, h.client = topo, topo.Node.Path, topo.Client
		for _, b := range topo.Backends {
			be := backend{name: b.Name, addr4: netip.AddrPortFrom(b.IPv4, netns.DefaultPort)}
			if ipv6 {
				be.addr6 = netip.AddrPortFrom(b.IPv6, netns.DefaultPort)
			}
			h.backends = append(h.backends, be)
		}
	}

	if adjust != nil {
		adjust(h.env)
	}
	h.dp = f(t, h.env)
	if h.dp == nil {
		t.Fatal("conformance: the Factory returned a nil datapath")
	}
	h.caps = h.dp.Capabilities()
	eng, err := lb.NewEngine(h.dp, lb.Config{NodeName: NodeName, MinSyncPeriod: 0, Logger: h.env.Logger})
	if err != nil {
		t.Fatalf("conformance: lb.NewEngine(%s): %v", h.dp.Name(), err)
	}
	h.eng = eng
	t.Cleanup(func() {
		// A fresh context: t.Context is already canceled when cleanups run.
		if err := eng.Cleanup(context.Background()); err != nil {
			t.Errorf("conformance: %s Cleanup at the end of the scenario: %v", h.dp.Name(), err)
		}
	})
	return h
}

// startLoopbackBackends starts n identity servers named backend0.. on
// 127.0.0.1, each serving TCP and UDP on the same ephemeral port.
func startLoopbackBackends(t *testing.T, n int) []backend {
	t.Helper()
	var out []backend
	for i := range n {
		name := fmt.Sprintf("backend%d", i)
		ln, pc, err := listenBoth(loopbackAddr)
		if err != nil {
			t.Fatalf("conformance: loopback backend %s: %v", name, err)
		}
		netns.ServeTCP(t, name, ln)
		netns.ServeUDP(t, name, pc)
		out = append(out, backend{name: name, addr4: netip.MustParseAddrPort(ln.Addr().String())})
	}
	return out
}

// listenBoth opens a TCP listener and a UDP socket on the same free port of
// addr. An ephemeral TCP port may be taken for UDP, so it retries.
func listenBoth(addr netip.Addr) (net.Listener, net.PacketConn, error) {
	var lastErr error
	for range 100 {
		ln, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
		if err != nil {
			return nil, nil, fmt.Errorf("listen tcp on %s: %w", addr, err)
		}
		pc, err := net.ListenPacket("udp", ln.Addr().String())
		if err == nil {
			return ln, pc, nil
		}
		lastErr = err
		_ = ln.Close()
	}
	return nil, nil, fmt.Errorf("no port of %s free for both TCP and UDP: %w", addr, lastErr)
}

// Loopback frontend ports come from below the kernel's ephemeral range
// (32768 and up by default) and above the fixed client source ports, so
// that no client socket can be given a frontend's port by chance while a
// scenario has it unbound (between deleting and re-adding a service).
const (
	firstFrontendPort = 24000
	frontendPorts     = 8000
)

// freeLoopbackPort returns a port of 127.0.0.1 that is free for TCP and UDP
// right now, for a frontend the datapath will bind.
func freeLoopbackPort() (uint16, error) {
	var lastErr error
	start := rand.IntN(frontendPorts)
	for i := range 200 {
		port := uint16(firstFrontendPort + (start+i*37)%frontendPorts)
		addr := netip.AddrPortFrom(loopbackAddr, port).String()
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			lastErr = err
			continue
		}
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			lastErr = err
			_ = ln.Close()
			continue
		}
		return port, errors.Join(ln.Close(), pc.Close())
	}
	return 0, fmt.Errorf("no port of %s in %d-%d free for both TCP and UDP: %w",
		loopbackAddr, firstFrontendPort, firstFrontendPort+frontendPorts-1, lastErr)
}

// skipf skips the scenario with a reason prefixed by the datapath's name.
func (h *harness) skipf(format string, args ...any) {
	h.t.Helper()
	h.t.Skipf("datapath %s %s", h.dp.Name(), fmt.Sprintf(format, args...))
}

// requireScheduler skips unless the datapath declares s.
func (h *harness) requireScheduler(s lb.Scheduler) {
	h.t.Helper()
	if !h.caps.SupportsScheduler(s) {
		h.skipf("does not declare scheduler %s", s)
	}
}

// requireNamespaces skips in loopback mode.
func (h *harness) requireNamespaces(why string) {
	h.t.Helper()
	if h.env.Loopback() {
		h.t.Skipf("conformance: loopback mode: %s", why)
	}
}

// spreadScheduler returns a scheduler that spreads a single client's
// connections over all backends (random, else rr, wrr or maglev), and
// skips the scenario when the datapath declares none of them.
func (h *harness) spreadScheduler() lb.Scheduler {
	h.t.Helper()
	for _, s := range []lb.Scheduler{lb.Random, lb.RR, lb.WRR, lb.Maglev} {
		if h.caps.SupportsScheduler(s) {
			return s
		}
	}
	h.skipf("declares none of the schedulers random, rr, wrr, maglev that spread one client's connections")
	return ""
}

// frontends allocates a fresh VIP (v6: from the IPv6 range) and port and
// returns one ClusterIP frontend on it per protocol. It skips the scenario
// when the datapath does not declare a protocol, ClusterIP or IPv6.
func (h *harness) frontends(v6 bool, protos ...lb.Protocol) []lb.Frontend {
	h.t.Helper()
	if !h.caps.SupportsKind(lb.ClusterIP) {
		h.skipf("does not declare frontend kind ClusterIP")
	}
	for _, p := range protos {
		if !h.caps.SupportsProtocol(p) {
			h.skipf("does not declare protocol %s", p)
		}
	}
	if v6 && !h.caps.IPv6 {
		h.skipf("does not declare IPv6")
	}
	var addr netip.Addr
	port := vipPort
	h.vips++
	switch {
	case h.env.Loopback():
		if v6 {
			h.t.Fatal("conformance: internal error: IPv6 frontend in loopback mode")
		}
		var err error
		if port, err = freeLoopbackPort(); err != nil {
			h.t.Fatalf("conformance: frontend port: %v", err)
		}
		addr = loopbackAddr
	case v6:
		addr = nthAddr(h.env.Topo.VIPRange6, h.vips)
	default:
		addr = nthAddr(h.env.Topo.VIPRange4, h.vips)
	}
	out := make([]lb.Frontend, len(protos))
	for i, p := range protos {
		out[i] = lb.Frontend{Addr: addr, Port: port, Protocol: p, Kind: lb.ClusterIP}
	}
	return out
}

// frontend is frontends for one IPv4 frontend.
func (h *harness) frontend(p lb.Protocol) lb.Frontend {
	h.t.Helper()
	return h.frontends(false, p)[0]
}

// nthAddr returns the n-th address after the prefix's base address.
func nthAddr(p netip.Prefix, n int) netip.Addr {
	a := p.Masked().Addr()
	for range n {
		a = a.Next()
	}
	return a
}

// service returns a service named key over fes.
func service(key string, sched lb.Scheduler, fes ...lb.Frontend) *lb.Service {
	return &lb.Service{Key: lb.ServiceKey(key), Frontends: fes, Scheduler: sched}
}

// endpoint returns backend i as a ready endpoint on NodeName.
func (h *harness) endpoint(i int, v6 bool) lb.Endpoint {
	h.t.Helper()
	if i < 0 || i >= len(h.backends) {
		h.t.Fatalf("conformance: internal error: backend %d of %d", i, len(h.backends))
	}
	addr := h.backends[i].addr4
	if v6 {
		addr = h.backends[i].addr6
		if !addr.IsValid() {
			h.t.Fatal("conformance: internal error: IPv6 endpoint without an IPv6 topology")
		}
	}
	ep := lb.ReadyEndpoint(addr)
	ep.NodeName = NodeName
	return ep
}

// ready returns the given backends (all when none given) as ready IPv4
// endpoints on NodeName.
func (h *harness) ready(idx ...int) []lb.Endpoint {
	h.t.Helper()
	return h.readyFamily(false, idx...)
}

// readyFamily is ready for either address family.
func (h *harness) readyFamily(v6 bool, idx ...int) []lb.Endpoint {
	h.t.Helper()
	if len(idx) == 0 {
		for i := range h.backends {
			idx = append(idx, i)
		}
	}
	eps := make([]lb.Endpoint, 0, len(idx))
	for _, i := range idx {
		eps = append(eps, h.endpoint(i, v6))
	}
	return eps
}

// names returns the names of backends idx (all when none given).
func (h *harness) names(idx ...int) []string {
	if len(idx) == 0 {
		for i := range h.backends {
			idx = append(idx, i)
		}
	}
	out := make([]string, len(idx))
	for j, i := range idx {
		out[j] = h.backends[i].name
	}
	return out
}

// sortedNames returns the names of the backends in the order a datapath
// sees them: sorted by address (lb.Backend order).
func (h *harness) sortedNames() []string {
	bs := slices.Clone(h.backends)
	slices.SortFunc(bs, func(a, b backend) int { return a.addr4.Compare(b.addr4) })
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.name
	}
	return out
}

// upsert adds or replaces a service and fails the test if it is rejected.
func (h *harness) upsert(svc *lb.Service) {
	h.t.Helper()
	if err := h.eng.Upsert(svc); err != nil {
		h.t.Fatalf("Upsert(%s): %v", svc.Key, err)
	}
}

// setEndpoints replaces a service's endpoints and fails the test if they are
// rejected.
func (h *harness) setEndpoints(key lb.ServiceKey, eps []lb.Endpoint) {
	h.t.Helper()
	if err := h.eng.SetEndpoints(key, slices.Clone(eps)); err != nil {
		h.t.Fatalf("SetEndpoints(%s): %v", key, err)
	}
}

// mustFlush syncs the datapath now and fails the test on any sync error.
func (h *harness) mustFlush(what string) {
	h.t.Helper()
	if err := h.eng.Flush(h.ctx); err != nil {
		h.t.Fatalf("Flush after %s: %s sync failed: %v", what, h.dp.Name(), err)
	}
}

// install upserts svc with eps and flushes.
func (h *harness) install(svc *lb.Service, eps []lb.Endpoint) {
	h.t.Helper()
	h.upsert(svc)
	h.setEndpoints(svc.Key, eps)
	h.mustFlush("installing service " + string(svc.Key))
}
