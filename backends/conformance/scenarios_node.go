package conformance

import (
	"context"
	"errors"
	"net/netip"
	"syscall"

	"github.com/lbkit/lbkit/internal/netns"
	"github.com/lbkit/lbkit/lb"
)

// Ports of the NodePort scenarios (in Kubernetes' NodePort range).
const (
	nodePortSpecific uint16 = 30080
	nodePortWildcard uint16 = 30081
	nodePortLocal    uint16 = 30082
	nodePortEmpty    uint16 = 30083
	// hairpinRequests: a backend among three that must reach itself at
	// least once misses with probability (2/3)^60 < 1e-10.
	hairpinRequests = 60
)

func nodeScenarios() []scenario {
	return []scenario{
		{name: "nodeport", run: nodePort},
		{name: "nodeport_local_policy", run: nodePortLocalPolicy},
		{name: "no_endpoints_reject", run: noEndpointsReject, skip: func(o Options) string {
			return unless(o.RejectsWithoutEndpoints, "the datapath does not reject connections to frontends without endpoints (Options.RejectsWithoutEndpoints)")
		}},
		{name: "hairpin", run: hairpin},
		{name: "stale_udp_flow", run: staleUDPFlow, skip: func(o Options) string {
			return unless(o.ClearsStaleUDP, "the datapath does not move UDP flows off removed backends (Options.ClearsStaleUDP)")
		}},
		{name: "foreign_state_survives", run: foreignStateSurvives, skip: func(o Options) string {
			return unless(o.Foreign != nil, "no Options.Foreign: the suite does not know what foreign state to install")
		}},
	}
}

// unless returns why when ok is false, else "".
func unless(ok bool, why string) string {
	if ok {
		return ""
	}
	return why
}

// requireNodePort skips unless the datapath declares NodePort frontends
// and the scenario runs in namespaces (a NodePort is on the node's own
// address).
func (h *harness) requireNodePort() {
	h.t.Helper()
	h.requireNamespaces("a NodePort is reached on the node's address, which needs the node namespace")
	if !h.caps.SupportsKind(lb.NodePort) {
		h.skipf("does not declare frontend kind NodePort")
	}
}

// nodePortFrontend returns a NodePort frontend on the node's client-side
// address, or on every node address (0.0.0.0) when wildcard is set.
func (h *harness) nodePortFrontend(p lb.Protocol, port uint16, wildcard bool) lb.Frontend {
	addr := h.env.Topo.Node.IPv4
	if wildcard {
		addr = netip.IPv4Unspecified()
	}
	return lb.Frontend{Addr: addr, Port: port, Protocol: p, Kind: lb.NodePort}
}

// target is where the client sends a frontend's traffic: the frontend's
// own address, or the node's for a NodePort on every address.
func (h *harness) target(fe lb.Frontend) netip.AddrPort {
	if fe.Addr.IsUnspecified() {
		return netip.AddrPortFrom(h.env.Topo.Node.Addr(fe.Addr.Is6()), fe.Port)
	}
	return addr(fe)
}

// replies sends n requests (each must succeed) to fe from the client and
// returns the replies.
func (h *harness) replies(fe lb.Frontend, n int) []netns.Reply {
	h.t.Helper()
	out := make([]netns.Reply, 0, n)
	for i := range n {
		ctx, cancel := context.WithTimeout(h.ctx, okTimeout)
		r, err := h.client.Request(ctx, network(fe), h.target(fe))
		cancel()
		if err != nil {
			h.t.Fatalf("request %d of %d to %s (sent to %s): %v", i+1, n, fe, h.target(fe), err)
		}
		out = append(out, r)
	}
	return out
}

// tallyOf counts replies per backend.
func tallyOf(rs []netns.Reply) tally {
	c := tally{}
	for _, r := range rs {
		c[r.Backend]++
	}
	return c
}

