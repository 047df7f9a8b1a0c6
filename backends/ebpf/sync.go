package ebpf

import (
	"fmt"

	"go.uber.org/zap"

	"github.com/lbkit/lbkit/lb"
)

// work is one service a sync reconciles; state nil means deleted.
type work struct {
	key   lb.ServiceKey
	state *lb.ServiceState
}

// workList returns the services to reconcile: the changed ones (sorted by
// key), or on a full sync every service of s and every one programmed (in
// the snapshot's order).
func (d *Datapath) workList(s *lb.Snapshot, changed lb.ChangeSet) []work {
	var todo []work
	if !changed.Full {
		for _, k := range changed.Keys() {
			st, _ := s.Service(k)
			todo = append(todo, work{k, st})
		}
		return todo
	}
	todo = make([]work, 0, s.Len()+len(d.services))
	s.Range(func(st *lb.ServiceState) bool {
		todo = append(todo, work{st.Key(), st})
		return true
	})
	for k := range d.services {
		if _, ok := s.Service(k); !ok {
			todo = append(todo, work{k, nil})
		}
	}
	return todo
}

// planSync computes the plan of one sync and updates the shadow state to
// what the plan programs. Services that cannot be programmed are returned
// in errs and keep what they had, less frontends they dropped.
func (d *Datapath) planSync(todo []work, full bool, backends int) (*plan, lb.ServiceErrors) {
	p := &plan{}
	if full {
		p = newPlan(len(todo), backends)
		if len(d.frontends) == 0 && len(d.services) == 0 {
			// Sized once, instead of growing step by step.
			d.frontends = make(map[lb.FrontendID]*feState, len(todo))
			d.services = make(map[lb.ServiceKey]*svcState, len(todo))
		}
	}
	errs := lb.ServiceErrors{}
	// Frontends that go away first, so that a frontend moving to another
	// service within this sync is free when that service claims it.
	for _, w := range todo {
		ss := d.services[w.key]
		if ss == nil {
			continue
		}
		kept := ss.frontends[:0]
		for _, id := range ss.frontends {
			if w.state != nil && hasFrontend(w.state, id) {
				kept = append(kept, id)
				continue
			}
			p.removeAll(d.frontends[id])
			delete(d.frontends, id)
		}
		ss.frontends = kept
		if w.state == nil {
			delete(d.services, w.key)
		}
	}
	for _, w := range todo {
		if w.state == nil {
			continue
		}
		ss := d.services[w.key]
		if full && ss != nil && ss.applied == w.state {
			// Unchanged since it was programmed: rewrite its entries.
			for _, id := range ss.frontends {
				p.writeAll(d.frontends[id])
			}
			continue
		}
		m := p.mark()
		fes, err := d.planService(p, w.state, full)
		if err != nil {
			p.truncate(m)
			d.ids.fe.rollback()
			d.ids.be.rollback()
			errs[w.key] = err
			if ss != nil {
				ss.applied = nil
			}
			continue
		}
		d.ids.fe.commit()
		d.ids.be.commit()
		if ss == nil {
			ss = d.mem.newSvc()
			d.services[w.key] = ss
		}
		ss.applied = w.state
		if cap(ss.frontends) < len(fes) {
			ss.frontends = d.mem.fidSlice(len(fes))
		}
		ss.frontends = ss.frontends[:0]
		for _, f := range fes {
			d.frontends[f.fe.ID()] = f
			ss.frontends = append(ss.frontends, f.fe.ID())
		}
	}
	if full {
		// Frontends adopted from a previous process that no service
		// claimed.
		for id, f := range d.frontends {
			if f.service == "" {
				p.removeAll(f)
				delete(d.frontends, id)
			}
		}
	}
	return p, errs
}

// planService plans every frontend of one service into p.
func (d *Datapath) planService(p *plan, st *lb.ServiceState, full bool) ([]*feState, error) {
	key := st.Key()
	if s := st.Scheduler(); s != lb.Random && s != lb.Maglev {
		return nil, unsupported(key, "scheduler", string(s))
	}
	var buf [4]*feState
	olds := buf[:0]
	if len(st.Frontends) > len(buf) {
		olds = make([]*feState, 0, len(st.Frontends))
	}
	olds = olds[:len(st.Frontends)]
	for i, fs := range st.Frontends {
		id := fs.ID()
		for j := range i {
			if st.Frontends[j].ID() == id {
				return nil, fmt.Errorf("ebpf: frontends[%d] %s repeats frontends[%d]", i, fs.Frontend, j)
			}
		}
		if fs.Protocol != lb.TCP && fs.Protocol != lb.UDP {
			return nil, unsupported(key, fmt.Sprintf("frontends[%d].protocol", i), fs.Protocol.String())
		}
		f := d.frontends[id]
		if f != nil && f.service != "" && f.service != key {
			return nil, fmt.Errorf("ebpf: frontend %s is already served for service %q", fs.Frontend, f.service)
		}
		olds[i] = f
	}
	fes := make([]*feState, 0, len(st.Frontends))
	for i, fs := range st.Frontends {
		nf, err := planFrontend(p, &d.ids, &d.mem, st, fs, olds[i], full)
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
	d.log.Debug("maps synced", zap.Bool("full", full), zap.Int("services", services), zap.Int("mapOps", p.ops()))
}
