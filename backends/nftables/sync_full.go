package nftables

import (
	"fmt"
	"net/netip"

	"github.com/lbkit/lbkit/lb"
)

// desired is the whole state a full sync programs, and the bookkeeping
// that is true once the kernel accepted it (committed by commitFull, never
// before).
type desired struct {
	services lb.Commit[struct{}] // the services whose applied state changes
	n        int                 // services programmed
	elems    []elem
	chains   map[chainKey]chainRef
	hairpin  map[netip.Addr]int32
	stale    *staleUDP
	errs     lb.ServiceErrors
}

// desiredState computes every element for snapshot s. A service the
// datapath cannot express keeps its previous state (if any) and is
// reported.
func (d *Datapath) desiredState(s *lb.Snapshot) *desired {
	todo := d.services.Work(s, lb.ChangeSet{Full: true})
	want := &desired{
		elems:   make([]elem, 0, s.Len()+2*s.Backends()),
		chains:  make(map[chainKey]chainRef),
		hairpin: make(map[netip.Addr]int32),
		stale:   newStaleUDP(),
		errs:    lb.ServiceErrors{},
	}
	// Room for the services whose applied state changes (a periodic full
	// sync has few).
	changing := 0
	for _, w := range todo {
		if !w.Unchanged() {
			changing++
		}
	}
	want.services.Grow(changing)
	for _, w := range todo {
		st := w.State
		if st == nil {
			want.services.Delete(w.Key)
			want.stale.note(w.Applied, nil)
			continue
		}
		if err := check(st); err != nil {
			want.errs[w.Key] = err
			if st = w.Applied; st == nil {
				continue
			}
		}
		if st != w.Applied {
			want.services.Set(w.Key, struct{}{}, st)
			want.stale.note(w.Applied, st)
		}
		want.n++
		elems, chains, hairpin := d.cfg.serviceElems(st)
		want.elems = append(want.elems, elems...)
		for _, c := range chains {
			want.chains[c.key()] = c
		}
		for _, a := range hairpin {
			want.hairpin[a]++
		}
	}
	for a := range want.hairpin {
		want.elems = append(want.elems, hairpinElem(a))
	}
	return want
}

// commitFull records in the bookkeeping what want programmed, once the
// kernel accepted it: the tables now hold exactly want.
func (d *Datapath) commitFull(want *desired) {
	if d.services.Len() == 0 {
		d.services.Reset(want.services.Len()) // sized once, not step by step
	}
	d.services.Commit(&want.services)
	d.hairpin, d.ready = want.hairpin, true
	d.chains = make(map[chainKey]struct{}, len(want.chains))
	for k := range want.chains {
		d.chains[k] = struct{}{}
	}
}

