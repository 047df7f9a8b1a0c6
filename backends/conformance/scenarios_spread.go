package conformance

import "github.com/lbkit/lbkit/lb"

// Bounds of the spread checks. With 300 requests over 3 backends a fair
// scheduler gives each about 100 (standard deviation about 8); 20% (60) is
// about five deviations away, so the check cannot flake.
const (
	spreadRequests = 300
	minShare       = 0.20
	// heavyMinShare bounds the backend of weight 4 among weights 1,1,4: it
	// should get 4/6 (200 of 300, deviation about 8); 45% (135) is eight
	// deviations below.
	heavyMinShare = 0.45
)

func spreadScenarios() []scenario {
	return []scenario{
		{name: "tcp_spread", run: func(h *harness) { spread(h, lb.TCP) }},
		{name: "udp_spread", run: func(h *harness) { spread(h, lb.UDP) }},
		{name: "ipv6_spread", ipv6: true, run: ipv6Spread},
		{name: "weights", run: weights},
	}
}

// spread: 300 requests (TCP connections, or UDP flows from fresh source
// ports, each a full round trip) reach all three backends, each at least 20%.
func spread(h *harness, proto lb.Protocol) {
	sched := h.spreadScheduler()
	fe := h.frontend(proto)
	h.install(service("spread", sched, fe), h.ready())
	c := h.count(fe, spreadRequests)
	h.assertShares(fe, c, h.names(), minShare)
}

// ipv6Spread: an IPv6 frontend over IPv6 endpoints spreads TCP connections
// like IPv4, and UDP round trips work.
func ipv6Spread(h *harness) {
	sched := h.spreadScheduler()
	protos := h.protocols()
	fes := h.frontends(true, protos...)
	h.install(service("spread6", sched, fes...), h.readyFamily(true))
	for _, fe := range fes {
		if fe.Protocol == lb.TCP {
			h.assertShares(fe, h.count(fe, spreadRequests), h.names(), minShare)
			continue
		}
		c := h.count(fe, 60)
		h.assertOnly(fe, c, h.names()...)
		h.assertSeen(fe, c, h.names()...)
	}
}

// weights: with weights 1, 1 and 4 the heavy backend gets most connections
// and the light ones still some.
func weights(h *harness) {
	if !h.caps.Weights {
		h.skipf("does not declare weights")
	}
	var sched lb.Scheduler
	switch {
	case h.caps.SupportsScheduler(lb.Random):
		sched = lb.Random
	case h.caps.SupportsScheduler(lb.WRR):
		sched = lb.WRR
	default:
		h.skipf("declares weights but neither scheduler random nor wrr, which honour them")
	}
	fe := h.frontend(lb.TCP)
	eps := h.ready()
	eps[2].Weight = 4
	h.install(service("weighted", sched, fe), eps)
	c := h.count(fe, spreadRequests)
	heavy := h.backends[2].name
	h.assertOnly(fe, c, h.names()...)
	h.assertSeen(fe, c, h.names()...)
	if float64(c[heavy]) < heavyMinShare*float64(c.total()) {
		h.t.Errorf("%s (%s): %s has weight 4 of 6 but answered %d of %d, want at least %.0f%% (answers %v)",
			fe, sched, heavy, c[heavy], c.total(), 100*heavyMinShare, c)
	}
}

// protocols returns TCP and UDP, those of them the datapath declares, and
// skips the scenario when it declares neither.
func (h *harness) protocols() []lb.Protocol {
	h.t.Helper()
	var out []lb.Protocol
	for _, p := range []lb.Protocol{lb.TCP, lb.UDP} {
		if h.caps.SupportsProtocol(p) {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		h.skipf("declares neither TCP nor UDP")
	}
	return out
}
