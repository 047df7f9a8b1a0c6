package iptables

// jump is a rule in a built-in chain that leads to one of our chains. They
// are the only rules lbkit writes outside its own chains; every full sync
// checks them (see bootstrapper).
type jump struct {
	table, chain string
	spec         []string
}

// jumps returns the rules from the built-in chains into ours.
func jumps() []jump {
	svc := []string{"-m", "comment", "--comment", "lbkit service frontends", "-j", chainServices}
	post := []string{"-m", "comment", "--comment", "lbkit masquerade", "-j", chainPostrouting}
	noEP := []string{"-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "lbkit frontends without endpoints", "-j", chainNoEndpoints}
	return []jump{
		{"nat", "PREROUTING", svc},
		{"nat", "OUTPUT", svc},
		{"nat", "POSTROUTING", post},
		{"filter", "INPUT", noEP},
		{"filter", "FORWARD", noEP},
		{"filter", "OUTPUT", noEP},
	}
}

// appendStaticNAT appends the declarations and rules of the fixed nat
// chains that lead to service chains or follow them: chainServices, with a
// jump to every non-empty shard and, last, to chainNodePorts, and the
// masquerading chainPostrouting. chainNodePorts itself is written by the
// caller, the chains service chains jump to by appendMarkChains.
func (g *genConfig) appendStaticNAT(b []byte, nonEmpty func(int) bool) []byte {
	mark := g.markHex()
	b = g.appendServicesChain(b, nonEmpty)
	b = append(b, ":"+chainPostrouting+" - [0:0]\n"...)
	b = append(b, "-A "+chainPostrouting+" -m mark ! --mark "+mark+"/"+mark+" -j RETURN\n"...)
	// Clear the mark so that a packet traversing the stack again (e.g. a
	// bridge with br_netfilter) is not masqueraded twice.
	b = append(b, "-A "+chainPostrouting+" -j MARK --xor-mark "+mark+"\n"...)
	b = append(b, "-A "+chainPostrouting+" -j MASQUERADE --random-fully\n"...)
	return b
}

// appendMarkChains appends the fixed chains service chains jump to; they
// must come before the service chains in a restore input.
func (g *genConfig) appendMarkChains(b []byte) []byte {
	if len(g.clusterCIDRs) > 0 {
		b = append(b, ":"+chainNonCluster+" - [0:0]\n"...)
		for _, p := range g.clusterCIDRs {
			b = append(b, "-A "+chainNonCluster+" -s "+p.String()+" -j RETURN\n"...)
		}
		b = append(b, "-A "+chainNonCluster+" -j MARK --or-mark "+g.markHex()+"\n"...)
	}
	return b
}

// appendServicesChain appends chainServices alone, for a partial sync that
// changes which shards are empty.
func (g *genConfig) appendServicesChain(b []byte, nonEmpty func(int) bool) []byte {
	b = append(b, ":"+chainServices+" - [0:0]\n"...)
	for i := range shards {
		if nonEmpty(i) {
			b = append(b, "-A "+chainServices+" -d "+shardMatch(i, g.v6)+" -j "+shardChain(i)+"\n"...)
		}
	}
	for _, m := range g.nodePortAddrMatches() {
		b = append(b, "-A "+chainServices+m+" -j "+chainNodePorts+"\n"...)
	}
	return b
}

// appendChain appends the declaration of chain and the given full rule
// lines.
func appendChain(b []byte, chain string, lines []string) []byte {
	b = append(b, ":"+chain+" - [0:0]\n"...)
	for _, l := range lines {
		b = append(b, l...)
		b = append(b, '\n')
	}
	return b
}

// appendDeletes appends the removal of chains: each is declared (which
// creates it if an outsider removed it, and flushes it) before any is
// deleted, so that references between them do not matter.
func appendDeletes(b []byte, chains []string) []byte {
	for _, c := range chains {
		b = append(b, ":"+c+" - [0:0]\n"...)
	}
	for _, c := range chains {
		b = append(b, "-X "+c+"\n"...)
	}
	return b
}

// markOf returns the masquerade mark of a bit.
func markOf(bit int) uint32 { return 1 << uint(bit) }
