package iptables

import (
	"cmp"
	"maps"
	"slices"
	"strings"

	"github.com/lbkit/lbkit/lb"
)

// famState is what lbkit has programmed in one address family's tables, as
// of the last successful restore. Partial syncs rewrite chains from it
// without reading the kernel.
type famState struct {
	// ready: the fixed chains exist and a sync checked the jumps into them.
	ready    bool
	services map[lb.ServiceKey]*svcRecord
	// shards, nodePorts and filter index the services with rules in the
	// shared chains (dispatch and reject rules), so that a chain can be
	// rewritten from the services in it.
	shards    [shards]map[lb.ServiceKey]*svcRecord
	nodePorts map[lb.ServiceKey]*svcRecord
	filter    map[lb.ServiceKey]*svcRecord
	// found lists chains of ours per table seen in the kernel by Adopt; the
	// next full sync deletes those it does not rewrite.
	found map[string][]string
}

func newFamState() *famState {
	return &famState{
		services:  make(map[lb.ServiceKey]*svcRecord),
		nodePorts: make(map[lb.ServiceKey]*svcRecord),
		filter:    make(map[lb.ServiceKey]*svcRecord),
	}
}

// famPlan is one family's restore input and the state it leads to.
type famPlan struct {
	// in is the iptables-restore input; nil when the plan writes nothing.
	in []byte
	// static: the fixed chains are (re)written, so the jumps into them must
	// be checked after the restore.
	static bool
	// next is the state after a successful restore (full sync), prev the
	// state it replaces; for a partial sync apply updates the current state
	// instead.
	next, prev *famState
	// delta of a partial sync.
	records   map[lb.ServiceKey]*svcRecord // nil value: removed
	shardsNew map[int]map[lb.ServiceKey]*svcRecord
	nodePorts map[lb.ServiceKey]*svcRecord // nil: unchanged
	filterNew map[lb.ServiceKey]*svcRecord // nil: unchanged
	// changes are the services whose programmed state changed, for
	// conntrack cleanup.
	changes []change
}

// change is one service's record before and after a sync (either may be
// nil).
type change struct{ old, new *svcRecord }

// input returns the iptables-restore input of the plan; nil if it touches
// nothing.
func (p *famPlan) input() []byte {
	if p == nil {
		return nil
	}
	return p.in
}

// assemble appends to buf the restore input of a nat and a filter section
// (each without "*table" and COMMIT; nil for a table left alone), and
// returns nil when both are nil.
func assemble(buf, nat, filter []byte) []byte {
	if nat == nil && filter == nil {
		return nil
	}
	b := buf[:0]
	if nat != nil {
		b = append(b, "*nat\n"...)
		b = append(b, nat...)
		b = append(b, "COMMIT\n"...)
	}
	if filter != nil {
		b = append(b, "*filter\n"...)
		b = append(b, filter...)
		b = append(b, "COMMIT\n"...)
	}
	return b
}

// apply makes the plan's outcome the current state.
func (fs *famState) apply(p *famPlan) *famState {
	if p.next != nil {
		return p.next
	}
	for k, r := range p.records {
		if r == nil {
			delete(fs.services, k)
		} else {
			fs.services[k] = r
		}
	}
	for i, m := range p.shardsNew {
		fs.shards[i] = m
	}
	if p.nodePorts != nil {
		fs.nodePorts = p.nodePorts
	}
	if p.filterNew != nil {
		fs.filter = p.filterNew
	}
	if p.static {
		fs.ready = true
	}
	return fs
}

