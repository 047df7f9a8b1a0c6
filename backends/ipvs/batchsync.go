package ipvs

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/lbkit/lbkit/lb"
)

// op is one queued IPVS write, remembered so that its acknowledgement can
// be applied to the kernel view (or its error to its virtual server).
type op struct {
	cmd    uint8
	vs     vsKey
	dest   netip.AddrPort
	weight int
}

// ipvsBatch collects the writes of many virtual servers for one send.
type ipvsBatch struct {
	g   *ipvsGenl
	b   batch
	ops []op
}

func (q *ipvsBatch) service(cmd uint8, s svcSpec) {
	q.g.service(&q.b, cmd, s)
	q.ops = append(q.ops, op{cmd: cmd, vs: s.key})
}

func (q *ipvsBatch) dest(cmd uint8, s svcSpec, d netip.AddrPort, weight int) {
	q.g.dest(&q.b, cmd, s, d, weight)
	q.ops = append(q.ops, op{cmd: cmd, vs: s.key, dest: d, weight: weight})
}

// send writes the queued requests (counting each one) and returns one error
// per request.
func (d *Datapath) sendBatch(q *ipvsBatch) []error {
	d.c.ipvsWrites.Add(uint64(q.b.len()))
	return q.g.sock.send(&q.b)
}

// deleteAll deletes the virtual servers keys in batches (a full sync's
// virtual servers that are no longer wanted). A missing one is fine.
func (d *Datapath) deleteAll(keys []vsKey) error {
	if len(keys) == 0 {
		return nil
	}
	q := &ipvsBatch{g: d.ipvs.g}
	for _, k := range keys {
		q.service(cmdDelService, svcSpec{key: k})
	}
	var fail []error
	for i, err := range d.sendBatch(q) {
		k := keys[i]
		if err != nil && !notFound(err) {
			d.dirty[k] = true
			fail = append(fail, fmt.Errorf("ipvs: delete virtual server %s: %w", k, err))
			continue
		}
		d.forget(k)
	}
	if len(fail) > 0 {
		return fail[0]
	}
	return nil
}

// forget drops a deleted virtual server from the kernel view.
func (d *Datapath) forget(k vsKey) {
	delete(d.kvs, k)
	delete(d.dirty, k)
	for dk := range d.draining {
		if dk.vs == k {
			delete(d.draining, dk)
		}
	}
}

// applyAll makes the kernel's virtual servers keys equal to want, writing
// the requests of all of them in batches (what applyVS does one request at
// a time). Every error maps back to its request and so to its virtual
// server: such a virtual server is marked dirty and applied once more on
// its own (applyVS reads it back first, which repairs drift such as a
// virtual server created meanwhile); what still fails is that service's
// error in errs. One bad virtual server never keeps the others from being
// programmed.
func (d *Datapath) applyAll(keys []vsKey, want map[vsKey]*virtualServer, errs lb.ServiceErrors) {
	q := &ipvsBatch{g: d.ipvs.g}
	var alone []vsKey // dirty: read back, then applied one by one
	for _, k := range keys {
		if d.dirty[k] {
			alone = append(alone, k)
			continue
		}
		d.queueVS(q, k, want[k])
	}
	failed := map[vsKey]bool{}
	if q.b.len() > 0 {
		for i, err := range d.sendBatch(q) {
			if !d.acked(q.ops[i], want[q.ops[i].vs], err) {
				failed[q.ops[i].vs] = true
			}
		}
	}
	for _, k := range keys {
		if failed[k] {
			d.dirty[k] = true
			delete(d.kvs, k)
			alone = append(alone, k)
		}
	}
	slices.SortFunc(alone, compareKeys)
	for _, k := range alone {
		if err := d.applyVS(k, want[k]); err != nil {
			errs[want[k].service] = err
		}
	}
}

// queueVS queues the requests that turn the kernel's virtual server k into
// want, in applyVSOnce's order.
func (d *Datapath) queueVS(q *ipvsBatch, k vsKey, want *virtualServer) {
	cur := d.kvs[k]
	p := planVS(cur, want, func(dest netip.AddrPort) bool {
		_, ok := d.draining[drainKey{k, dest}]
		return ok
	})
	if p.empty() {
		return
	}
	s := specOf(want)
	if p.create {
		q.service(cmdNewService, s)
	}
	if p.update {
		q.service(cmdSetService, s)
	}
	// Descending, so that rr's rotation is ascending (see applyVSOnce).
	added := sortedDests(p.add)
	slices.Reverse(added)
	for _, dest := range added {
		q.dest(cmdNewDest, s, dest, p.add[dest])
	}
	for _, dest := range sortedDests(p.set) {
		q.dest(cmdSetDest, s, dest, p.set[dest])
	}
	for _, dest := range p.drain {
		if cur.dests[dest] != 0 {
			q.dest(cmdSetDest, s, dest, 0)
		} else {
			d.draining[drainKey{k, dest}] = drainState{since: d.now()}
		}
	}
	for _, dest := range p.remove {
		q.dest(cmdDelDest, s, dest, 0)
	}
}

// acked applies the outcome of one request to the kernel view and reports
// whether it succeeded (a real server already deleted counts as deleted).
func (d *Datapath) acked(o op, want *virtualServer, err error) bool {
	if o.cmd == cmdDelDest && notFound(err) {
		err = nil
	}
	if err != nil {
		d.log.Debug("batched IPVS request failed", "vs", o.vs.String(), "cmd", o.cmd, "error", err)
		return false
	}
	cur := d.kvs[o.vs]
	if cur == nil && o.cmd != cmdNewService {
		return false // its creation failed: the whole virtual server is retried
	}
	switch o.cmd {
	case cmdNewService:
		d.kvs[o.vs] = &virtualServer{key: o.vs, sched: want.sched, flags: want.flags, timeout: want.timeout, dests: map[netip.AddrPort]int{}}
	case cmdSetService:
		cur.sched, cur.flags, cur.timeout = want.sched, want.flags, want.timeout
	case cmdNewDest, cmdSetDest:
		cur.dests[o.dest] = o.weight
		dk := drainKey{o.vs, o.dest}
		if o.weight == 0 {
			d.draining[dk] = drainState{since: d.now()}
			d.log.Debug("draining real server", "vs", o.vs.String(), "dest", o.dest)
		} else {
			delete(d.draining, dk)
		}
	case cmdDelDest:
		delete(cur.dests, o.dest)
		delete(d.draining, drainKey{o.vs, o.dest})
	}
	return true
}
