package iptables

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/lbkit/lbkit/lb"
)

// genConfig is what rule generation for one address family depends on,
// besides the services themselves.
type genConfig struct {
	v6   bool
	mark uint32 // the masquerade mark: 1 << MasqueradeBit
	// masqAll masquerades all traffic to ClusterIP frontends.
	masqAll bool
	// clusterCIDRs of this family: traffic from outside them to a ClusterIP
	// frontend is masqueraded.
	clusterCIDRs []netip.Prefix
	// nodePortAddrs of this family: NodePorts answer on the node addresses
	// inside them; empty means every local address but loopback.
	nodePortAddrs []netip.Prefix
	// nodeName, when set, limits hairpin rules to backends on this node.
	nodeName string
	// scratch is build's reusable text buffer (a genConfig serves one
	// sync at a time).
	scratch []byte
}

// masqClass says which traffic a service chain masquerades.
type masqClass uint8

const (
	// masqNever: only hairpin traffic (an endpoint reaching itself).
	masqNever masqClass = iota
	// masqNonCluster: traffic from outside the cluster CIDRs, and hairpin
	// traffic from endpoints inside them.
	masqNonCluster
	// masqAlways: all traffic.
	masqAlways
)

// svcRecord is what one service contributes to one family's tables: its
// chains and the text of its rules in shared chains.
type svcRecord struct {
	state  *lb.ServiceState
	v6     bool
	chains []chainText // sorted by name
	// dispatch holds one rule per frontend with backends, in the frontend's
	// shard or in chainNodePorts (shard -1).
	dispatch []dispatchRule
	// filter holds rules of chainNoEndpoints, one per frontend without
	// backends (several for a NodePort with several NodePortAddresses).
	filter []string
	// inline holds the chains and dispatch rules of a record with one
	// frontend group and one frontend, so that they need no allocation of
	// their own.
	inline struct {
		chains   [1]chainText
		dispatch [1]dispatchRule
	}
}

// chainText is one service chain: its name, and the service and frontend
// group it serves. Its rules ("-A name ...\n") are not kept: they are
// generated straight into each restore input that writes the chain, which
// costs less than keeping 10,000 services' rules and copying them.
type chainText struct {
	name string
	st   *lb.ServiceState
	grp  group
}

// appendRules appends the chain's rules to b.
func (g *genConfig) appendRules(b []byte, c *chainText) []byte {
	return g.serviceChain(b, c.st, &c.grp)
}

// dispatchRule is a complete "-A chain ..." line in a frontend shard
// (shard >= 0) or in chainNodePorts (shard == nodePortShard).
type dispatchRule struct {
	shard  int
	line   string
	target string // the service chain it jumps to
}

// nodePortShard marks a dispatch rule of chainNodePorts.
const nodePortShard = -1

// hasChain reports whether the record owns chain name.
func (r *svcRecord) hasChain(name string) bool {
	if r == nil {
		return false
	}
	for _, c := range r.chains {
		if c.name == name {
			return true
		}
	}
	return false
}

// group is frontends of one service that share a service chain: same
// protocol, same kind (internal or external) and the same backends.
type group struct {
	chain    string
	proto    lb.Protocol
	external bool
	policy   lb.TrafficPolicy
	backends []lb.Backend
}

