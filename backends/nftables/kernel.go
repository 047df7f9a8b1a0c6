package nftables

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// kernelState is the datapath's tables as the kernel holds them.
type kernelState struct {
	tables [2]tableState // by fam
	// elems are the elements of every set but the dynamic ones (only read
	// when asked for, and when both tables are usable).
	elems map[elemID]elem
}

// tableState is one family's table.
type tableState struct {
	exists bool
	// compatible: every set and fixed chain there matches this version's
	// definitions, so the table can be reconciled in place (keeping the
	// affinity map); otherwise a full sync recreates both tables.
	compatible bool
	reason     string   // why not compatible
	chains     []string // every chain of the table
	extraSets  []string // sets this version does not define
}

// usable reports whether both tables exist and can be reconciled.
func (ks *kernelState) usable() bool {
	return ks.tables[0].compatible && ks.tables[1].compatible
}

// reason says why the tables cannot be reconciled in place.
func (ks *kernelState) reason() string {
	var parts []string
	for f, ts := range ks.tables {
		switch {
		case !ts.exists:
			parts = append(parts, familyName(f == 1)+" table missing")
		case !ts.compatible:
			parts = append(parts, familyName(f == 1)+" table: "+ts.reason)
		}
	}
	return strings.Join(parts, "; ")
}

// anyExists reports whether either table exists.
func (ks *kernelState) anyExists() bool { return ks.tables[0].exists || ks.tables[1].exists }

// readState reads both tables' sets and chains, and with withElems (when
// both are usable) the elements of the control plane's sets.
func (cn *conn) readState(c *config, withElems bool) (*kernelState, error) {
	ks := &kernelState{}
	for _, v6 := range []bool{false, true} {
		ts, err := cn.readTable(c, v6)
		if err != nil {
			return nil, err
		}
		ks.tables[fam(v6)] = ts
	}
	if !withElems || !ks.usable() {
		return ks, nil
	}
	ks.elems = make(map[elemID]elem)
	for _, d := range allSets() {
		if d.dynamic {
			continue
		}
		if err := cn.readElems(d, func(e elem) { ks.elems[e.id()] = e }); err != nil {
			return nil, err
		}
	}
	return ks, nil
}

// readTable reads one family's table: does it exist, are its sets and
// fixed chains this version's, which chains and other sets does it hold.
func (cn *conn) readTable(c *config, v6 bool) (tableState, error) {
	var ts tableState
	var err error
	if ts.exists, err = cn.tableExists(v6); err != nil || !ts.exists {
		return ts, err
	}
	t := cn.table(v6)
	sets, err := cn.nft.GetSets(t)
	if err != nil {
		// An unknown data type fails the decoding: not our table.
		ts.reason = fmt.Sprintf("its sets cannot be read (%v)", err)
		return ts, nil
	}
	byName := make(map[string]*nftables.Set, len(sets))
	for _, s := range sets {
		byName[s.Name] = s
	}
	var problems []string
	for _, d := range familySets(v6) {
		s, ok := byName[d.name]
		switch {
		case !ok:
			problems = append(problems, "set "+d.name+" is missing")
		case !d.matches(s):
			problems = append(problems, "set "+d.name+" has another type")
		}
		delete(byName, d.name)
	}
	for name := range byName {
		ts.extraSets = append(ts.extraSets, name)
	}
	chains, err := cn.nft.ListChainsOfTableFamily(t.Family)
	if err != nil {
		return ts, fmt.Errorf("list %s chains: %w", familyName(v6), err)
	}
	have := make(map[string]*nftables.Chain)
	for _, ch := range chains {
		if ch.Table != nil && ch.Table.Name == t.Name {
			have[ch.Name] = ch
			ts.chains = append(ts.chains, ch.Name)
		}
	}
	for _, def := range c.fixedChains(v6) {
		if ch, ok := have[def.name]; ok && !def.matches(ch) {
			problems = append(problems, "chain "+def.name+" hooks differently")
		}
	}
	if len(problems) > 0 {
		ts.reason = strings.Join(problems, "; ")
		return ts, nil
	}
	ts.compatible = true
	return ts, nil
}

// readElems calls fn for every element of set d.
func (cn *conn) readElems(d setDef, fn func(elem)) error {
	els, err := cn.nft.GetSetElements(d.nft(cn.table(d.v6)))
	if err != nil {
		return fmt.Errorf("list elements of set %s %s: %w", d.family(), d.name, err)
	}
	ref := setRef{d.id, d.v6}
	for _, se := range els {
		e := elem{set: ref, key: string(se.Key), comment: se.Comment}
		switch d.kind {
		case dataMap:
			e.val = string(se.Val)
		case verdictMap:
			e.chain = verdictChain(se.Val)
		}
		fn(e)
	}
	return nil
}

// verdictChain extracts the chain of a goto or jump verdict from an
// element's data as google/nftables returns it (the attributes of
// NFTA_DATA_VERDICT); "" for other verdicts.
func verdictChain(b []byte) string {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return ""
	}
	ad.ByteOrder = binary.BigEndian
	var code uint32
	var chain string
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_VERDICT_CODE:
			code = ad.Uint32()
		case unix.NFTA_VERDICT_CHAIN:
			chain = ad.String()
		}
	}
	if ad.Err() != nil || (int32(code) != unix.NFT_GOTO && int32(code) != unix.NFT_JUMP) {
		return ""
	}
	return chain
}
