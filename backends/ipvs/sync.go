package ipvs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/moby/ipvs"

	"github.com/lbkit/lbkit/internal/conntrack"
	"github.com/lbkit/lbkit/lb"
)

// Sync programs the services in cs (all of s when cs.Full). A partial sync
// makes netlink requests only for the changed services (plus a check of
// draining real servers); a full sync reads the IPVS table once and repairs
// every difference, without flushing anything.
func (d *Datapath) Sync(ctx context.Context, s *lb.Snapshot, cs lb.ChangeSet) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.open(); err != nil {
		return err
	}
	var err error
	if cs.Full || !d.ready {
		err = d.fullSync(s)
	} else {
		err = d.partialSync(s, cs)
	}
	d.drainPass()
	d.scheduleDrain()
	return err
}

// setup creates the dummy device and applies sysctls and IPVS timeouts.
func (d *Datapath) setup() error {
	if err := d.links.ensure(); err != nil {
		return err
	}
	if err := applySysctls(d.o.Netns, kernelSettings(&d.o)); err != nil {
		return fmt.Errorf("ipvs: kernel settings: %w", err)
	}
	if d.o.TCPTimeout > 0 || d.o.TCPFinTimeout > 0 || d.o.UDPTimeout > 0 {
		if err := d.ipvs.setConfig(&ipvs.Config{TimeoutTCP: d.o.TCPTimeout, TimeoutTCPFin: d.o.TCPFinTimeout, TimeoutUDP: d.o.UDPTimeout}); err != nil {
			return fmt.Errorf("ipvs: set connection timeouts: %w", err)
		}
	}
	d.ready = true
	return nil
}

// nodeAddrsOnce returns a nodeAddrs that lists the node's addresses at most
// once per family per sync.
func (d *Datapath) nodeAddrsOnce() nodeAddrs {
	var cache [2][]netip.Addr
	var done [2]bool
	return func(v6 bool) ([]netip.Addr, error) {
		i := 0
		if v6 {
			i = 1
		}
		if !done[i] {
			as, err := d.links.nodeAddrs(v6, d.o.NodePortAddresses)
			if err != nil {
				return nil, err
			}
			cache[i], done[i] = as, true
		}
		return cache[i], nil
	}
}

