package iptables

import (
	"net/netip"
	"slices"

	"go.uber.org/zap"

	"github.com/lbkit/lbkit/internal/conntrack"
	"github.com/lbkit/lbkit/lb"
)

// clearConntrack deletes stale UDP conntrack entries of the frontends a sync
// changed. A UDP flow follows its conntrack entry, not the rules, so an
// entry DNATed to a backend that is gone (or one created while the frontend
// had no backend, and so not DNATed) would keep the flow broken. For every
// UDP frontend whose backends changed it deletes the entries not DNATed to
// one of its current backends (all of them for a frontend that went away);
// entries that are still right stay, which makes it safe after a restart.
// Failures are logged: the rules are in place either way.
func (d *Datapath) clearConntrack(changes []change) {
	var f conntrack.Filter
	for _, c := range changes {
		now, before := udpFrontends(c.new), udpFrontends(c.old)
		for fe, bes := range now {
			if old, ok := before[fe]; !ok || !slices.Equal(old, bes) {
				f.Serving = append(f.Serving, conntrack.Serving{Frontend: fe, Backends: bes})
			}
		}
		for fe := range before {
			if _, ok := now[fe]; !ok {
				f.Serving = append(f.Serving, conntrack.Serving{Frontend: fe})
			}
		}
	}
	if len(f.Serving) == 0 {
		return
	}
	n, err := conntrack.ClearUDP(d.netns, f)
	if err != nil {
		d.log.Warn("stale UDP conntrack entries not all deleted", zap.Int("frontends", len(f.Serving)), zap.Error(err))
		return
	}
	if n > 0 {
		d.log.Info("deleted stale UDP conntrack entries", zap.Int("entries", n), zap.Int("frontends", len(f.Serving)))
	}
}

// udpFrontends returns the UDP frontends a record programs (in its family)
// with their backends, sorted.
func udpFrontends(r *svcRecord) map[netip.AddrPort][]netip.AddrPort {
	if r == nil {
		return nil
	}
	out := map[netip.AddrPort][]netip.AddrPort{}
	for _, fs := range r.state.Frontends {
		if fs.Protocol != lb.UDP || fs.Addr.Is6() != r.v6 {
			continue
		}
		bes := make([]netip.AddrPort, len(fs.Backends))
		for i, b := range fs.Backends {
			bes[i] = b.Addr
		}
		slices.SortFunc(bes, func(a, b netip.AddrPort) int { return a.Compare(b) })
		out[netip.AddrPortFrom(fs.Addr, fs.Port)] = bes
	}
	return out
}
