package lb

import (
	"net/netip"
	"slices"
)

// StaleUDP derives, from the services a sync changed, which UDP conntrack
// entries are stale: the one rule every kernel datapath that NATs through
// conntrack applies after a sync (kube-proxy's).
//
// A kernel datapath NATs a UDP flow once, when conntrack creates its entry;
// later datagrams follow the entry, not the rules, and UDP has no
// connection end. So after a sync, for every UDP frontend whose set of
// backend addresses changed (it appeared, went away, or gained or lost a
// backend), the entries of flows to it that are not DNATed to one of its
// current backends are stale: flows to a removed backend, and flows that
// reached it while it had no backend (or before it existed) and were
// never NATed. Entries that are still right stay, so the rule is safe to
// apply to every frontend after a restart (note each service with a nil
// old state). Frontends whose backends kept their addresses (only weights
// or other fields changed) are left alone.
//
// A frontend that moved between services in one sync is judged by its new
// owner's backends: what any service now serves it with wins over a
// service that dropped it. The zero value is ready to use.
type StaleUDP struct {
	fes map[netip.AddrPort]*staleFrontend
}

// StaleUDPFrontend names the UDP frontend whose conntrack entries are stale
// unless DNATed to one of Backends (none: every entry of the frontend). An
// unspecified Frontend address (a NodePort on every node address) stands
// for every destination address of its family on the port.
type StaleUDPFrontend struct {
	Frontend netip.AddrPort
	Backends []netip.AddrPort // sorted
}

type staleFrontend struct {
	backends []netip.AddrPort // set only by a state that serves the frontend
	changed  bool
}

// Note records a service that changed from old to now in a sync (either
// nil: added or removed). Noting the same pair twice is harmless.
func (s *StaleUDP) Note(old, now *ServiceState) {
	if old == now {
		return
	}
	if s.fes == nil {
		s.fes = make(map[netip.AddrPort]*staleFrontend)
	}
	before, after := udpBackends(old), udpBackends(now)
	for fe, bes := range after {
		e := s.entry(fe)
		prev, had := before[fe]
		e.backends = bes
		e.changed = e.changed || !had || !slices.Equal(prev, bes)
	}
	for fe := range before {
		if _, kept := after[fe]; !kept {
			s.entry(fe).changed = true
		}
	}
}

// Frontends returns the frontends whose stale entries must be deleted,
// sorted by frontend.
func (s *StaleUDP) Frontends() []StaleUDPFrontend {
	var out []StaleUDPFrontend
	for fe, e := range s.fes {
		if e.changed {
			out = append(out, StaleUDPFrontend{Frontend: fe, Backends: e.backends})
		}
	}
	slices.SortFunc(out, func(a, b StaleUDPFrontend) int { return a.Frontend.Compare(b.Frontend) })
	return out
}

// Empty reports whether no frontend needs its entries checked.
func (s *StaleUDP) Empty() bool {
	for _, e := range s.fes {
		if e.changed {
			return false
		}
	}
	return true
}

func (s *StaleUDP) entry(fe netip.AddrPort) *staleFrontend {
	e := s.fes[fe]
	if e == nil {
		e = &staleFrontend{}
		s.fes[fe] = e
	}
	return e
}

// udpBackends returns the UDP frontends of st with their backend
// addresses, sorted.
func udpBackends(st *ServiceState) map[netip.AddrPort][]netip.AddrPort {
	if st == nil {
		return nil
	}
	out := make(map[netip.AddrPort][]netip.AddrPort)
	for _, fs := range st.Frontends {
		if fs.Protocol != UDP {
			continue
		}
		bes := make([]netip.AddrPort, len(fs.Backends))
		for i, b := range fs.Backends {
			bes[i] = b.Addr
		}
		slices.SortFunc(bes, netip.AddrPort.Compare)
		out[netip.AddrPortFrom(fs.Addr.Unmap(), fs.Port)] = bes
	}
	return out
}
