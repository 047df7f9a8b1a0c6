package nftables

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"

	"github.com/lbkit/lbkit/lb"
)

// setRef names one set of one family compactly.
type setRef struct {
	id setID
	v6 bool
}

func (r setRef) def() setDef { return setFor(r.id, r.v6) }

// elem is one element of one of the datapath's sets, as the kernel holds it.
type elem struct {
	set     setRef
	key     string // raw key bytes
	val     string // raw data bytes (data maps)
	chain   string // goto target (verdict maps)
	comment string
}

// elemID identifies an element within the datapath's sets.
type elemID struct {
	set setRef
	key string
}

func (e elem) id() elemID { return elemID{e.set, e.key} }

// same reports whether two elements with one id hold the same thing.
func (e elem) same(o elem) bool {
	return e.val == o.val && e.chain == o.chain && e.comment == o.comment
}

// String renders the element as nft would list it, for tests and humans:
// "services4: 198.18.100.1 . tcp . 80 : goto svc4-3 # web ClusterIP".
func (e elem) String() string {
	d := e.set.def()
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", d.name, formatKey(d.key, []byte(e.key)))
	switch d.kind {
	case dataMap:
		fmt.Fprintf(&b, " : %s", formatKey(d.data, []byte(e.val)))
	case verdictMap:
		fmt.Fprintf(&b, " : goto %s", e.chain)
	}
	if e.comment != "" {
		fmt.Fprintf(&b, " # %s", e.comment)
	}
	return b.String()
}

// comment is what a frontend's dispatch elements say: the service and the
// frontend kind, so that Inspect can tell them from the kernel alone.
func comment(key lb.ServiceKey, kind lb.FrontendKind) string {
	return string(key) + " " + kind.String()
}

// parseComment is the inverse of comment.
func parseComment(s string) (lb.ServiceKey, lb.FrontendKind, bool) {
	key, kind, ok := strings.Cut(s, " ")
	if !ok {
		return "", 0, false
	}
	k, err := lb.ParseFrontendKind(kind)
	return lb.ServiceKey(key), k, err == nil
}

// chainKind says what a chain does.
type chainKind uint8

const (
	// targetChain: shared by every frontend with the same target.
	targetChain chainKind = iota
	// affinityFrontendChain and affinityBackendChain belong to one
	// service with ClientIP affinity.
	affinityFrontendChain
	affinityBackendChain
)

// chainRef is a chain that elements jump to, with what determines its
// rules; two refs with the same name and different contents mean the
// chain's rules must be rewritten. It is comparable.
type chainRef struct {
	kind   chainKind
	v6     bool
	target target // targetChain
	// Affinity chains.
	svc      uint64
	fe       lb.Frontend // frontend chain
	masq     masqMode    // frontend chain
	timeout  uint32      // seconds
	slots    int         // frontend chain
	backends string      // frontend chain: the distinct backends' values, concatenated
	backend  netip.AddrPort
}

// name returns the chain's name (unique within its family's table).
func (r chainRef) name() string {
	switch r.kind {
	case affinityFrontendChain:
		return affinityFrontendName(r.svc, r.fe)
	case affinityBackendChain:
		return affinityBackendName(r.svc, r.backend)
	}
	return r.target.name()
}

// owned reports whether the chain belongs to one service, so that it goes
// when the service no longer needs it.
func (r chainRef) owned() bool { return r.kind != targetChain }

// def returns the chain with its rules.
func (r chainRef) def() chainDef {
	switch r.kind {
	case affinityFrontendChain:
		n := len(backendValue(netip.AddrPortFrom(r.fe.Addr, 0)))
		var bes []netip.AddrPort
		for b := r.backends; len(b) >= n; b = b[n:] {
			be, _ := parseBackendValue([]byte(b[:n]))
			bes = append(bes, be)
		}
		return buildAffinityFrontendChain(r.v6, r.svc, r.fe, r.masq, r.timeout, bes, r.slots)
	case affinityBackendChain:
		return buildAffinityBackendChain(r.v6, r.svc, r.backend, r.timeout)
	}
	return r.target.chain()
}

// chainKey identifies a chain across both tables.
type chainKey struct {
	v6   bool
	name string
}

func (r chainRef) key() chainKey { return chainKey{r.v6, r.name()} }

