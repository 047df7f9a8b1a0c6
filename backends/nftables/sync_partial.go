package nftables

import (
	"fmt"
	"net/netip"

	"github.com/lbkit/lbkit/lb"
)

// partialPlan is what a partial sync changes, in transaction order.
type partialPlan struct {
	chains    []chainRef // to create, or to rewrite when they exist
	del, add  []elem
	dropChain []chainKey // owned chains no longer used, after the elements
}

func (p *partialPlan) empty() bool {
	return len(p.chains)+len(p.del)+len(p.add)+len(p.dropChain) == 0
}

// partialWork is a partial sync's plan and the bookkeeping it leads to
// (committed by commit, once the kernel accepted the plan).
type partialWork struct {
	plan         partialPlan
	services     lb.Commit[struct{}]
	hairpinDelta map[netip.Addr]int32
	stale        *staleUDP
	errs         lb.ServiceErrors
}

// partialSync programs the services of todo only (lb.Applied's work list),
// by difference between the state each was last programmed with and its
// new one: its elements in the maps, the chains it needs that do not exist
// yet (or, for ClientIP affinity, whose rules changed), and hairpin
// elements of addresses no other service uses. The cost is that of the
// services in todo, whatever the number of services.
func (d *Datapath) partialSync(todo []work) (syncResult, error) {
	w := d.planPartial(todo)
	res := syncResult{errs: w.errs, added: len(w.plan.add), deleted: len(w.plan.del)}
	if !w.plan.empty() {
		g0, g1, err := d.apply(&w.plan)
		if err != nil {
			return res, err
		}
		if d.gen == 0 || g0 != d.gen || g1 != g0+1 {
			d.gen = 0 // someone else committed: the next full sync reads back
		} else {
			d.gen = g1
		}
	}
	d.commit(w)
	w.stale.clear(d.cfg)
	return res, nil
}

// planPartial computes what a partial sync of todo changes.
func (d *Datapath) planPartial(todo []work) *partialWork {
	w := &partialWork{
		hairpinDelta: make(map[netip.Addr]int32),
		stale:        newStaleUDP(),
		errs:         lb.ServiceErrors{},
	}
	planned := make(map[chainKey]bool)
	for _, t := range todo {
		// old is nil when the service is not programmed: a held service
		// always has its state (a transaction is all or nothing).
		st, old := t.State, t.Applied
		if st != nil {
			if err := check(st); err != nil {
				w.errs[t.Key] = err
				continue // keeps its previous programming
			}
		}
		if old == st {
			continue
		}
		oldElems, oldChains, oldHairpin := d.cfg.serviceElems(old)
		newElems, newChains, newHairpin := d.cfg.serviceElems(st)
		dl, ad := diffElems(index(oldElems), index(newElems))
		w.plan.del, w.plan.add = append(w.plan.del, dl...), append(w.plan.add, ad...)
		d.planChains(&w.plan, planned, oldChains, newChains)
		for _, a := range oldHairpin {
			w.hairpinDelta[a]--
		}
		for _, a := range newHairpin {
			w.hairpinDelta[a]++
		}
		if st == nil {
			w.services.Delete(t.Key)
		} else {
			w.services.Set(t.Key, struct{}{}, st)
		}
		w.stale.note(old, st)
	}
	for a, delta := range w.hairpinDelta {
		before := d.hairpin[a]
		switch after := before + delta; {
		case before == 0 && after > 0:
			w.plan.add = append(w.plan.add, hairpinElem(a))
		case before > 0 && after <= 0:
			w.plan.del = append(w.plan.del, hairpinElem(a))
		}
	}
	return w
}

// commit updates the bookkeeping after the plan's transaction succeeded.
func (d *Datapath) commit(w *partialWork) {
	d.services.Commit(&w.services)
	for a, delta := range w.hairpinDelta {
		if n := d.hairpin[a] + delta; n > 0 {
			d.hairpin[a] = n
		} else {
			delete(d.hairpin, a)
		}
	}
	for _, c := range w.plan.chains {
		d.chains[c.key()] = struct{}{}
	}
	for _, k := range w.plan.dropChain {
		delete(d.chains, k)
	}
}

// planChains adds to the plan the chains a service's change needs: shared
// target chains that do not exist yet, its own (affinity) chains that are
// new or whose rules changed, and its own chains it no longer uses.
func (d *Datapath) planChains(plan *partialPlan, planned map[chainKey]bool, oldChains, newChains []chainRef) {
	was := make(map[chainKey]chainRef, len(oldChains))
	for _, c := range oldChains {
		was[c.key()] = c
	}
	for _, c := range newChains {
		k := c.key()
		_, exists := d.chains[k]
		if planned[k] || (exists && (!c.owned() || was[k] == c)) {
			continue
		}
		planned[k] = true
		plan.chains = append(plan.chains, c)
	}
	now := make(map[chainKey]bool, len(newChains))
	for _, c := range newChains {
		now[c.key()] = true
	}
	for k, c := range was {
		if c.owned() && !now[k] {
			plan.dropChain = append(plan.dropChain, k)
		}
	}
}

// apply sends one transaction: chains, then element deletions, then
// additions (so that an element that changes, or moves between services,
// is deleted before it is added again), then chains no longer used. It
// returns the ruleset generations before and after (0 when unknown).
func (d *Datapath) apply(plan *partialPlan) (g0, g1 uint32, err error) {
	cn, err := d.cfg.dial()
	if err != nil {
		return 0, 0, err
	}
	defer cn.close()
	g0, _ = cn.generation()
	for _, c := range plan.chains {
		_, exists := d.chains[c.key()]
		cn.writeChain(c.v6, c.def(), exists)
	}
	if err := cn.writeElems(plan.del, true); err != nil {
		return 0, 0, fmt.Errorf("nftables: %w", err)
	}
	if err := cn.writeElems(plan.add, false); err != nil {
		return 0, 0, fmt.Errorf("nftables: %w", err)
	}
	for _, k := range plan.dropChain {
		cn.deleteChain(k.v6, k.name)
	}
	if err := cn.flush(); err != nil {
		return 0, 0, fmt.Errorf("nftables: partial sync%s: %w", d.cfg.where(), err)
	}
	g1, _ = cn.generation()
	return g0, g1, nil
}
