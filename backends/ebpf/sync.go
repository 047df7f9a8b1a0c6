package ebpf

import (
	"fmt"

	"github.com/lbkit/lbkit/lb"
)

// work is one service a sync reconciles (lb.Applied's work item).
type work = lb.Work[*svcState]

// planSync computes the plan of one sync: the map writes that take the
// maps from what the bookkeeping says they hold to what todo wants, and
// the bookkeeping that is true once they are written (committed by
// commit, never before). Services that cannot be programmed are returned
// in errs and keep what they had, less frontends they dropped.
func (d *Datapath) planSync(todo []work, full bool, backends int) (*plan, lb.ServiceErrors) {
	p := &plan{}
	if full {
		p = newPlan(len(todo), backends)
		if len(d.frontends) == 0 && d.services.Len() == 0 {
			// Sized once, instead of growing step by step.
			d.frontends = make(map[lb.FrontendID]*feState, len(todo))
			d.services.Reset(len(todo))
		}
		// Room for the bookkeeping of the services planned anew (a
		// periodic full sync plans few: the unchanged ones are only
		// rewritten).
		n := 0
		for _, w := range todo {
			if !w.Unchanged() {
				n++
			}
		}
		p.setFE = make([]*feState, 0, n)
		p.services.Grow(n)
	}
	errs := lb.ServiceErrors{}
	// Frontends that go away from their service first, so that one
	// moving to another service within this sync is taken over there
	// (its entries rewritten in place) rather than removed.
	var released map[lb.FrontendID]*feState
	for _, w := range todo {
		if !w.Has || w.Unchanged() {
			continue
		}
		for _, id := range w.Old.frontends {
			f := d.frontends[id]
			if f == nil || f.service != w.Key || (w.State != nil && hasFrontend(w.State, id)) {
				continue
			}
			if released == nil {
				released = make(map[lb.FrontendID]*feState)
			}
			released[id] = f
		}
	}
	for _, w := range todo {
		if w.State == nil {
			p.services.Delete(w.Key)
			continue
		}
		if full && w.Unchanged() {
			// Unchanged since it was programmed: rewrite its entries.
			for _, id := range w.Old.frontends {
				if f := d.frontends[id]; f != nil && f.service == w.Key {
					p.writeAll(f)
				}
			}
			continue
		}
		m := p.mark()
		fes, err := d.planService(p, w.State, full, released)
		if err != nil {
			p.truncate(m)
			d.ids.fe.rollback()
			d.ids.be.rollback()
			errs[w.Key] = err
			if w.Has {
				// It keeps the frontends it still has, programmed
				// from no state: the next full sync tries again.
				ss := d.mem.newSvc()
				for _, id := range w.Old.frontends {
					if _, gone := released[id]; !gone {
						ss.frontends = append(ss.frontends, id)
					}
				}
				p.services.Set(w.Key, ss, nil)
			}
			continue
		}
		d.ids.fe.commit()
		d.ids.be.commit()
		ss := d.mem.newSvc()
		ss.frontends = d.mem.fidSlice(len(fes))
		for _, f := range fes {
			id := f.fe.ID()
			ss.frontends = append(ss.frontends, id)
			delete(released, id)
		}
		p.services.Set(w.Key, ss, w.State)
		p.setFE = append(p.setFE, fes...)
	}
	for id, f := range released {
		p.removeAll(f)
		p.dropFE = append(p.dropFE, id)
	}
	if full {
		// Frontends adopted from a previous process that no service
		// claimed.
		var claimed map[lb.FrontendID]bool
		for id, f := range d.frontends {
			if f.service != "" {
				continue
			}
			if claimed == nil {
				claimed = make(map[lb.FrontendID]bool, len(p.setFE))
				for _, nf := range p.setFE {
					claimed[nf.fe.ID()] = true
				}
			}
			if !claimed[id] {
				p.removeAll(f)
				p.dropFE = append(p.dropFE, id)
			}
		}
	}
	return p, errs
}

// commit records in the bookkeeping what p programmed, once apply has
// written it, and releases the ids of what p removed.
func (d *Datapath) commit(p *plan) {
	for _, id := range p.dropFE {
		delete(d.frontends, id)
	}
	for _, f := range p.setFE {
		d.frontends[f.fe.ID()] = f
	}
	d.services.Commit(&p.services)
	for _, id := range p.freeFE {
		d.ids.fe.put(id)
	}
	for _, id := range p.freeBE {
		d.ids.be.put(id)
	}
}

// planService plans every frontend of one service into p. A frontend's
// current entries are those released by another service in this sync,
// else those the bookkeeping holds (its own, adopted ones, or, should a
// snapshot give one frontend to two services, the other's: the last one
// planned takes it over). Frontend ownership is the engine's: a snapshot
// holds a frontend in one service, and lb.Validate rejects a service that
// repeats one.
func (d *Datapath) planService(p *plan, st *lb.ServiceState, full bool, released map[lb.FrontendID]*feState) ([]*feState, error) {
	key := st.Key()
	if s := st.Scheduler(); s != lb.Random && s != lb.Maglev {
		return nil, unsupported(key, "scheduler", string(s))
	}
	for i, fs := range st.Frontends {
		if fs.Protocol != lb.TCP && fs.Protocol != lb.UDP {
			return nil, unsupported(key, fmt.Sprintf("frontends[%d].protocol", i), fs.Protocol.String())
		}
	}
	fes := make([]*feState, 0, len(st.Frontends))
	for _, fs := range st.Frontends {
		id := fs.ID()
		old, ok := released[id]
		if !ok {
			old = d.frontends[id]
		}
		nf, err := planFrontend(p, &d.ids, &d.mem, st, fs, old, full)
		if err != nil {
			return nil, fmt.Errorf("ebpf: %w", err)
		}
		fes = append(fes, nf)
	}
	return fes, nil
}

// hasFrontend reports whether st has frontend id.
func hasFrontend(st *lb.ServiceState, id lb.FrontendID) bool {
	for _, fs := range st.Frontends {
		if fs.ID() == id {
			return true
		}
	}
	return false
}

// unsupported returns the error for a field the datapath cannot express.
func unsupported(key lb.ServiceKey, field, value string) error {
	return &lb.UnsupportedError{Service: key, Field: field, Value: value, Datapath: name}
}

// logSync logs one sync's size at debug level.
func (d *Datapath) logSync(full bool, services int, p *plan) {
	d.log.Debug("maps synced", "full", full, "services", services, "mapOps", p.ops())
}
