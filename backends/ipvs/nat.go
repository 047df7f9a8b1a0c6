package ipvs

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"

	"github.com/lbkit/lbkit/internal/nftutil"
)

// The masquerade rules live in two nftables tables named natTable, one per
// family, each with one chain and three rules (see README.md):
//
//	chain postrouting { type nat hook postrouting priority srcnat;
//	  ct original daddr . meta l4proto . ct original proto-dst @masq masquerade fully-random
//	  ct original daddr . meta l4proto . ct original proto-dst @outside saddr != @cidrs masquerade fully-random
//	  saddr . daddr @hairpin masquerade fully-random
//	}
//
// IPVS rewrites the destination after conntrack saw the packet, so the
// original direction of the conntrack entry still names the frontend.
// Changes edit set elements only. The expressions, keys, connection and
// element writes are internal/nftutil's, shared with backends/nftables.
const (
	setMasq    = "masq"
	setOutside = "outside"
	setCIDRs   = "cidrs"
	setHairpin = "hairpin"
	chainPost  = "postrouting"
	// sockBuf is the netlink buffer size asked for, so that a full sync
	// of many thousand elements fits one transaction.
	sockBuf = 16 << 20
)

// natFamily is one family's table.
type natFamily struct {
	fam      nftables.TableFamily
	v6       bool
	addrType nftables.SetDatatype
}

var natFamilies = [2]natFamily{
	{fam: nftables.TableFamilyIPv4, addrType: nftables.TypeIPAddr},
	{fam: nftables.TableFamilyIPv6, v6: true, addrType: nftables.TypeIP6Addr},
}

// famIndex returns 0 for IPv4 and 1 for IPv6.
func famIndex(a netip.Addr) int {
	if a.Is4() {
		return 0
	}
	return 1
}

// natElems is the content of the sets of both families.
type natElems struct {
	masq, outside [2]map[vsKey]bool
	hairpin       [2]map[netip.Addr]int // reference counts
}

func newNatElems() *natElems {
	e := &natElems{}
	for i := range 2 {
		e.masq[i], e.outside[i], e.hairpin[i] = map[vsKey]bool{}, map[vsKey]bool{}, map[netip.Addr]int{}
	}
	return e
}

// empty reports whether no set has an element.
func (e *natElems) empty() bool {
	for i := range 2 {
		if len(e.masq[i])+len(e.outside[i])+len(e.hairpin[i]) > 0 {
			return false
		}
	}
	return true
}

// natDelta is what one partial sync adds to and removes from the sets.
type natDelta struct {
	addMasq, delMasq, addOutside, delOutside [2][]vsKey
	addHairpin, delHairpin                   [2][]netip.Addr
}

func (d *natDelta) empty() bool {
	for i := range 2 {
		if len(d.addMasq[i])+len(d.delMasq[i])+len(d.addOutside[i])+len(d.delOutside[i])+len(d.addHairpin[i])+len(d.delHairpin[i]) > 0 {
			return false
		}
	}
	return true
}

// remove takes v's contribution out of e, recording the element changes.
func (e *natElems) remove(v *virtualServer, d *natDelta) {
	f := famIndex(v.key.Addr)
	if e.masq[f][v.key] {
		delete(e.masq[f], v.key)
		d.delMasq[f] = append(d.delMasq[f], v.key)
	}
	if e.outside[f][v.key] {
		delete(e.outside[f], v.key)
		d.delOutside[f] = append(d.delOutside[f], v.key)
	}
	for _, a := range destAddrs(v) {
		if e.hairpin[f][a]--; e.hairpin[f][a] <= 0 {
			delete(e.hairpin[f], a)
			d.delHairpin[f] = append(d.delHairpin[f], a)
		}
	}
}

// add puts v's contribution into e, recording the element changes.
func (e *natElems) add(v *virtualServer, d *natDelta) {
	f := famIndex(v.key.Addr)
	if v.masq && !e.masq[f][v.key] {
		e.masq[f][v.key] = true
		d.addMasq[f] = append(d.addMasq[f], v.key)
	}
	if !v.masq && v.masqOutside && !e.outside[f][v.key] {
		e.outside[f][v.key] = true
		d.addOutside[f] = append(d.addOutside[f], v.key)
	}
	for _, a := range destAddrs(v) {
		if e.hairpin[f][a]++; e.hairpin[f][a] == 1 {
			d.addHairpin[f] = append(d.addHairpin[f], a)
		}
	}
}