// planFull plans a rewrite of every chain of the family from the snapshot.
// Services in keep are not rewritten: their current record stays (they
// failed before the datapath could program them). The plan is nil when the
// family has nothing to program and nothing of ours exists in it. The
// restore input is written by render.
func (fs *famState) planFull(g *genConfig, s *lb.Snapshot, keep map[lb.ServiceKey]bool) *famPlan {
	next := newFamState()
	var changes []change
	s.Range(func(st *lb.ServiceState) bool {
		key := st.Key()
		old := fs.services[key]
		rec := old
		if !keep[key] && (old == nil || old.state != st) {
			rec = g.build(st)
			changes = append(changes, change{old, rec})
		}
		if rec != nil {
			next.add(key, rec)
		}
		return true
	})
	for key, old := range fs.services {
		if _, ok := s.Service(key); !ok && !keep[key] {
			changes = append(changes, change{old, nil})
		} else if !ok {
			next.add(key, old)
		}
	}
	if len(next.services) == 0 && !fs.ready && len(fs.found["nat"])+len(fs.found["filter"]) == 0 {
		return nil
	}
	next.ready = true
	return &famPlan{static: true, next: next, prev: fs, changes: changes}
}

// jumpTail is what a full plan's restore input says, at the end of each
// table's section, about the jumps from the built-in chains into ours:
// line(j) for each jump j in js (checks of every jump, or insertions of the
// missing ones; nothing when js is empty).
type jumpTail struct {
	js   []jump
	line func(jump) string
}

// checkAll is the tail of a family whose jumps were installed before.
func checkAll() jumpTail { return jumpTail{jumps(), jump.checkLine} }

// insert is the tail adding the missing jumps js.
func insert(js []jump) jumpTail { return jumpTail{js, jump.insertLine} }

// svcChain is a service chain of a full plan: to write, or (rec nil) to
// delete.
type svcChain struct {
	c   *chainText
	rec *svcRecord
}

// render writes the restore input of a full plan (p.in), into buf's storage
// when it is large enough: reusing one buffer spares the page faults of a
// fresh allocation of many megabytes at every full sync.
func (p *famPlan) render(g *genConfig, buf []byte, tail jumpTail) []byte {
	fs, next := p.prev, p.next
	// Chain references in an order that keeps iptables-nft-restore
	// linear (see the chain names' comment): the fixed and shard chains,
	// whose names sort first, are declared up front; then every service
	// chain in descending name order, each followed by the dispatch rules
	// that jump to it.
	var chains []svcChain
	for _, r := range next.services {
		for i := range r.chains {
			c := &r.chains[i]
			chains = append(chains, svcChain{c, r})
		}
	}
	// What the previous state or the kernel had and this one does not is
	// deleted: service chains in their place in the order (only shard
	// rules, flushed first, jump to them), anything else at the end. A
	// chain name belongs to one service, so a previous service chain stays
	// exactly when the service's new record has it.
	stale := map[string]bool{}
	for key, r := range fs.services {
		now := next.services[key]
		for _, c := range r.chains {
			if !now.hasChain(c.name) {
				stale[c.name] = true
			}
		}
	}
	for i := range shards {
		if len(fs.shards[i]) > 0 && len(next.shards[i]) == 0 {
			stale[shardChain(i)] = true
		}
	}
	if found := fs.found["nat"]; len(found) > 0 {
		want := next.natChains(g)
		for _, c := range found {
			if !want[c] {
				stale[c] = true
			}
		}
	}
	var staleOther []string
	for _, c := range slices.Sorted(maps.Keys(stale)) {
		if strings.HasPrefix(c, serviceChainPrefix) {
			chains = append(chains, svcChain{c: &chainText{name: c}})
		} else {
			staleOther = append(staleOther, c)
		}
	}
	slices.SortFunc(chains, func(a, b svcChain) int { return cmp.Compare(b.c.name, a.c.name) })

	if size := next.natSize(); cap(buf) < size {
		buf = make([]byte, 0, size+size/8)
	}
	b := append(buf[:0], "*nat\n"...)
	b = g.appendMarkChains(b)
	for i := shards - 1; i >= 0; i-- {
		if len(next.shards[i]) > 0 {
			b = append(b, ":"+shardChain(i)+" - [0:0]\n"...)
		}
	}
	b = append(b, ":"+chainNodePorts+" - [0:0]\n"...)
	for _, c := range staleOther {
		b = append(b, ":"+c+" - [0:0]\n"...)
	}
	for _, sc := range chains {
		b = append(b, ":"...)
		b = append(b, sc.c.name...)
		b = append(b, " - [0:0]\n"...)
		if sc.rec == nil {
			b = append(b, "-X "...)
			b = append(b, sc.c.name...)
			b = append(b, '\n')
			continue
		}
		b = g.appendRules(b, sc.c)
		for _, d := range sc.rec.dispatch {
			if d.target == sc.c.name {
				b = append(b, d.line...)
				b = append(b, '\n')
			}
		}
	}
	b = g.appendStaticNAT(b, func(i int) bool { return len(next.shards[i]) > 0 })
	for _, c := range staleOther {
		b = append(b, "-X "+c+"\n"...)
	}
	b = appendJumpLines(b, tail.js, "nat", tail.line)
	b = append(b, "COMMIT\n*filter\n"...)
	b = appendChain(b, chainNoEndpoints, sortedLines(next.filter, filterOf))
	fstale := map[string]bool{}
	for _, c := range fs.found["filter"] {
		fstale[c] = true
	}
	b = appendDeletes(b, without(fstale, map[string]bool{chainNoEndpoints: true}))
	b = appendJumpLines(b, tail.js, "filter", tail.line)
	p.in = append(b, "COMMIT\n"...)
	return p.in
}