// build returns the record of st for the family of g; nil when st has no
// frontend of that family. The text of its dispatch and filter lines is
// one string whose substrings the record holds (a few allocations per
// service, not one per line, which matters at 10,000 services); its chains'
// rules are generated later (see chainText).
func (g *genConfig) build(st *lb.ServiceState) *svcRecord {
	svc := st.Service
	key := svc.Key
	escaped := escapeKey(key)
	b := g.scratch[:0]
	var grpBuf [2]group
	groups := grpBuf[:0]
	// Lines are recorded as spans of b until b is final.
	type line struct{ shard, group, from, to int }
	var dispBuf, filtBuf [2]line
	disp, filt := dispBuf[:0], filtBuf[:0]
	for _, fs := range st.Frontends {
		if fs.Addr.Is6() != g.v6 {
			continue
		}
		external := fs.Kind.External()
		policy := svc.InternalPolicy
		if external {
			policy = svc.ExternalPolicy
		}
		if len(fs.Backends) == 0 {
			verdict := "REJECT"
			if policy == lb.PolicyLocal && hasUsableEndpoint(st.Endpoints, g.v6) {
				// kube-proxy drops traffic to a Local frontend whose
				// endpoints are all on other nodes.
				verdict = "DROP"
			}
			for _, m := range g.frontendMatches(fs.Frontend) {
				from := len(b)
				b = append(b, "-A "+chainNoEndpoints...)
				b = append(b, m...)
				b = appendComment(b, escaped, fs.Kind)
				b = append(b, " -j "...)
				b = append(b, verdict...)
				filt = append(filt, line{from: from, to: len(b)})
			}
			continue
		}
		gi := findGroup(groups, fs, external)
		if gi < 0 {
			ordinal := 0
			for _, o := range groups {
				if o.proto == fs.Protocol && o.external == external {
					ordinal++
				}
			}
			groups = append(groups, group{
				chain: serviceChain(key, fs.Protocol, external, ordinal), proto: fs.Protocol,
				external: external, policy: policy, backends: fs.Backends,
			})
			gi = len(groups) - 1
		}
		from := len(b)
		var shard int
		b, shard = appendDispatch(b, fs.Frontend, escaped, groups[gi].chain)
		disp = append(disp, line{shard: shard, group: gi, from: from, to: len(b)})
	}
	if len(groups) == 0 && len(filt) == 0 {
		g.scratch = b
		return nil
	}
	g.scratch = b
	text := string(b)

	rec := &svcRecord{state: st, v6: g.v6}
	rec.chains = rec.inline.chains[:0]
	for _, grp := range groups {
		rec.chains = append(rec.chains, chainText{name: grp.chain, st: st, grp: grp})
	}
	slices.SortFunc(rec.chains, func(a, b chainText) int { return cmp.Compare(a.name, b.name) })
	if len(disp) > 0 {
		rec.dispatch = rec.inline.dispatch[:0]
	}
	for _, d := range disp {
		rec.dispatch = append(rec.dispatch, dispatchRule{shard: d.shard, line: text[d.from:d.to], target: groups[d.group].chain})
	}
	for _, f := range filt {
		rec.filter = append(rec.filter, text[f.from:f.to])
	}
	return rec
}

// findGroup returns the index of the group fs belongs to; -1 if it does not
// exist yet.
func findGroup(groups []group, fs lb.FrontendState, external bool) int {
	for i, grp := range groups {
		if grp.proto == fs.Protocol && grp.external == external && slices.Equal(grp.backends, fs.Backends) {
			return i
		}
	}
	return -1
}

// appendComment appends the comment naming the service and the frontend's
// kind, for Inspect and for humans reading iptables-save.
func appendComment(b []byte, escapedKey string, kind lb.FrontendKind) []byte {
	b = append(b, " -m comment --comment \""...)
	b = append(b, escapedKey...)
	b = append(b, ' ')
	b = append(b, kind.String()...)
	return append(b, '"')
}

// hasUsableEndpoint reports whether any endpoint of the family could take
// traffic (ready, or serving while terminating).
func hasUsableEndpoint(eps []lb.Endpoint, v6 bool) bool {
	for _, ep := range eps {
		if ep.Addr.Addr().Is6() == v6 && (ep.Ready || (ep.Serving && ep.Terminating)) {
			return true
		}
	}
	return false
}

// isAnyNodePort reports a NodePort frontend on every node address.
func isAnyNodePort(fe lb.Frontend) bool {
	return fe.Kind == lb.NodePort && fe.Addr.IsUnspecified()
}

// protoMatch returns " -p tcp -m tcp --dport 80".
func protoMatch(fe lb.Frontend) string { return string(appendProtoMatch(nil, fe)) }

// appendProtoMatch appends " -p tcp -m tcp --dport 80".
func appendProtoMatch(b []byte, fe lb.Frontend) []byte {
	p := fe.Protocol.String()
	b = append(b, " -p "...)
	b = append(b, p...)
	b = append(b, " -m "...)
	b = append(b, p...)
	b = append(b, " --dport "...)
	return strconv.AppendInt(b, int64(fe.Port), 10)
}

// hostPrefix returns "a/32" or "a/128".
func hostPrefix(a netip.Addr) string {
	return netip.PrefixFrom(a, a.BitLen()).String()
}

// appendDispatch appends the rule that sends traffic to fe to the service
// chain target: in fe's shard, or in chainNodePorts for a NodePort on every
// node address (which the jump to that chain selects). It returns the
// shard (nodePortShard for chainNodePorts).
func appendDispatch(b []byte, fe lb.Frontend, escapedKey, target string) ([]byte, int) {
	shard := nodePortShard
	b = append(b, "-A "...)
	if isAnyNodePort(fe) {
		b = append(b, chainNodePorts...)
	} else {
		shard = shardOf(fe.Addr)
		b = appendShardChain(b, shard)
		b = append(b, " -d "...)
		b = appendHostPrefix(b, fe.Addr)
	}
	b = appendProtoMatch(b, fe)
	b = appendComment(b, escapedKey, fe.Kind)
	b = append(b, " -j "...)
	return append(b, target...), shard
}

