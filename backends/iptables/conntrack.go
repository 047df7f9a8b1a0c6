package iptables

import (
	"github.com/lbkit/lbkit/internal/conntrack"
	"github.com/lbkit/lbkit/lb"
)

// clearConntrack deletes stale UDP conntrack entries of the frontends a sync
// changed, as lb.StaleUDP derives them for every datapath: for each UDP
// frontend whose backends changed, the entries not DNATed to one of its
// current backends (all of them for a frontend that went away). Failures
// are logged: the rules are in place either way.
func (d *Datapath) clearConntrack(changes []change) {
	n, fes, err := conntrack.ClearStaleUDP(d.netns, staleOf(changes))
	if err != nil {
		d.log.Warn("stale UDP conntrack entries not all deleted", "frontends", fes, "error", err)
		return
	}
	if n > 0 {
		d.log.Info("deleted stale UDP conntrack entries", "entries", n, "frontends", fes)
	}
}

// staleOf notes every changed service (each family's record of it holds
// the same state).
func staleOf(changes []change) *lb.StaleUDP {
	var s lb.StaleUDP
	for _, c := range changes {
		s.Note(c.old.stateOrNil(), c.new.stateOrNil())
	}
	return &s
}

// stateOrNil returns the record's service state; nil for no record.
func (r *svcRecord) stateOrNil() *lb.ServiceState {
	if r == nil {
		return nil
	}
	return r.state
}
