package nftables

import (
	"github.com/google/nftables"
	"github.com/google/nftables/expr"

	"github.com/lbkit/lbkit/internal/nftutil"
)

// Names of the base and helper chains (the same in both tables).
const (
	chainFilterPrerouting = "filter-prerouting"
	chainFilterOutput     = "filter-output"
	chainNATPrerouting    = "nat-prerouting"
	chainNATOutput        = "nat-output"
	chainNATPostrouting   = "nat-postrouting"
	chainNoEndpoints      = "no-endpoints"
	chainServices         = "services"
	chainMasquerading     = "masquerading"
	chainMarkMasq         = "mark-for-masquerade"
	chainMarkLocalSource  = "mark-local-source"
	chainMarkOutside      = "mark-outside-cluster"
)

// Hook priorities, numeric (nft 1.0.6 rejects `dstnat` on the output
// hook): the reject check runs before DNAT, as kube-proxy's.
const (
	prioFilter  = -110
	prioDstNAT  = -100
	prioSrcNAT  = 100
	chainFilter = nftables.ChainTypeFilter
	chainNAT    = nftables.ChainTypeNAT
)

// chainDef is a chain with its rules; base chains have a hook.
type chainDef struct {
	name  string
	hook  *nftables.ChainHook
	prio  int32
	ctype nftables.ChainType
	rules [][]expr.Any
}

// base reports whether the chain hooks into the stack.
func (c chainDef) base() bool { return c.hook != nil }

// nft returns the google/nftables chain in table t.
func (c chainDef) nft(t *nftables.Table) *nftables.Chain {
	ch := &nftables.Chain{Name: c.name, Table: t}
	if c.base() {
		accept := nftables.ChainPolicyAccept
		ch.Hooknum, ch.Priority, ch.Type, ch.Policy = c.hook, nftables.ChainPriorityRef(nftables.ChainPriority(c.prio)), c.ctype, &accept
	}
	return ch
}

// matches reports whether a chain read from the kernel hooks as c does.
func (c chainDef) matches(ch *nftables.Chain) bool {
	if !c.base() {
		return ch.Hooknum == nil
	}
	return ch.Hooknum != nil && *ch.Hooknum == *c.hook && ch.Priority != nil &&
		int32(*ch.Priority) == c.prio && ch.Type == c.ctype
}

// fixedChains returns the base and helper chains of a family's table,
// referenced chains before the chains that reference them.
func (c *config) fixedChains(v6 bool) []chainDef {
	newOnly := cat(ctStateNew(), []expr.Any{jump(chainNoEndpoints)})
	return []chainDef{
		{name: chainMarkMasq, rules: [][]expr.Any{markSet(c.markBit)}},
		{name: chainMarkLocalSource, rules: [][]expr.Any{cat(fibLocal(true), markSet(c.markBit))}},
		{name: chainMarkOutside, rules: c.markOutsideRules(v6)},
		{name: chainNoEndpoints, rules: c.noEndpointRules(v6)},
		{name: chainServices, rules: c.serviceRules(v6)},
		{name: chainMasquerading, rules: c.masqueradingRules(v6)},
		{name: chainFilterPrerouting, hook: nftables.ChainHookPrerouting, prio: prioFilter, ctype: chainFilter,
			rules: [][]expr.Any{newOnly}},
		{name: chainFilterOutput, hook: nftables.ChainHookOutput, prio: prioFilter, ctype: chainFilter,
			rules: [][]expr.Any{newOnly}},
		{name: chainNATPrerouting, hook: nftables.ChainHookPrerouting, prio: prioDstNAT, ctype: chainNAT,
			rules: [][]expr.Any{{jump(chainServices)}}},
		{name: chainNATOutput, hook: nftables.ChainHookOutput, prio: prioDstNAT, ctype: chainNAT,
			rules: [][]expr.Any{{jump(chainServices)}}},
		{name: chainNATPostrouting, hook: nftables.ChainHookPostrouting, prio: prioSrcNAT, ctype: chainNAT,
			rules: [][]expr.Any{{jump(chainMasquerading)}}},
	}
}