// destAddrs returns the distinct backend addresses of v, sorted.
func destAddrs(v *virtualServer) []netip.Addr {
	var out []netip.Addr
	for d := range v.dests {
		out = append(out, d.Addr())
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

// nat owns the masquerade tables of the datapath's namespace.
type nat struct {
	netns   string
	c       *counters
	cidrs   []netip.Prefix
	present bool      // the tables exist as we last wrote them
	elems   *natElems // what the sets hold
}

// dial opens an nftables connection in the namespace with large buffers;
// done closes it.
func (n *nat) dial() (conn *nftables.Conn, done func(), err error) {
	c, err := nftutil.Dial(n.netns)
	if err != nil {
		return nil, nil, fmt.Errorf("ipvs: nftables: %w", err)
	}
	if c.Netlink != nil {
		// If the buffers cannot be raised the defaults stay, and a big
		// transaction fails with an error of its own.
		_ = nftutil.SetSockBuf(c.Netlink, sockBuf, sockBuf)
	}
	return c.Nft, c.Close, nil
}

// flush sends the queued batch as one transaction.
func (n *nat) flush(conn *nftables.Conn) error {
	n.c.natBatches.Add(1)
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("ipvs: nftables transaction: %w", err)
	}
	return nil
}

// rebuild replaces both tables with ones holding elems, in one transaction
// (no moment without the rules); with no elements at all the tables are
// removed instead.
func (n *nat) rebuild(elems *natElems) error {
	if elems.empty() && !n.present {
		n.elems = elems
		return nil
	}
	conn, done, err := n.dial()
	if err != nil {
		return err
	}
	defer done()
	for i, nf := range natFamilies {
		t := &nftables.Table{Name: natTable, Family: nf.fam}
		// Adding an existing table is a no-op, so add+delete works
		// whether it exists or not.
		conn.AddTable(t)
		conn.DelTable(t)
		if elems.empty() {
			continue
		}
		if err := n.addTable(conn, nf, elems, i); err != nil {
			return err
		}
	}
	if err := n.flush(conn); err != nil {
		n.present = true // unknown: assume it is there, so Cleanup tries
		return err
	}
	n.present, n.elems = !elems.empty(), elems
	return nil
}

// sets returns the four sets of one family's table.
func (n *nat) sets(nf natFamily, t *nftables.Table) (masq, outside, cidrs, hairpin *nftables.Set, err error) {
	key, err := nftables.ConcatSetType(nf.addrType, nftables.TypeInetProto, nftables.TypeInetService)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	pair, err := nftables.ConcatSetType(nf.addrType, nf.addrType)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	masq = &nftables.Set{Table: t, Name: setMasq, KeyType: key, Concatenation: true}
	outside = &nftables.Set{Table: t, Name: setOutside, KeyType: key, Concatenation: true}
	cidrs = &nftables.Set{Table: t, Name: setCIDRs, KeyType: nf.addrType, Interval: true}
	hairpin = &nftables.Set{Table: t, Name: setHairpin, KeyType: pair, Concatenation: true}
	return masq, outside, cidrs, hairpin, nil
}

// addTable queues one family's table, chain, sets (with elements) and rules.
func (n *nat) addTable(conn *nftables.Conn, nf natFamily, elems *natElems, f int) error {
	t := conn.AddTable(&nftables.Table{Name: natTable, Family: nf.fam})
	masq, outside, cidrs, hairpin, err := n.sets(nf, t)
	if err != nil {
		return err
	}
	cidrElems := intervalElems(n.cidrs, nf.v6)
	for _, s := range []*nftables.Set{masq, outside, hairpin} {
		if err := conn.AddSet(s, nil); err != nil {
			return fmt.Errorf("ipvs: nftables set %s: %w", s.Name, err)
		}
	}
	if err := conn.AddSet(cidrs, cidrElems); err != nil {
		return fmt.Errorf("ipvs: nftables set %s: %w", cidrs.Name, err)
	}
	if err := addElems(conn, masq, vsElems(sortedKeys(elems.masq[f]))); err != nil {
		return err
	}
	if err := addElems(conn, outside, vsElems(sortedKeys(elems.outside[f]))); err != nil {
		return err
	}
	if err := addElems(conn, hairpin, pairElems(sortedAddrs(elems.hairpin[f]))); err != nil {
		return err
	}
	ch := conn.AddChain(&nftables.Chain{
		Name: chainPost, Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource,
	})
	for _, exprs := range natRules(nf.v6) {
		conn.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: exprs})
	}
	return nil
}

// natRules returns the expressions of the three rules of one family.
func natRules(v6 bool) [][]expr.Any {
	r0, after := nftutil.Reg(0), nftutil.Reg(nftutil.Words(v6))
	return [][]expr.Any{
		append(frontendKey(v6, setMasq), nftutil.Masquerade()),
		slices.Concat(frontendKey(v6, setOutside), []expr.Any{
			nftutil.LoadAddr(v6, true, r0),
			&expr.Lookup{SourceRegister: r0, SetName: setCIDRs, Invert: true},
			nftutil.Masquerade(),
		}),
		{
			nftutil.LoadAddr(v6, true, r0),
			nftutil.LoadAddr(v6, false, after),
			&expr.Lookup{SourceRegister: r0, SetName: setHairpin},
			nftutil.Masquerade(),
		},
	}
}

