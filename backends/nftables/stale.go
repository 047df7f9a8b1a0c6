package nftables

import (
	"net/netip"

	"go.uber.org/zap"

	"github.com/lbkit/lbkit/internal/conntrack"
	"github.com/lbkit/lbkit/lb"
)

// staleUDP collects the UDP frontends whose conntrack entries must be
// checked after a sync: every UDP frontend of a changed service, old and
// new, with the backends it has now (none when it is gone or has none).
// Entries of those frontends that are not DNATed to a current backend are
// deleted: flows to a removed backend, and flows that reached the frontend
// while it had no backends (or before it existed) and were never NATed.
// UDP has no connection end, so without this such flows would stay broken
// for as long as they keep sending.
type staleUDP struct {
	serving map[netip.AddrPort][]netip.AddrPort
}

func newStaleUDP() *staleUDP { return &staleUDP{serving: make(map[netip.AddrPort][]netip.AddrPort)} }

// note records the UDP frontends of a service that changed from old to st.
func (s *staleUDP) note(old, st *lb.ServiceState) {
	if old == st {
		return
	}
	for _, x := range []*lb.ServiceState{old, st} {
		if x == nil {
			continue
		}
		for _, fs := range x.Frontends {
			if fs.Protocol != lb.UDP {
				continue
			}
			fe := netip.AddrPortFrom(fs.Addr.Unmap(), fs.Port)
			if _, ok := s.serving[fe]; !ok {
				s.serving[fe] = nil
			}
		}
	}
	if st == nil {
		return
	}
	for _, fs := range st.Frontends {
		if fs.Protocol != lb.UDP {
			continue
		}
		fe := netip.AddrPortFrom(fs.Addr.Unmap(), fs.Port)
		bes := make([]netip.AddrPort, len(fs.Backends))
		for i, b := range fs.Backends {
			bes[i] = b.Addr
		}
		s.serving[fe] = bes
	}
}

// clear deletes the stale entries in the namespace. Failures are logged:
// the rules are right, and the next change of the service tries again.
func (s *staleUDP) clear(c *config) {
	if len(s.serving) == 0 {
		return
	}
	f := conntrack.Filter{Serving: make([]conntrack.Serving, 0, len(s.serving))}
	for fe, bes := range s.serving {
		f.Serving = append(f.Serving, conntrack.Serving{Frontend: fe, Backends: bes})
	}
	n, err := conntrack.ClearUDP(c.netns, f)
	if err != nil {
		c.log.Warn("stale UDP conntrack entries not cleared", zap.Int("frontends", len(s.serving)), zap.Error(err))
		return
	}
	if n > 0 {
		c.log.Info("cleared stale UDP conntrack entries", zap.Int("entries", n), zap.Int("frontends", len(s.serving)))
	}
}