// natChains returns the nat chains a full plan of the state writes.
func (fs *famState) natChains(g *genConfig) map[string]bool {
	want := map[string]bool{chainNodePorts: true, chainServices: true, chainPostrouting: true}
	if len(g.clusterCIDRs) > 0 {
		want[chainNonCluster] = true
	}
	for _, r := range fs.services {
		for _, c := range r.chains {
			want[c.name] = true
		}
	}
	for i := range shards {
		if len(fs.shards[i]) > 0 {
			want[shardChain(i)] = true
		}
	}
	return want
}

// natSize returns about how many bytes the nat section of a full plan of
// the state takes, so that it is allocated once.
func (fs *famState) natSize() int {
	n := 16 << 10 // fixed chains
	for _, r := range fs.services {
		for _, c := range r.chains {
			n += len(c.name) + 12 + ruleSize(&c.grp, r.state)
		}
		for _, d := range r.dispatch {
			n += len(d.line) + 1
		}
	}
	return n + shards*32
}

// add records rec as the state of key in a state being built.
func (fs *famState) add(key lb.ServiceKey, rec *svcRecord) {
	fs.services[key] = rec
	for _, d := range rec.dispatch {
		m := fs.nodePorts
		if d.shard != nodePortShard {
			if fs.shards[d.shard] == nil {
				fs.shards[d.shard] = make(map[lb.ServiceKey]*svcRecord)
			}
			m = fs.shards[d.shard]
		}
		m[key] = rec
	}
	if len(rec.filter) > 0 {
		fs.filter[key] = rec
	}
}