// fullSync makes the tables equal to the snapshot in one transaction.
// Tables of this version are reconciled in place: the chains are rewritten
// (there are few: they do not grow with the services, but for those with
// ClientIP affinity) and the set elements changed by difference with what
// the kernel holds, so a periodic full sync of an unchanged state writes
// little, and the affinity entries survive. Missing tables, or tables of
// another layout, are created afresh.
//
// When nothing was committed in the namespace since the datapath's own last
// transaction (same ruleset generation), the tables are known to match the
// bookkeeping, and the full sync programs only the services whose state
// differs from the snapshot, like a partial sync.
func (d *Datapath) fullSync(s *lb.Snapshot) (syncResult, error) {
	if d.ready && d.gen != 0 {
		if g, err := d.generation(); err == nil && g == d.gen {
			res, err := d.partialSync(d.services.Pending(s, lb.ChangeSet{Full: true}))
			res.full, res.trusted = true, true
			return res, err
		}
	}
	res := syncResult{full: true}
	want := d.desiredState(s)
	cn, err := d.cfg.dial()
	if err != nil {
		return res, err
	}
	defer cn.close()
	g0, gerr := cn.generation()
	ks, err := cn.readState(d.cfg, true)
	if err != nil {
		return res, fmt.Errorf("nftables: read tables %s%s: %w", d.cfg.table, d.cfg.where(), err)
	}
	var add, del []elem
	if !ks.usable() {
		res.recreated = true
		if ks.anyExists() {
			d.cfg.log.Warn("recreating the tables", "table", d.cfg.table, "reason", ks.reason())
		}
		cn.recreateTables()
		if err := cn.addSets(); err != nil {
			return res, fmt.Errorf("nftables: %w", err)
		}
		d.writeChains(cn, want, nil)
		add = want.elems
	} else {
		d.writeChains(cn, want, ks)
		del, add = diffKernel(ks.elems, want.elems)
	}
	if err := cn.writeElems(del, true); err != nil {
		return res, fmt.Errorf("nftables: %w", err)
	}
	if err := cn.writeElems(add, false); err != nil {
		return res, fmt.Errorf("nftables: %w", err)
	}
	if !res.recreated {
		d.dropStale(cn, ks, want)
	}
	if err := cn.flush(); err != nil {
		return res, fmt.Errorf("nftables: full sync of %d services%s: %w", want.n, d.cfg.where(), err)
	}
	res.added, res.deleted, res.errs = len(add), len(del), want.errs
	d.gen = 0
	if g1, err := cn.generation(); gerr == nil && err == nil && g1 == g0+1 {
		d.gen = g1
	}
	d.commitFull(want)
	want.stale.clear(d.cfg)
	return res, nil
}

// writeChains queues the fixed chains of both tables and the chains the
// elements jump to, before the elements change. With the kernel state ks
// (nil for new tables), existing chains get their rules replaced.
func (d *Datapath) writeChains(cn *conn, want *desired, ks *kernelState) {
	for _, v6 := range []bool{false, true} {
		have := make(map[string]bool)
		if ks != nil {
			for _, n := range ks.tables[fam(v6)].chains {
				have[n] = true
			}
		}
		for _, def := range d.cfg.fixedChains(v6) {
			cn.writeChain(v6, def, have[def.name])
		}
		for k, c := range want.chains {
			if k.v6 == v6 {
				cn.writeChain(v6, c.def(), have[k.name])
			}
		}
	}
}

// dropStale queues, after the elements that referenced them are gone, the
// removal of chains and sets the desired state does not have.
func (d *Datapath) dropStale(cn *conn, ks *kernelState, want *desired) {
	for _, v6 := range []bool{false, true} {
		fixed := make(map[string]bool)
		for _, def := range d.cfg.fixedChains(v6) {
			fixed[def.name] = true
		}
		var drop []string
		for _, n := range ks.tables[fam(v6)].chains {
			if _, ok := want.chains[chainKey{v6, n}]; !ok && !fixed[n] {
				drop = append(drop, n)
			}
		}
		// Flush first so that no dropped chain still jumps to another.
		for _, n := range drop {
			cn.flushChain(v6, n)
		}
		for _, n := range drop {
			cn.deleteChain(v6, n)
		}
		for _, n := range ks.tables[fam(v6)].extraSets {
			cn.deleteSet(v6, n)
		}
	}
}

// diffKernel returns what turns the kernel's elements into want: the
// elements to delete (not wanted, or changed) and to add (new, or
// changed). It consumes have.
func diffKernel(have map[elemID]elem, want []elem) (del, add []elem) {
	for _, w := range want {
		id := w.id()
		h, ok := have[id]
		if ok {
			delete(have, id)
			if w.same(h) {
				continue
			}
			del = append(del, h)
		}
		add = append(add, w)
	}
	for _, h := range have {
		del = append(del, h)
	}
	return del, add
}

// generation reads the namespace's ruleset generation.
func (d *Datapath) generation() (uint32, error) {
	cn, err := d.cfg.dial()
	if err != nil {
		return 0, err
	}
	defer cn.close()
	return cn.generation()
}