// appendHostPrefix appends "a/32" or "a/128".
func appendHostPrefix(b []byte, a netip.Addr) []byte {
	b = a.AppendTo(b)
	b = append(b, '/')
	return strconv.AppendInt(b, int64(a.BitLen()), 10)
}

// frontendMatches returns the match parts that select traffic to fe in the
// filter table, where no dispatch chain has selected NodePort addresses yet.
func (g *genConfig) frontendMatches(fe lb.Frontend) []string {
	if !isAnyNodePort(fe) {
		return []string{" -d " + hostPrefix(fe.Addr) + protoMatch(fe)}
	}
	var out []string
	for _, m := range g.nodePortAddrMatches() {
		out = append(out, m+protoMatch(fe))
	}
	return out
}

// nodePortAddrMatches returns the matches of the node addresses NodePorts
// answer on: local addresses inside NodePortAddresses, or every local
// address except loopback ones (a NodePort on localhost would need
// route_localnet and masquerading of loopback sources).
func (g *genConfig) nodePortAddrMatches() []string {
	const local = " -m addrtype --dst-type LOCAL"
	if len(g.nodePortAddrs) == 0 {
		loop := "127.0.0.0/8"
		if g.v6 {
			loop = "::1/128"
		}
		return []string{" ! -d " + loop + local}
	}
	out := make([]string, len(g.nodePortAddrs))
	for i, p := range g.nodePortAddrs {
		out[i] = " -d " + p.String() + local
	}
	return out
}

// classOf returns which traffic the chain of grp masquerades.
func (g *genConfig) classOf(grp *group) masqClass {
	switch {
	case grp.external && grp.policy == lb.PolicyLocal:
		// Local external traffic keeps the client's address.
		return masqNever
	case grp.external:
		// Cluster external traffic may go to another node, whose
		// replies must come back through this one.
		return masqAlways
	case g.masqAll:
		return masqAlways
	case len(g.clusterCIDRs) > 0:
		return masqNonCluster
	}
	return masqNever
}

