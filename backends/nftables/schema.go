package nftables

import (
	"fmt"

	"github.com/google/nftables"
)

// field is one field of a concatenated set key or map value.
type field uint8

const (
	fieldAddr4 field = iota + 1
	fieldAddr6
	fieldProto
	fieldPort
	fieldSlot
)

// size is the field's length in a key: the kernel pads every field of a
// concatenation to 4 bytes.
func (f field) size() int {
	if f == fieldAddr6 {
		return 16
	}
	return 4
}

// datatype is the nft data type of the field (for `nft list`).
func (f field) datatype() nftables.SetDatatype {
	switch f {
	case fieldAddr4:
		return nftables.TypeIPAddr
	case fieldAddr6:
		return nftables.TypeIP6Addr
	case fieldProto:
		return nftables.TypeInetProto
	case fieldPort:
		return nftables.TypeInetService
	default:
		return nftables.TypeMark
	}
}

// fieldsSize is the length of a concatenation of fields.
func fieldsSize(fs []field) int {
	n := 0
	for _, f := range fs {
		n += f.size()
	}
	return n
}

// setKind says what a set maps its keys to.
type setKind uint8

const (
	plainSet   setKind = iota // keys only
	dataMap                   // keys to data
	verdictMap                // keys to a verdict (goto a chain)
)

// setID names one of the datapath's sets; each family's table has one of
// each.
type setID uint8

// The sets of each table. See README.md for what they hold.
const (
	setServices setID = iota
	setNodePorts
	setNoEndpoints
	setNoEndpointNodePorts
	setEndpoints
	setAffinitySlots
	setAffinity
	setHairpin
	numSetIDs
)

// affinityMapSize bounds the entries of one family's affinity set (one per
// client and service with ClientIP affinity, for the affinity timeout).
const affinityMapSize = 1 << 20

// setDef defines one set of one family.
type setDef struct {
	id   setID
	v6   bool
	name string
	kind setKind
	key  []field
	data []field // dataMap only
	// dynamic sets are written by the packet path (dynset) and carry
	// per-element timeouts; the control plane never writes them.
	dynamic bool
}

// setFor returns the definition of set id of the family.
func setFor(id setID, v6 bool) setDef {
	addr := fieldAddr4
	if v6 {
		addr = fieldAddr6
	}
	d := setDef{id: id, v6: v6}
	switch id {
	case setServices:
		d.name, d.kind, d.key = "services", verdictMap, []field{addr, fieldProto, fieldPort}
	case setNodePorts:
		d.name, d.kind, d.key = "nodeports", verdictMap, []field{fieldProto, fieldPort}
	case setNoEndpoints:
		d.name, d.kind, d.key = "no-endpoints", plainSet, []field{addr, fieldProto, fieldPort}
	case setNoEndpointNodePorts:
		d.name, d.kind, d.key = "no-endpoint-nodeports", plainSet, []field{fieldProto, fieldPort}
	case setEndpoints:
		d.name, d.kind, d.key, d.data = "endpoints", dataMap, []field{addr, fieldProto, fieldPort, fieldSlot}, []field{addr, fieldPort}
	case setAffinitySlots:
		d.name, d.kind, d.key = "affinity-slots", verdictMap, []field{addr, fieldProto, fieldPort, fieldSlot}
	case setAffinity:
		d.name, d.kind, d.key = "affinity", plainSet, []field{addr, fieldSlot, addr, fieldPort}
		d.dynamic = true
	case setHairpin:
		d.name, d.kind, d.key = "hairpin", plainSet, []field{addr, addr}
	default:
		panic(fmt.Sprintf("nftables: unknown set id %d", id))
	}
	return d
}

// familySets returns the sets of one family's table, in creation order.
func familySets(v6 bool) []setDef {
	out := make([]setDef, 0, numSetIDs)
	for id := range numSetIDs {
		out = append(out, setFor(id, v6))
	}
	return out
}

// allSets returns the sets of both tables.
func allSets() []setDef { return append(familySets(false), familySets(true)...) }

// batchID is the set's id within a netlink batch (NFTA_SET_ID), fixed so
// that no package-level counter is shared between connections.
func (d setDef) batchID() uint32 {
	id := uint32(d.id) + 1
	if d.v6 {
		id += uint32(numSetIDs)
	}
	return id
}

func concatType(fs []field) nftables.SetDatatype {
	types := make([]nftables.SetDatatype, len(fs))
	for i, f := range fs {
		types[i] = f.datatype()
	}
	if len(types) == 1 {
		return types[0]
	}
	t, err := nftables.ConcatSetType(types...)
	if err != nil {
		panic(fmt.Sprintf("nftables: set type %v: %v", fs, err)) // at most 5 fields: a programming error
	}
	return t
}

// family names the set's table family for messages: "ip" or "ip6".
func (d setDef) family() string {
	if d.v6 {
		return "ip6"
	}
	return "ip"
}

// nft returns the google/nftables description of the set in table t.
func (d setDef) nft(t *nftables.Table) *nftables.Set {
	s := &nftables.Set{
		Table:   t,
		ID:      d.batchID(),
		Name:    d.name,
		KeyType: concatType(d.key),
	}
	switch d.kind {
	case dataMap:
		s.IsMap, s.DataType = true, concatType(d.data)
	case verdictMap:
		s.IsMap, s.DataType = true, nftables.TypeVerdict
	}
	if d.dynamic {
		s.Dynamic, s.HasTimeout, s.Size = true, true, affinityMapSize
	}
	return s
}

// matches reports whether a set read from the kernel has this definition
// (key and data lengths and the flags that matter).
//
// google/nftables v0.3.0 decodes a verdict map's data type into KeyType
// (overwriting the key type and length), so for verdict maps only the
// verdict data type is checked.
func (d setDef) matches(s *nftables.Set) bool {
	if s.IsMap != (d.kind != plainSet) || s.Dynamic != d.dynamic || s.HasTimeout != d.dynamic ||
		s.Interval || s.Anonymous || s.Constant {
		return false
	}
	verdict := nftables.TypeVerdict.GetNFTMagic()
	switch d.kind {
	case verdictMap:
		return s.KeyType.GetNFTMagic() == verdict || s.DataType.GetNFTMagic() == verdict
	case dataMap:
		return s.KeyType.Bytes == uint32(fieldsSize(d.key)) && s.DataType.Bytes == uint32(fieldsSize(d.data))
	}
	return s.KeyType.Bytes == uint32(fieldsSize(d.key))
}