// frontendKey loads "ct original daddr . meta l4proto . ct original
// proto-dst" into consecutive 32-bit registers and looks it up in set.
func frontendKey(v6 bool, set string) []expr.Any {
	w := nftutil.Words(v6)
	return []expr.Any{
		&expr.Ct{Register: nftutil.Reg(0), Key: expr.CtKeyDST, Direction: 0},
		nftutil.LoadProto(nftutil.Reg(w)),
		&expr.Ct{Register: nftutil.Reg(w + 1), Key: expr.CtKeyPROTODST, Direction: 0},
		&expr.Lookup{SourceRegister: nftutil.Reg(0), SetName: set},
	}
}

// update applies a partial sync's element changes in one transaction. The
// tables must exist (present).
func (n *nat) update(d *natDelta) error {
	if d.empty() {
		return nil
	}
	conn, done, err := n.dial()
	if err != nil {
		return err
	}
	defer done()
	for i, nf := range natFamilies {
		t := &nftables.Table{Name: natTable, Family: nf.fam}
		masq, outside, _, hairpin, err := n.sets(nf, t)
		if err != nil {
			return err
		}
		for _, op := range []struct {
			set   *nftables.Set
			elems []nftables.SetElement
			del   bool
		}{
			{masq, vsElems(d.delMasq[i]), true}, {outside, vsElems(d.delOutside[i]), true}, {hairpin, pairElems(d.delHairpin[i]), true},
			{masq, vsElems(d.addMasq[i]), false}, {outside, vsElems(d.addOutside[i]), false}, {hairpin, pairElems(d.addHairpin[i]), false},
		} {
			if len(op.elems) == 0 {
				continue
			}
			if op.del {
				err = delElems(conn, op.set, op.elems)
			} else {
				err = addElems(conn, op.set, op.elems)
			}
			if err != nil {
				return err
			}
		}
	}
	return n.flush(conn)
}

// remove deletes both tables if they exist (whether this process made
// them or not): a rebuild with no elements.
func (n *nat) remove() error {
	n.present = true
	return n.rebuild(newNatElems())
}

func addElems(conn *nftables.Conn, s *nftables.Set, elems []nftables.SetElement) error {
	if _, err := nftutil.WriteElements(conn, s, elems, false); err != nil {
		return fmt.Errorf("ipvs: nftables: %w", err)
	}
	return nil
}

func delElems(conn *nftables.Conn, s *nftables.Set, elems []nftables.SetElement) error {
	if _, err := nftutil.WriteElements(conn, s, elems, true); err != nil {
		return fmt.Errorf("ipvs: nftables: %w", err)
	}
	return nil
}

// vsElems encodes frontends as "addr . proto . port" keys, each field
// padded to 4 bytes (the keys backends/nftables uses too).
func vsElems(keys []vsKey) []nftables.SetElement {
	out := make([]nftables.SetElement, len(keys))
	for i, k := range keys {
		out[i] = nftables.SetElement{Key: nftutil.FrontendKey(k.Addr, k.Protocol, k.Port)}
	}
	return out
}

// pairElems encodes "a . a" keys for the hairpin set.
func pairElems(addrs []netip.Addr) []nftables.SetElement {
	out := make([]nftables.SetElement, len(addrs))
	for i, a := range addrs {
		out[i] = nftables.SetElement{Key: slices.Concat(a.AsSlice(), a.AsSlice())}
	}
	return out
}

// intervalElems encodes the prefixes of one family as interval elements:
// the first address, and the address after the last (unless the prefix
// reaches the end of the address space).
func intervalElems(ps []netip.Prefix, v6 bool) []nftables.SetElement {
	var out []nftables.SetElement
	for _, p := range mergePrefixes(ps, v6) {
		out = append(out, nftables.SetElement{Key: p.Addr().AsSlice()})
		if end := lastAddr(p).Next(); end.IsValid() {
			out = append(out, nftables.SetElement{Key: end.AsSlice(), IntervalEnd: true})
		}
	}
	return out
}

// mergePrefixes returns the prefixes of one family, masked, sorted, without
// any contained in another.
func mergePrefixes(ps []netip.Prefix, v6 bool) []netip.Prefix {
	var in []netip.Prefix
	for _, p := range ps {
		if p.Addr().Is6() == v6 {
			in = append(in, p.Masked())
		}
	}
	slices.SortFunc(in, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	var out []netip.Prefix
	for _, p := range in {
		if len(out) > 0 && out[len(out)-1].Contains(p.Addr()) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// lastAddr returns the last address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func sortedKeys(m map[vsKey]bool) []vsKey {
	out := make([]vsKey, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, compareKeys)
	return out
}

func sortedAddrs(m map[netip.Addr]int) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for a := range m {
		out = append(out, a)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// compareKeys orders virtual servers by address, port and protocol.
func compareKeys(a, b vsKey) int {
	if c := a.Addr.Compare(b.Addr); c != 0 {
		return c
	}
	if a.Port != b.Port {
		return int(a.Port) - int(b.Port)
	}
	return int(a.Protocol) - int(b.Protocol)
}