// serviceElems returns every element one service needs, the chains they
// jump to, and the backend addresses it contributes to the hairpin sets
// (distinct).
func (c *config) serviceElems(st *lb.ServiceState) ([]elem, []chainRef, []netip.Addr) {
	if st == nil {
		return nil, nil, nil
	}
	var elems []elem
	var chains []chainRef
	var hairpin []netip.Addr
	seenAddr := make(map[netip.Addr]bool)
	timeout := affinitySeconds(st.AffinityTimeout())
	svc := serviceID(st.Key())
	seenBackend := make(map[netip.AddrPort]bool)
	for _, fs := range st.Frontends {
		fe := fs.Frontend
		v6 := fe.Addr.Is6()
		wild := wildcard(fe)
		note := comment(st.Key(), fe.Kind)
		if len(fs.Backends) == 0 {
			if wild {
				elems = append(elems, elem{set: setRef{setNoEndpointNodePorts, v6}, key: string(nodePortKey(fe)), comment: note})
			} else {
				elems = append(elems, elem{set: setRef{setNoEndpoints, v6}, key: string(frontendKey(fe)), comment: note})
			}
			continue
		}
		table := slotTable(fs.Backends)
		masq := c.masqFor(st.Service, fe)
		dispatch, key := setServices, frontendKey(fe)
		if wild {
			dispatch, key = setNodePorts, nodePortKey(fe)
		}
		// One buffer for the slot keys, one string per backend value.
		fk := frontendKey(fe)
		slotKey := append(fk, 0, 0, 0, 0)
		slotKeyAt := func(slot int) string {
			binary.NativeEndian.PutUint32(slotKey[len(fk):], uint32(slot))
			return string(slotKey)
		}
		if timeout == 0 {
			t := target{v6: v6, wildcard: wild, masq: masq, slots: len(table)}
			chains = append(chains, chainRef{kind: targetChain, v6: v6, target: t})
			elems = append(elems, elem{set: setRef{dispatch, v6}, key: string(key), chain: t.name(), comment: note})
			vals := make([]string, len(fs.Backends))
			for i, b := range fs.Backends {
				vals[i] = string(backendValue(b.Addr))
			}
			for slot, i := range table {
				elems = append(elems, elem{set: setRef{setEndpoints, v6}, key: slotKeyAt(slot), val: vals[i]})
			}
		} else {
			var bes strings.Builder
			names := make([]string, len(fs.Backends))
			for i, b := range fs.Backends {
				bes.Write(backendValue(b.Addr))
				names[i] = affinityBackendName(svc, b.Addr)
				if !seenBackend[b.Addr] {
					seenBackend[b.Addr] = true
					chains = append(chains, chainRef{kind: affinityBackendChain, v6: v6, svc: svc, timeout: timeout, backend: b.Addr})
				}
			}
			fc := chainRef{kind: affinityFrontendChain, v6: v6, svc: svc, fe: fe, masq: masq, timeout: timeout,
				slots: len(table), backends: bes.String()}
			chains = append(chains, fc)
			elems = append(elems, elem{set: setRef{dispatch, v6}, key: string(key), chain: fc.name(), comment: note})
			for slot, i := range table {
				elems = append(elems, elem{set: setRef{setAffinitySlots, v6}, key: slotKeyAt(slot), chain: names[i]})
			}
		}
		for _, b := range fs.Backends {
			if a := b.Addr.Addr().Unmap(); !seenAddr[a] {
				seenAddr[a] = true
				hairpin = append(hairpin, a)
			}
		}
	}
	return elems, chains, hairpin
}

// hairpinElem is the hairpin set's element for a backend address.
func hairpinElem(a netip.Addr) elem {
	return elem{set: setRef{setHairpin, a.Is6()}, key: string(hairpinKey(a))}
}

// diffElems returns what turns the elements have into want: the elements
// to delete (gone, or changed) and to add (new, or changed).
func diffElems(have, want map[elemID]elem) (del, add []elem) {
	for id, h := range have {
		if w, ok := want[id]; !ok || !w.same(h) {
			del = append(del, h)
		}
	}
	for id, w := range want {
		if h, ok := have[id]; !ok || !w.same(h) {
			add = append(add, w)
		}
	}
	return del, add
}

// index maps elements by id; a later duplicate wins.
func index(elems []elem) map[elemID]elem {
	m := make(map[elemID]elem, len(elems))
	for _, e := range elems {
		m[e.id()] = e
	}
	return m
}