// planPartial plans the rewrite of the chains of the services in keys (a
// key the snapshot lacks was deleted) and of the shared chains whose rules
// they change. The plan is nil when nothing in this family changes. The
// restore input is written into buf's storage when it is large enough.
func (fs *famState) planPartial(g *genConfig, s *lb.Snapshot, keys []lb.ServiceKey, buf []byte) *famPlan {
	p := &famPlan{records: make(map[lb.ServiceKey]*svcRecord), shardsNew: make(map[int]map[lb.ServiceKey]*svcRecord)}
	var chains []*chainText
	var dead []string
	touched := map[int]bool{}
	nodePortsTouched, filterTouched := !fs.ready, !fs.ready
	for _, key := range keys {
		old := fs.services[key]
		var rec *svcRecord
		if st, ok := s.Service(key); ok {
			if old != nil && old.state == st {
				continue
			}
			rec = g.build(st)
		}
		if old == nil && rec == nil {
			continue
		}
		p.records[key] = rec
		p.changes = append(p.changes, change{old, rec})
		if rec != nil {
			for i := range rec.chains {
				chains = append(chains, &rec.chains[i])
			}
		}
		if old != nil {
			for _, c := range old.chains {
				if !rec.hasChain(c.name) {
					dead = append(dead, c.name)
				}
			}
		}
		if !slices.Equal(dispatchOf(old), dispatchOf(rec)) {
			for _, d := range slices.Concat(dispatchOf(old), dispatchOf(rec)) {
				if d.shard == nodePortShard {
					nodePortsTouched = true
				} else {
					touched[d.shard] = true
				}
			}
		}
		if !slices.Equal(filterOf(old), filterOf(rec)) {
			filterTouched = true
		}
	}
	if len(p.records) == 0 {
		return nil
	}

	slices.SortFunc(chains, func(a, b *chainText) int { return cmp.Compare(b.name, a.name) })
	var nat []byte
	if !fs.ready {
		nat = g.appendMarkChains(nat)
	}
	for _, c := range chains {
		nat = append(nat, ":"+c.name+" - [0:0]\n"...)
		nat = g.appendRules(nat, c)
	}
	emptinessChanged := !fs.ready
	for i := shards - 1; i >= 0; i-- {
		if !touched[i] {
			continue
		}
		lines := func(r *svcRecord) []string { return r.dispatchLines(i) }
		m := maps.Clone(fs.shards[i])
		if m == nil {
			m = make(map[lb.ServiceKey]*svcRecord)
		}
		p.patch(m, lines)
		p.shardsNew[i] = m
		if (len(m) > 0) != (len(fs.shards[i]) > 0) {
			emptinessChanged = true
		}
		if len(m) > 0 {
			nat = appendChain(nat, shardChain(i), sortedLines(m, lines))
		} else {
			dead = append(dead, shardChain(i))
		}
	}
	if nodePortsTouched {
		lines := func(r *svcRecord) []string { return r.dispatchLines(nodePortShard) }
		p.nodePorts = maps.Clone(fs.nodePorts)
		p.patch(p.nodePorts, lines)
		nat = appendChain(nat, chainNodePorts, sortedLines(p.nodePorts, lines))
	}
	nonEmpty := func(i int) bool {
		if m, ok := p.shardsNew[i]; ok {
			return len(m) > 0
		}
		return len(fs.shards[i]) > 0
	}
	switch {
	case !fs.ready:
		nat = g.appendStaticNAT(nat, nonEmpty)
		p.static = true
	case emptinessChanged:
		nat = g.appendServicesChain(nat, nonEmpty)
	}
	if nat != nil || len(dead) > 0 {
		nat = appendDeletes(nat, dead)
	}
	var filter []byte
	if filterTouched {
		p.filterNew = maps.Clone(fs.filter)
		p.patch(p.filterNew, filterOf)
		filter = appendChain(nil, chainNoEndpoints, sortedLines(p.filterNew, filterOf))
	}
	p.in = assemble(buf, nat, filter)
	return p
}

// patch sets, in the index of a shared chain's services, every service
// the plan changes: present when it has rules (lines) in the chain.
func (p *famPlan) patch(m map[lb.ServiceKey]*svcRecord, lines func(*svcRecord) []string) {
	for key, r := range p.records {
		if r == nil || len(lines(r)) == 0 {
			delete(m, key)
		} else {
			m[key] = r
		}
	}
}

// dispatchLines returns the record's dispatch rules in one shard.
func (r *svcRecord) dispatchLines(shard int) []string {
	var out []string
	for _, d := range r.dispatch {
		if d.shard == shard {
			out = append(out, d.line)
		}
	}
	return out
}

func dispatchOf(r *svcRecord) []dispatchRule {
	if r == nil {
		return nil
	}
	return r.dispatch
}

func filterOf(r *svcRecord) []string {
	if r == nil {
		return nil
	}
	return r.filter
}

// sortedLines returns the rules (lines) of the services of a shared chain
// in a stable order.
func sortedLines(m map[lb.ServiceKey]*svcRecord, lines func(*svcRecord) []string) []string {
	keys := slices.Sorted(maps.Keys(m))
	var out []string
	for _, k := range keys {
		out = append(out, lines(m[k])...)
	}
	return out
}

// without returns the keys of a that b lacks, sorted.
func without(a, b map[string]bool) []string {
	var out []string
	for k := range a {
		if !b[k] {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
