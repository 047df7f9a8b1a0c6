package conformance

import (
	"slices"
	"time"

	"github.com/lbkit/lbkit/lb"
)

// Sizes and bounds of the scheduler scenarios.
const (
	// stickyRequests is how many connections one client sends to check it
	// sticks to one backend; a non-sticky scheduler over three backends
	// passes with probability 3*(1/3)^30.
	stickyRequests = 30
	// distinctClients and perClientRequests: flows from distinct client
	// IPs must spread (all on one backend has probability 3*(1/3)^20 with a
	// fair hash) while each client sticks.
	distinctClients   = 20
	perClientRequests = 5
	// rrRequests covers three full rotations.
	rrRequests = 9
	// maglevFlows is the number of fixed-source-port flows in the maglev
	// scenario.
	maglevFlows = 60
	// maglevMinStay is the least share of flows on surviving backends that
	// must keep their backend when another backend is removed. Maglev
	// promises minimal disruption, not none: its table is rebuilt and a few
	// slots of survivors can change hands (about 1-3% for 3 -> 2 backends
	// with tables of 251 slots, far less with larger tables). 80% leaves
	// room for that and for sampling ~40 flows.
	maglevMinStay = 0.80
)

func schedulerScenarios() []scenario {
	return []scenario{
		{name: "rr_order", run: rrOrder},
		{name: "sh_sticky", run: shSticky},
		{name: "maglev_stable", run: maglevStable},
		{name: "clientip_affinity", run: clientIPAffinity},
	}
}

// rrOrder: round robin visits the backends in address order, exactly, one
// connection each, starting anywhere in the rotation.
func rrOrder(h *harness) {
	h.requireScheduler(lb.RR)
	fe := h.frontend(lb.TCP)
	h.install(service("rr", lb.RR, fe), h.ready())
	order := h.sortedNames()
	got := make([]string, rrRequests)
	for i := range got {
		got[i] = h.request(fe)
	}
	start := slices.Index(order, got[0])
	if start < 0 {
		h.t.Fatalf("%s (rr): first answer from unknown backend %q", fe, got[0])
	}
	for i, name := range got {
		if want := order[(start+i)%len(order)]; name != want {
			h.t.Errorf("%s (rr): answers %v, want the backends in address order %v, rotating (answer %d is %s, want %s)",
				fe, got, order, i+1, name, want)
			return
		}
	}
}

// shSticky: source hashing sends every connection of a client IP to the
// same backend; distinct client IPs spread over the backends (namespace
// mode only: in loopback mode every client is 127.0.0.1).
func shSticky(h *harness) {
	h.requireScheduler(lb.SH)
	fe := h.frontend(lb.TCP)
	h.install(service("sh", lb.SH, fe), h.ready())
	if c := h.count(fe, stickyRequests); len(c) != 1 {
		h.t.Errorf("%s (sh): %d connections from one client reached %v, want one backend", fe, stickyRequests, c)
	}
	if h.env.Loopback() {
		h.t.Log("loopback mode: every client is 127.0.0.1, so only stickiness is checked")
		return
	}
	per := h.perClient(fe, h.extraClientIPs(distinctClients), perClientRequests)
	h.assertStickyPerClient(fe, per, "sh")
}

// clientIPAffinity: with ClientIP session affinity every connection of a
// client goes to the backend its first one reached; distinct clients still
// spread (namespace mode only).
func clientIPAffinity(h *harness) {
	if !h.caps.Affinity {
		h.skipf("does not declare ClientIP session affinity")
	}
	sched := h.spreadScheduler()
	fe := h.frontend(lb.TCP)
	svc := service("affinity", sched, fe)
	svc.Affinity = lb.SessionAffinity{Type: lb.AffinityClientIP, Timeout: time.Hour}
	h.install(svc, h.ready())
	if c := h.count(fe, stickyRequests); len(c) != 1 {
		h.t.Errorf("%s (%s, ClientIP affinity): %d connections from one client reached %v, want one backend",
			fe, sched, stickyRequests, c)
	}
	if h.env.Loopback() {
		h.t.Log("loopback mode: every client is 127.0.0.1, so only stickiness is checked")
		return
	}
	per := h.perClient(fe, h.extraClientIPs(distinctClients), perClientRequests)
	h.assertStickyPerClient(fe, per, string(sched)+", ClientIP affinity")
}

// maglevStable: maglev maps a flow (fixed source port) to the same backend
// every time, spreads flows, and when a backend is removed the flows on the
// others mostly stay where they were.
func maglevStable(h *harness) {
	h.requireScheduler(lb.Maglev)
	fe := h.frontend(lb.TCP)
	svc := service("maglev", lb.Maglev, fe)
	h.install(svc, h.ready())
	ports := h.sourcePorts(maglevFlows)

	first := h.flowMap(fe, ports)
	second := h.flowMap(fe, ports)
	changed := 0
	for _, p := range ports {
		if first[p] != second[p] {
			changed++
			if changed <= 3 {
				h.t.Errorf("%s (maglev): the flow from port %d went to %s, then to %s, want the same backend", fe, p, first[p], second[p])
			}
		}
	}
	if changed > 0 {
		h.t.Errorf("%s (maglev): %d of %d flows changed backend with nothing changed", fe, changed, len(ports))
	}
	perBackend := tally{}
	for _, b := range first {
		perBackend[b]++
	}
	if len(perBackend) < 2 {
		h.t.Fatalf("%s (maglev): %d flows from distinct source ports all went to %v, want the flow hash to spread them",
			fe, len(ports), perBackend)
	}

	removed := h.backends[2].name
	h.setEndpoints(svc.Key, h.ready(0, 1))
	h.mustFlush("removing " + removed)
	third := h.flowMap(fe, ports)
	survivors, stayed := 0, 0
	for _, p := range ports {
		if third[p] == removed {
			h.t.Errorf("%s (maglev): the flow from port %d still reaches removed %s", fe, p, removed)
		}
		if first[p] == removed {
			continue
		}
		survivors++
		if third[p] == first[p] {
			stayed++
		}
	}
	if survivors == 0 {
		h.t.Fatalf("%s (maglev): no flow was on a surviving backend (flows %v)", fe, perBackend)
	}
	if float64(stayed) < maglevMinStay*float64(survivors) {
		h.t.Errorf("%s (maglev): after removing %s only %d of %d flows on the other backends kept their backend, want at least %.0f%%",
			fe, removed, stayed, survivors, 100*maglevMinStay)
	}
	h.t.Logf("maglev: flows %v; after removing %s, %d of %d flows on survivors stayed", perBackend, removed, stayed, survivors)
}