// assertClientAddr fails unless every reply saw the client as want.
func (h *harness) assertClientAddr(fe lb.Frontend, rs []netns.Reply, want netip.Addr, why string) {
	h.t.Helper()
	for _, r := range rs {
		if r.Client.Addr() != want {
			h.t.Errorf("%s: %s saw the client as %s, want %s (%s)", fe, r.Backend, r.Client.Addr(), want, why)
			return
		}
	}
}

// nodePort: a NodePort on the node's address and one on every node address
// reach every backend; under the Cluster external policy the backends see
// the node's bridge address (masquerading), when the datapath masquerades.
func nodePort(h *harness) {
	h.requireNodePort()
	sched := h.spreadScheduler()
	var fes []lb.Frontend
	for _, p := range h.protocols() {
		fes = append(fes, h.nodePortFrontend(p, nodePortSpecific, false), h.nodePortFrontend(p, nodePortWildcard, true))
	}
	h.install(service("nodeport", sched, fes...), h.ready())
	for _, fe := range fes {
		rs := h.replies(fe, sampleRequests)
		c := tallyOf(rs)
		h.assertOnly(fe, c, h.names()...)
		h.assertSeen(fe, c, h.names()...)
		if h.opts.Masquerades {
			h.assertClientAddr(fe, rs, h.env.Topo.BridgeIPv4, "external traffic under the Cluster policy is masqueraded")
		}
	}
}

// nodePortLocalPolicy: with externalTrafficPolicy Local a NodePort reaches
// only this node's endpoints, and (kernel NAT) the backends see the
// client's own address.
func nodePortLocalPolicy(h *harness) {
	h.requireNodePort()
	if !h.caps.LocalPolicy {
		h.skipf("does not declare Local traffic policies")
	}
	sched := h.spreadScheduler()
	fe := h.nodePortFrontend(lb.TCP, nodePortLocal, true)
	svc := service("nodeport-local", sched, fe)
	svc.ExternalPolicy = lb.PolicyLocal
	eps := h.ready()
	eps[1].NodeName = OtherNodeName
	h.install(svc, eps)
	rs := h.replies(fe, sampleRequests)
	c := tallyOf(rs)
	h.assertOnly(fe, c, h.names(0, 2)...)
	h.assertSeen(fe, c, h.names(0, 2)...)
	if h.opts.PreservesClientIP {
		h.assertClientAddr(fe, rs, h.client.IPv4, "the Local policy keeps the client's address")
	}
}

// noEndpointsReject: a new connection to a frontend without endpoints is
// refused at once (not left to time out), and served once endpoints come.
func noEndpointsReject(h *harness) {
	if !h.opts.RejectsWithoutEndpoints {
		h.skipf("does not reject connections to frontends without endpoints (Options.RejectsWithoutEndpoints)")
	}
	h.requireNamespaces("ICMP rejects are checked between namespaces")
	sched := h.spreadScheduler()
	fes := h.frontends(false, h.protocols()...)
	if h.caps.SupportsKind(lb.NodePort) {
		fes = append(fes, h.nodePortFrontend(lb.TCP, nodePortEmpty, true))
	}
	svc := service("empty", sched, fes...)
	h.install(svc, nil)
	for _, fe := range fes {
		ctx, cancel := context.WithTimeout(h.ctx, failTimeout)
		r, err := h.client.Request(ctx, network(fe), h.target(fe))
		cancel()
		switch {
		case err == nil:
			h.t.Errorf("%s without endpoints was answered by %s", fe, r.Backend)
		case !errors.Is(err, syscall.ECONNREFUSED):
			h.t.Errorf("%s without endpoints: %v; want the connection refused at once (ECONNREFUSED)", fe, err)
		}
	}
	h.setEndpoints(svc.Key, h.ready())
	h.mustFlush("adding endpoints")
	for _, fe := range fes {
		h.assertSeen(fe, tallyOf(h.replies(fe, sampleRequests)), h.names()...)
	}
}