// fullSync makes the kernel equal to s. Services that cannot be realized
// keep what they had (their previous virtual servers stay).
func (d *Datapath) fullSync(s *lb.Snapshot) error {
	if err := d.setup(); err != nil {
		return err
	}
	kernel := d.adopted
	d.adopted = nil
	if kernel == nil {
		var err error
		if kernel, err = d.readKernel(); err != nil {
			return err
		}
	}
	d.kvs, d.dirty = kernel, map[vsKey]bool{}

	errs := lb.ServiceErrors{}
	want := map[vsKey]*virtualServer{}
	svcVS := map[lb.ServiceKey][]vsKey{}
	nodes := d.nodeAddrsOnce()
	s.Range(func(st *lb.ServiceState) bool {
		key := st.Key()
		vs, err := desiredOf(st, &d.o, nodes)
		if err != nil {
			errs[key] = err
			vs = d.previous(key)
		}
		for _, k := range sortedVSKeys(vs) {
			if other, taken := want[k]; taken {
				errs[key] = fmt.Errorf("ipvs: virtual server %s is already service %s's", k, other.service)
				continue
			}
			want[k] = vs[k]
			svcVS[key] = append(svcVS[key], k)
		}
		return true
	})
	d.want, d.svcVS = want, svcVS
	elems := newNatElems()
	var ignored natDelta
	d.bindRefs = map[netip.Addr]int{}
	for _, v := range want {
		elems.add(v, &ignored)
		if v.bind {
			d.bindRefs[v.key.Addr]++
		}
	}
	// Routes and nftables take other kernel locks than IPVS: program them
	// on their own sockets while the virtual servers are written.
	side := make(chan error, 1)
	go func() {
		side <- errors.Join(d.syncBound(), d.nat.rebuild(elems))
	}()
	var gone []vsKey
	for _, k := range sortedVSKeys(kernel) {
		if _, ok := want[k]; !ok {
			gone = append(gone, k)
		}
	}
	ipvsErr := d.deleteAll(gone)
	if ipvsErr == nil {
		d.applyAll(sortedVSKeys(want), want, errs)
	}
	if err := errors.Join(ipvsErr, <-side); err != nil {
		return err
	}
	var stale lb.StaleUDP
	states := make(map[lb.ServiceKey]*lb.ServiceState, s.Len())
	s.Range(func(st *lb.ServiceState) bool {
		key := st.Key()
		if _, failed := errs[key]; failed {
			if old := d.states[key]; old != nil {
				states[key] = old
			}
			return true
		}
		stale.Note(d.states[key], st)
		states[key] = st
		return true
	})
	for key, old := range d.states {
		if _, still := s.Service(key); !still {
			stale.Note(old, nil)
		}
	}
	d.states = states
	d.clearStale(&stale)
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// previous returns the virtual servers a service had in the last sync.
func (d *Datapath) previous(key lb.ServiceKey) map[vsKey]*virtualServer {
	out := map[vsKey]*virtualServer{}
	for _, k := range d.svcVS[key] {
		if v := d.want[k]; v != nil {
			out[k] = v
		}
	}
	return out
}

// syncBound makes the dummy device's local routes equal to bindRefs' (a
// full sync: one route dump per family, then the differences in batches).
func (d *Datapath) syncBound() error {
	bound, err := d.links.bound()
	if err != nil {
		return err
	}
	d.bound = bound
	var add, del []netip.Addr
	for a := range bound {
		if d.bindRefs[a] == 0 {
			del = append(del, a)
		}
	}
	for a := range d.bindRefs {
		if !bound[a] {
			add = append(add, a)
		}
	}
	added, deleted, err := d.links.syncRoutes(add, del)
	for _, a := range added {
		d.bound[a] = true
	}
	for _, a := range deleted {
		delete(d.bound, a)
	}
	return err
}

func (d *Datapath) bind(a netip.Addr) error {
	if err := d.links.bind(a); err != nil {
		return err
	}
	d.bound[a] = true
	return nil
}

func (d *Datapath) unbind(a netip.Addr) error {
	if err := d.links.unbind(a); err != nil {
		return err
	}
	delete(d.bound, a)
	return nil
}

// change is one changed service of a partial sync.
type change struct {
	key   lb.ServiceKey
	state *lb.ServiceState         // nil: deleted
	want  map[vsKey]*virtualServer // nil: deleted
}

// partialSync programs the changed services only.
func (d *Datapath) partialSync(s *lb.Snapshot, cs lb.ChangeSet) error {
	errs := lb.ServiceErrors{}
	nodes := d.nodeAddrsOnce()
	var changes []change
	for _, key := range cs.Keys() {
		st, ok := s.Service(key)
		if !ok {
			changes = append(changes, change{key: key})
			continue
		}
		vs, err := desiredOf(st, &d.o, nodes)
		if err != nil {
			errs[key] = err
			continue
		}
		changes = append(changes, change{key: key, state: st, want: vs})
	}
	delta := &natDelta{}
	touched := map[netip.Addr]bool{}
	// Deletions first, so that a virtual server can move between services
	// in one sync.
	for _, ch := range changes {
		for _, k := range d.svcVS[ch.key] {
			if _, keep := ch.want[k]; keep {
				continue
			}
			if v := d.want[k]; v != nil && v.service == ch.key {
				if err := d.deleteVS(k); err != nil {
					errs[ch.key] = err
					continue
				}
				d.setWant(k, nil, delta, touched)
			}
		}
		if ch.want == nil {
			delete(d.svcVS, ch.key)
		}
	}
	for _, ch := range changes {
		if ch.want == nil {
			continue
		}
		var keys []vsKey
		for _, k := range sortedVSKeys(ch.want) {
			v := ch.want[k]
			if other := d.want[k]; other != nil && other.service != ch.key {
				errs[ch.key] = fmt.Errorf("ipvs: virtual server %s is already service %s's", k, other.service)
				continue
			}
			keys = append(keys, k)
			if err := d.applyVS(k, v); err != nil {
				errs[ch.key] = err
			}
			d.setWant(k, v, delta, touched)
		}
		d.svcVS[ch.key] = keys
	}
	var fatal []error
	for _, a := range sortedAddrSet(touched) {
		switch need := d.bindRefs[a] > 0; {
		case need && !d.bound[a]:
			fatal = append(fatal, d.bind(a))
		case !need && d.bound[a]:
			fatal = append(fatal, d.unbind(a))
		}
	}
	if d.nat.present {
		fatal = append(fatal, d.nat.update(delta))
	} else if !d.nat.elems.empty() {
		fatal = append(fatal, d.nat.rebuild(d.nat.elems))
	}
	var stale lb.StaleUDP
	for _, ch := range changes {
		if _, failed := errs[ch.key]; failed {
			continue // noted once it is programmed
		}
		stale.Note(d.states[ch.key], ch.state)
		if ch.state == nil {
			delete(d.states, ch.key)
		} else {
			d.states[ch.key] = ch.state
		}
	}
	d.clearStale(&stale)
	if err := errors.Join(fatal...); err != nil {
		return err
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// setWant records v (nil: nothing) as the desired virtual server k, keeping
// bindRefs and the masquerade elements in step.
func (d *Datapath) setWant(k vsKey, v *virtualServer, delta *natDelta, touched map[netip.Addr]bool) {
	if old := d.want[k]; old != nil {
		d.nat.elems.remove(old, delta)
		if old.bind {
			if d.bindRefs[k.Addr]--; d.bindRefs[k.Addr] <= 0 {
				delete(d.bindRefs, k.Addr)
			}
		}
		touched[k.Addr] = true
	}
	if v == nil {
		delete(d.want, k)
		return
	}
	d.want[k] = v
	d.nat.elems.add(v, delta)
	if v.bind {
		d.bindRefs[k.Addr]++
	}
	touched[k.Addr] = true
}

// deleteVS removes virtual server k from the kernel.
func (d *Datapath) deleteVS(k vsKey) error {
	if err := d.ipvs.delService(svcID(k)); err != nil && !notFound(err) {
		d.dirty[k] = true
		return fmt.Errorf("ipvs: delete virtual server %s: %w", k, err)
	}
	d.forget(k)
	return nil
}

// applyVS makes the kernel's virtual server k equal to want.
func (d *Datapath) applyVS(k vsKey, want *virtualServer) error {
	err := d.applyVSOnce(k, want)
	if err != nil {
		// The kernel's state is unknown now: read it back next time.
		d.dirty[k] = true
		delete(d.kvs, k)
		return fmt.Errorf("ipvs: virtual server %s: %w", k, err)
	}
	return nil
}

func (d *Datapath) applyVSOnce(k vsKey, want *virtualServer) error {
	cur := d.kvs[k]
	if d.dirty[k] {
		var err error
		if cur, err = d.readVS(k); err != nil {
			return err
		}
		delete(d.dirty, k)
	}
	isDraining := func(dest netip.AddrPort) bool {
		_, ok := d.draining[drainKey{k, dest}]
		return ok
	}
	p := planVS(cur, want, isDraining)
	if p.empty() {
		return nil
	}
	svc := toService(want)
	if p.create {
		err := d.ipvs.newService(svc)
		if exists(err) {
			// Not ours as far as we knew (an outsider, or lost state):
			// read it and plan again.
			if cur, err = d.readVS(k); err != nil {
				return err
			}
			if cur == nil {
				return fmt.Errorf("create: exists, but cannot be read back")
			}
			p = planVS(cur, want, isDraining)
		} else if err != nil {
			return fmt.Errorf("create: %w", err)
		} else {
			cur = &virtualServer{key: k, sched: want.sched, flags: want.flags, timeout: want.timeout, dests: map[netip.AddrPort]int{}}
		}
		d.kvs[k] = cur
	}
	if p.update {
		if err := d.ipvs.updateService(svc); err != nil {
			return fmt.Errorf("update: %w", err)
		}
		cur.sched, cur.flags, cur.timeout = want.sched, want.flags, want.timeout
	}
	// IPVS puts a new real server at the head of its list, and rr walks
	// the list: adding in descending order makes the rotation ascending.
	added := sortedDests(p.add)
	slices.Reverse(added)
	for _, dest := range added {
		err := d.ipvs.newDest(svc, toDest(dest, p.add[dest]))
		if exists(err) {
			err = d.ipvs.updateDest(svc, toDest(dest, p.add[dest]))
		}
		if err != nil {
			return fmt.Errorf("add real server %s: %w", dest, err)
		}
		cur.dests[dest] = p.add[dest]
		delete(d.draining, drainKey{k, dest})
	}
	for _, dest := range sortedDests(p.set) {
		if err := d.ipvs.updateDest(svc, toDest(dest, p.set[dest])); err != nil {
			return fmt.Errorf("set weight of real server %s: %w", dest, err)
		}
		cur.dests[dest] = p.set[dest]
		delete(d.draining, drainKey{k, dest})
	}
	for _, dest := range p.drain {
		if cur.dests[dest] != 0 {
			if err := d.ipvs.updateDest(svc, toDest(dest, 0)); err != nil {
				return fmt.Errorf("drain real server %s: %w", dest, err)
			}
			cur.dests[dest] = 0
		}
		d.draining[drainKey{k, dest}] = drainState{since: d.now()}
		d.log.Debug("draining real server", "vs", k.String(), "dest", dest)
	}
	for _, dest := range p.remove {
		if err := d.ipvs.delDest(svc, toDest(dest, 0)); err != nil && !notFound(err) {
			return fmt.Errorf("remove real server %s: %w", dest, err)
		}
		delete(cur.dests, dest)
		delete(d.draining, drainKey{k, dest})
	}
	return nil
}

// clearStale deletes the conntrack entries lb.StaleUDP finds stale (the
// rule every datapath shares): flows of a changed UDP frontend not DNATed
// to one of its current real servers, such as those of a removed real
// server, so that their next datagrams are balanced afresh. Failures are
// logged: the entries time out eventually.
func (d *Datapath) clearStale(s *lb.StaleUDP) {
	n, fes, err := conntrack.ClearStaleUDP(d.o.Netns, s)
	if err != nil {
		d.log.Warn("clearing stale UDP conntrack entries failed", "frontends", fes, "error", err)
		return
	}
	if n > 0 {
		d.log.Debug("cleared stale UDP conntrack entries", "entries", n, "frontends", fes)
	}
}

// readKernel reads every virtual server we own (all but ExcludeCIDRs) with
// its real servers: one dump, plus one per virtual server.
func (d *Datapath) readKernel() (map[vsKey]*virtualServer, error) {
	svcs, err := d.ipvs.services()
	if err != nil {
		return nil, fmt.Errorf("ipvs: list virtual servers: %w", err)
	}
	out := make(map[vsKey]*virtualServer, len(svcs))
	for _, s := range svcs {
		v, ok := fromService(s)
		if !ok || d.o.excluded(v.key.Addr) {
			continue
		}
		if err := d.readDests(v, s); err != nil {
			if notFound(err) {
				continue // deleted meanwhile
			}
			return nil, err
		}
		out[v.key] = v
	}
	return out, nil
}

// readVS reads one virtual server back; nil when it does not exist.
func (d *Datapath) readVS(k vsKey) (*virtualServer, error) {
	s, err := d.ipvs.service(svcID(k))
	if err != nil {
		if notFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("read back: %w", err)
	}
	v, ok := fromService(s)
	if !ok {
		return nil, fmt.Errorf("read back: unexpected virtual server %+v", s)
	}
	if err := d.readDests(v, s); err != nil {
		if notFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("read back: %w", err)
	}
	return v, nil
}

// readDests fills v.dests from the kernel.
func (d *Datapath) readDests(v *virtualServer, s *ipvs.Service) error {
	ds, err := d.ipvs.dests(s)
	if err != nil {
		return fmt.Errorf("ipvs: list real servers of %s: %w", v.key, err)
	}
	for _, dst := range ds {
		a, err := destAddr(dst)
		if err != nil {
			return fmt.Errorf("ipvs: virtual server %s: %w", v.key, err)
		}
		v.dests[a] = dst.Weight
	}
	return nil
}

func sortedVSKeys(m map[vsKey]*virtualServer) []vsKey {
	if len(m) == 1 { // most services: no sort
		for k := range m {
			return []vsKey{k}
		}
	}
	return slices.SortedFunc(maps.Keys(m), compareKeys)
}

func sortedAddrSet(m map[netip.Addr]bool) []netip.Addr {
	return slices.SortedFunc(maps.Keys(m), netip.Addr.Compare)
}