// cat concatenates expression lists into a new one.
func cat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// frontendKeyExprs loads addr . proto . port of the packet's destination
// into the registers from r.
func frontendKeyExprs(v6 bool, r int) []expr.Any {
	return []expr.Any{nftutil.LoadAddr(v6, false, nftutil.Reg(r)), nftutil.LoadProto(nftutil.Reg(r + nftutil.Words(v6))), loadDport(nftutil.Reg(r + nftutil.Words(v6) + 1))}
}

// protoPortExprs loads proto . port into the registers from r.
func protoPortExprs(r int) []expr.Any {
	return []expr.Any{nftutil.LoadProto(nftutil.Reg(r)), loadDport(nftutil.Reg(r + 1))}
}

// nodePortConds returns the conditions under which a packet's destination
// is a NodePort address of the family: local, and in NodePortAddresses (or
// not loopback when every address serves). Each is one rule's prefix.
func (c *config) nodePortConds(v6 bool) [][]expr.Any {
	f := fam(v6)
	if c.allNP[f] {
		return [][]expr.Any{cat(fibLocal(false), notLoopback(v6))}
	}
	var out [][]expr.Any
	for _, p := range c.nodePort[f] {
		out = append(out, cat(fibLocal(false), inPrefix(p, false, expr.CmpOpEq)))
	}
	return out
}

// serviceRules dispatch a new connection to its frontend's chain.
func (c *config) serviceRules(v6 bool) [][]expr.Any {
	rules := [][]expr.Any{cat(frontendKeyExprs(v6, 0),
		[]expr.Any{lookupData(setFor(setServices, v6), nftutil.Reg(0), regVerdict)})}
	for _, cond := range c.nodePortConds(v6) {
		rules = append(rules, cat(cond, protoPortExprs(0),
			[]expr.Any{lookupData(setFor(setNodePorts, v6), nftutil.Reg(0), regVerdict)}))
	}
	return rules
}

// noEndpointRules reject new connections to frontends without backends.
func (c *config) noEndpointRules(v6 bool) [][]expr.Any {
	rules := [][]expr.Any{cat(frontendKeyExprs(v6, 0),
		[]expr.Any{lookup(setFor(setNoEndpoints, v6), nftutil.Reg(0)), reject(v6)})}
	for _, cond := range c.nodePortConds(v6) {
		rules = append(rules, cat(cond, protoPortExprs(0),
			[]expr.Any{lookup(setFor(setNoEndpointNodePorts, v6), nftutil.Reg(0)), reject(v6)}))
	}
	return rules
}

// masqueradingRules masquerade marked packets (clearing the mark, as
// kube-proxy does) and hairpin connections: a backend that reached itself
// through a frontend must see the node as the source, or it would drop
// packets from its own address.
func (c *config) masqueradingRules(v6 bool) [][]expr.Any {
	w := nftutil.Words(v6)
	return [][]expr.Any{
		cat(markHas(c.markBit), markClear(c.markBit), []expr.Any{nftutil.Masquerade()}),
		cat(ctStatusDNAT(), []expr.Any{
			nftutil.LoadAddr(v6, true, nftutil.Reg(0)), nftutil.LoadAddr(v6, false, nftutil.Reg(w)),
			lookup(setFor(setHairpin, v6), nftutil.Reg(0)), nftutil.Masquerade(),
		}),
	}
}

// markOutsideRules mark packets whose source is outside every cluster CIDR
// of the family.
func (c *config) markOutsideRules(v6 bool) [][]expr.Any {
	var rules [][]expr.Any
	for _, p := range c.cluster[fam(v6)] {
		rules = append(rules, cat(inPrefix(p, true, expr.CmpOpEq), []expr.Any{ret()}))
	}
	return append(rules, markSet(c.markBit))
}
