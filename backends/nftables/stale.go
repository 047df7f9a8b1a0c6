package nftables

import (
	"github.com/lbkit/lbkit/internal/conntrack"
	"github.com/lbkit/lbkit/lb"
)

// staleUDP collects the services a sync changed; lb.StaleUDP derives from
// them, by the rule every datapath shares, which UDP conntrack entries are
// stale (flows of a changed UDP frontend not DNATed to one of its current
// backends). UDP has no connection end, so without this such flows would
// stay broken for as long as they keep sending.
type staleUDP struct {
	lb.StaleUDP
}

func newStaleUDP() *staleUDP { return &staleUDP{} }

// note records a service that changed from old to st.
func (s *staleUDP) note(old, st *lb.ServiceState) { s.Note(old, st) }

// clear deletes the stale entries in the namespace. Failures are logged:
// the rules are right, and the next change of the service tries again.
func (s *staleUDP) clear(c *config) {
	n, fes, err := conntrack.ClearStaleUDP(c.netns, &s.StaleUDP)
	if err != nil {
		c.log.Warn("stale UDP conntrack entries not cleared", "frontends", fes, "error", err)
		return
	}
	if n > 0 {
		c.log.Info("cleared stale UDP conntrack entries", "entries", n, "frontends", fes)
	}
}
