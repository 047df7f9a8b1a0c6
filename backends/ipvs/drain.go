package ipvs

import (
	"net/netip"
	"time"
)

// drainInterval returns how often draining real servers are checked: a
// fifth of the bound, between 1 and 10 seconds.
func (d *Datapath) drainInterval() time.Duration {
	return min(max(d.o.GracefulTerminationTimeout/5, time.Second), 10*time.Second)
}

// drainPass deletes every draining real server whose connections are gone
// (no active and no inactive IPVS connections) or whose bound has passed:
// one real-server dump per virtual server with draining real servers.
func (d *Datapath) drainPass() {
	if len(d.draining) == 0 || d.ipvs == nil {
		return
	}
	byVS := map[vsKey][]netip.AddrPort{}
	for dk := range d.draining {
		byVS[dk.vs] = append(byVS[dk.vs], dk.dest)
	}
	now := d.now()
	for k, dests := range byVS {
		kv := d.kvs[k]
		if kv == nil {
			for _, dest := range dests {
				delete(d.draining, drainKey{k, dest})
			}
			continue
		}
		svc := svcID(k)
		ds, err := d.ipvs.dests(svc)
		if err != nil {
			if notFound(err) {
				delete(d.kvs, k)
				for _, dest := range dests {
					delete(d.draining, drainKey{k, dest})
				}
				continue
			}
			d.log.Warn("checking draining real servers failed", "vs", k.String(), "error", err)
			continue
		}
		conns := map[netip.AddrPort]int{}
		weights := map[netip.AddrPort]int{}
		for _, dst := range ds {
			if a, err := destAddr(dst); err == nil {
				conns[a] = dst.ActiveConnections + dst.InactiveConnections
				weights[a] = dst.Weight
			}
		}
		for _, dest := range dests {
			dk := drainKey{k, dest}
			w, present := weights[dest]
			switch {
			case !present:
				delete(d.draining, dk)
				delete(kv.dests, dest)
				continue
			case w != 0:
				// Someone gave it weight again: not ours to drain.
				delete(d.draining, dk)
				continue
			}
			expired := now.Sub(d.draining[dk].since) >= d.o.GracefulTerminationTimeout
			if conns[dest] > 0 && !expired {
				continue
			}
			if err := d.ipvs.delDest(svc, toDest(dest, 0)); err != nil && !notFound(err) {
				d.log.Warn("deleting drained real server failed", "vs", k.String(), "dest", dest, "error", err)
				continue
			}
			delete(d.draining, dk)
			delete(kv.dests, dest)
			d.log.Debug("drained real server deleted", "vs", k.String(), "dest", dest,
				"connectionsLeft", conns[dest], "boundReached", expired)
		}
	}
}

// scheduleDrain arms the drain timer while real servers drain, so that
// they go in time even when no sync comes.
func (d *Datapath) scheduleDrain() {
	if len(d.draining) == 0 || d.drainTimer != nil || d.ipvs == nil {
		return // nothing to do, already armed, or closed
	}
	d.drainTimer = time.AfterFunc(d.drainInterval(), func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.drainTimer = nil
		d.drainPass()
		d.scheduleDrain()
	})
}

// Draining returns the number of real servers draining right now.
func (d *Datapath) Draining() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.draining)
}