// hairpin: a backend that reaches its own service through the frontend is
// answered, also when the connection lands on itself (internal/netns puts
// the node's bridge ports in hairpin mode, as a CNI bridge does for pods).
func hairpin(h *harness) {
	h.requireNamespaces("a backend reaches the frontend from its own namespace")
	sched := h.spreadScheduler()
	fe := h.frontend(lb.TCP)
	h.install(service("hairpin", sched, fe), h.ready())
	self := h.env.Topo.Backends[0]
	c := tally{}
	for i := range hairpinRequests {
		ctx, cancel := context.WithTimeout(h.ctx, okTimeout)
		r, err := self.Request(ctx, "tcp", addr(fe))
		cancel()
		if err != nil {
			h.t.Fatalf("request %d from %s to its own service %s: %v (answers so far %v)", i+1, self.Name, fe, err, c)
		}
		c[r.Backend]++
	}
	h.assertOnly(fe, c, h.names()...)
	h.assertSeen(fe, c, self.Name)
}

// staleUDPFlow: a UDP flow from a fixed source port keeps its backend; when
// that backend is removed, the flow's next datagram reaches a live one (the
// removed backend's server still runs, so a stale flow would be answered by
// it).
func staleUDPFlow(h *harness) {
	if !h.opts.ClearsStaleUDP {
		h.skipf("does not move UDP flows off removed backends (Options.ClearsStaleUDP)")
	}
	h.requireNamespaces("a fixed client source port")
	sched := h.spreadScheduler()
	fe := h.frontend(lb.UDP)
	svc := service("stale-udp", sched, fe)
	h.install(svc, h.ready())
	src := netip.AddrPortFrom(h.client.IPv4, h.sourcePorts(1)[0])
	first, err := h.tryRequestFrom(fe, src)
	if err != nil {
		h.t.Fatalf("request to %s from %s: %v", fe, src, err)
	}
	if again, err := h.tryRequestFrom(fe, src); err != nil || again.Backend != first.Backend {
		h.t.Fatalf("the flow from %s went to %s, then to %v (%v); want the same backend", src, first.Backend, again.Backend, err)
	}
	var keep []int
	for i, b := range h.backends {
		if b.name != first.Backend {
			keep = append(keep, i)
		}
	}
	h.setEndpoints(svc.Key, h.ready(keep...))
	h.mustFlush("removing " + first.Backend)
	r, err := h.tryRequestFrom(fe, src)
	switch {
	case err != nil:
		h.t.Errorf("after removing %s, the flow from %s failed: %v", first.Backend, src, err)
	case r.Backend == first.Backend:
		h.t.Errorf("after removing %s, the flow from %s still reaches it (stale conntrack entry)", first.Backend, src)
	}
}

// foreignStateSurvives: state someone else installed in the node namespace
// (Options.Foreign) is untouched by first, partial and full syncs and by
// Cleanup.
func foreignStateSurvives(h *harness) {
	if h.opts.Foreign == nil {
		h.skipf("has no Options.Foreign: the suite does not know what foreign state to install")
	}
	h.requireNamespaces("foreign state lives in the node namespace")
	check := h.opts.Foreign(h.t, h.env)
	sched := h.spreadScheduler()
	fe := h.frontend(lb.TCP)
	svc := service("neighbour", sched, fe)
	h.install(svc, h.ready())
	h.request(fe)
	check(h.t, "the first sync")
	h.setEndpoints(svc.Key, h.ready(0, 1))
	h.mustFlush("removing an endpoint")
	check(h.t, "a partial sync")
	h.eng.RequestFullSync()
	h.mustFlush("a full resync")
	check(h.t, "a full sync")
	h.eng.Delete(svc.Key)
	h.mustFlush("deleting the service")
	check(h.t, "deleting a service")
	if err := h.eng.Cleanup(h.ctx); err != nil {
		h.t.Fatalf("Cleanup: %v", err)
	}
	check(h.t, "Cleanup")
}