// needsHairpin reports whether traffic from a backend must be marked when
// it is balanced to the backend itself (hairpin): not when the class marks
// traffic from it anyway, nor, when the node's name is known, for a backend
// on another node, whose traffic to the service never passes this node's
// rules.
func (g *genConfig) needsHairpin(class masqClass, be lb.Backend) bool {
	if g.nodeName != "" && be.NodeName != g.nodeName {
		return false
	}
	a := be.Addr.Addr()
	switch class {
	case masqAlways:
		return false
	case masqNonCluster:
		for _, p := range g.clusterCIDRs {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return true
}

// markHex returns the mark as "0x4000".
func (g *genConfig) markHex() string { return "0x" + strconv.FormatUint(uint64(g.mark), 16) }

// serviceChain generates the rules of a service chain: masquerade marks,
// ClientIP affinity, then a weighted random choice of the backend, each
// backend a DNAT rule taken with probability w_i / (w_i + ... + w_n).
//
// Hairpin traffic (a backend reaching its own service and being balanced to
// itself) must be masqueraded, or the backend would answer itself directly.
// Without a chain per backend, the rules mark traffic from backend i before
// its DNAT rule and unmark it after: the DNAT ends the chain when taken, so
// the mark stays exactly when backend i was chosen. The unmark cannot undo a
// mark the class set, since needsHairpin is false for sources the class
// marks.
func (g *genConfig) serviceChain(b []byte, st *lb.ServiceState, grp *group) []byte {
	n := len(grp.backends)
	affinity := st.AffinityTimeout()
	class := g.classOf(grp)
	var hpBuf [8]bool
	hairpin := append(hpBuf[:0], make([]bool, n)...)
	lines := 1 + n
	for i, be := range grp.backends {
		hairpin[i] = g.needsHairpin(class, be)
		if hairpin[i] {
			lines += 2
		}
	}
	var recent []string
	if affinity > 0 {
		lines += 2 * n
		recent = make([]string, n)
		for i, be := range grp.backends {
			recent[i] = recentName(st.Key(), grp.proto, be.Addr)
		}
	}
	w := ruleWriter{chain: grp.chain, b: slices.Grow(b, lines*(len(grp.chain)+120))}
	switch class {
	case masqAlways:
		w.rule()
		w.mark("or", g.mark)
	case masqNonCluster:
		w.rule()
		w.b = append(w.b, "-j "+chainNonCluster+"\n"...)
	}
	proto := grp.proto.String()
	if affinity > 0 {
		secs := strconv.FormatInt(int64((affinity+time.Second-1)/time.Second), 10)
		for i, be := range grp.backends {
			if hairpin[i] {
				w.rule()
				w.source(be.Addr.Addr())
				w.recentCheck(recent[i], secs)
				w.b = append(w.b, ' ')
				w.mark("or", g.mark)
			}
			w.rule()
			w.b = append(w.b, "-p "...)
			w.b = append(w.b, proto...)
			w.b = append(w.b, ' ')
			w.recentCheck(recent[i], secs)
			w.dnat(be.Addr)
		}
	}
	var wBuf [8]uint32
	weights := reducedWeights(wBuf[:0], grp.backends)
	weighted := !allOne(weights)
	var rest uint64
	for _, wt := range weights {
		rest += uint64(wt)
	}
	for i, be := range grp.backends {
		if hairpin[i] {
			w.rule()
			w.source(be.Addr.Addr())
			w.mark("or", g.mark)
		}
		w.rule()
		w.b = append(w.b, "-p "...)
		w.b = append(w.b, proto...)
		if i < n-1 {
			w.b = append(w.b, " -m statistic --mode random --probability "...)
			w.b = strconv.AppendFloat(w.b, float64(weights[i])/float64(rest), 'f', 10, 64)
		}
		rest -= uint64(weights[i])
		if affinity > 0 {
			w.b = append(w.b, " -m recent --name "...)
			w.b = append(w.b, recent[i]...)
			w.b = append(w.b, " --set"...)
		}
		if weighted {
			w.b = append(w.b, " -m comment --comment weight="...)
			w.b = strconv.AppendUint(w.b, uint64(weights[i]), 10)
		}
		w.dnat(be.Addr)
		if hairpin[i] && i < n-1 {
			w.rule()
			w.source(be.Addr.Addr())
			w.mark("and", ^g.mark)
		}
	}
	return w.b
}

// ruleWriter appends the rules of one chain to b.
type ruleWriter struct {
	chain string
	b     []byte
}

// rule starts a rule: "-A CHAIN ".
func (w *ruleWriter) rule() {
	w.b = append(w.b, "-A "...)
	w.b = append(w.b, w.chain...)
	w.b = append(w.b, ' ')
}

// source appends "-s ADDR/LEN ".
func (w *ruleWriter) source(a netip.Addr) {
	w.b = append(w.b, "-s "...)
	w.b = appendHostPrefix(w.b, a)
	w.b = append(w.b, ' ')
}

// mark ends a rule with "-j MARK --op-mark 0xV".
func (w *ruleWriter) mark(op string, v uint32) {
	w.b = append(w.b, "-j MARK --"...)
	w.b = append(w.b, op...)
	w.b = append(w.b, "-mark 0x"...)
	w.b = strconv.AppendUint(w.b, uint64(v), 16)
	w.b = append(w.b, '\n')
}

// recentCheck appends the affinity check of one backend's recent list.
func (w *ruleWriter) recentCheck(name, secs string) {
	w.b = append(w.b, "-m recent --name "...)
	w.b = append(w.b, name...)
	w.b = append(w.b, " --update --seconds "...)
	w.b = append(w.b, secs...)
	w.b = append(w.b, " --reap"...)
}

// dnat ends a rule with a DNAT to the backend.
func (w *ruleWriter) dnat(to netip.AddrPort) {
	w.b = append(w.b, " -j DNAT --to-destination "...)
	w.b = to.AppendTo(w.b)
	w.b = append(w.b, '\n')
}

// reducedWeights returns the backends' weights divided by their greatest
// common divisor, so that equal weights become 1 and need no comment.
// They are appended to dst.
func reducedWeights(dst []uint32, bs []lb.Backend) []uint32 {
	var d uint32
	for _, be := range bs {
		d = gcd(d, max(be.Weight, 1))
	}
	for _, be := range bs {
		dst = append(dst, max(be.Weight, 1)/d)
	}
	return dst
}

func gcd(a, b uint32) uint32 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func allOne(ws []uint32) bool {
	for _, w := range ws {
		if w != 1 {
			return false
		}
	}
	return true
}

// ruleSize returns about how many bytes, at most, the rules of the chain of
// grp take, for sizing a restore input before they are generated.
func ruleSize(grp *group, st *lb.ServiceState) int {
	n := len(grp.backends)
	lines := 1 + 3*n // marks, hairpin marks and unmarks, DNATs
	if st.AffinityTimeout() > 0 {
		lines += 2 * n
	}
	return lines * (len(grp.chain) + 80)
}
