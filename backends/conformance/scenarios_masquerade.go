package conformance

import "net/netip"

// Cluster CIDRs of the masquerade scenarios: the client's range, and one
// that excludes it.
var (
	clientRange = netip.MustParsePrefix("198.18.1.0/24")
	otherRange  = netip.MustParsePrefix("198.18.3.0/24")
)

func masqueradeScenarios() []scenario {
	skip := func(o Options) string {
		return unless(o.Masquerades && o.PreservesClientIP,
			"the datapath does not masquerade by the Env settings and preserve client addresses otherwise (Options.Masquerades, PreservesClientIP)")
	}
	return []scenario{
		{name: "masquerade_none", skip: skip, run: func(h *harness) { masquerade(h, false) }},
		{name: "masquerade_all", skip: skip, env: func(e *Env) { e.MasqueradeAll = true },
			run: func(h *harness) { masquerade(h, true) }},
		{name: "masquerade_outside_cluster", skip: skip, env: func(e *Env) { e.ClusterCIDRs = []netip.Prefix{otherRange} },
			run: func(h *harness) { masquerade(h, true) }},
		{name: "masquerade_inside_cluster", skip: skip, env: func(e *Env) { e.ClusterCIDRs = []netip.Prefix{clientRange} },
			run: func(h *harness) { masquerade(h, false) }},
	}
}

// masquerade: a ClusterIP's backends see the client's own address, or the
// node's bridge address when the scenario's settings masquerade (all
// traffic, or traffic from outside the cluster CIDRs).
func masquerade(h *harness, masqueraded bool) {
	if !h.opts.Masquerades || !h.opts.PreservesClientIP {
		h.skipf("does not masquerade by the Env settings and preserve client addresses otherwise (Options.Masquerades, PreservesClientIP)")
	}
	h.requireNamespaces("source addresses are checked between namespaces")
	sched := h.spreadScheduler()
	fes := h.frontends(false, h.protocols()...)
	h.install(service("masq", sched, fes...), h.ready())
	want, why := h.client.IPv4, "no masquerading applies"
	if masqueraded {
		want, why = h.env.Topo.BridgeIPv4, "masqueraded to the node's bridge address"
	}
	for _, fe := range fes {
		rs := h.replies(fe, 10)
		h.assertOnly(fe, tallyOf(rs), h.names()...)
		h.assertClientAddr(fe, rs, want, why)
	}
}
