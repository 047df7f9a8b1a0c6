package nftables

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"

	"github.com/lbkit/lbkit/internal/nftutil"
	"github.com/lbkit/lbkit/lb"
)

// Inspect reads from the kernel how a frontend is programmed: the element
// that dispatches it, its chain, and the backends in its slots (a backend's
// Weight is its number of slots). It reads the whole maps involved, so it
// is meant for humans (proxyd explain) and tests, not for a hot path.
func (d *Datapath) Inspect(ctx context.Context, id lb.FrontendID) (*lb.Inspection, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("nftables: inspect: %w", err)
	}
	if !id.Addr.IsValid() || nftutil.ProtoNum(id.Protocol) == 0 {
		return nil, fmt.Errorf("nftables: inspect %s: not a frontend address, port and protocol", id)
	}
	id.Addr = id.Addr.Unmap()
	in, err := d.inspect(id)
	if err != nil {
		return nil, fmt.Errorf("nftables: inspect %s%s: %w", id, d.cfg.where(), err)
	}
	return in, nil
}

func (d *Datapath) inspect(id lb.FrontendID) (*lb.Inspection, error) {
	cn, err := d.cfg.dial()
	if err != nil {
		return nil, err
	}
	defer cn.close()
	v6 := id.Addr.Is6()
	if ok, err := cn.tableExists(v6); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("table %s %s does not exist", familyName(v6), d.cfg.table)
		}
		return nil, err
	}
	fe := lb.Frontend{Addr: id.Addr, Port: id.Port, Protocol: id.Protocol, Kind: lb.NodePort}
	dispatch, noEndpoints, key := setServices, setNoEndpoints, frontendKey(fe)
	if id.Addr.IsUnspecified() {
		dispatch, noEndpoints, key = setNodePorts, setNoEndpointNodePorts, nodePortKey(fe)
	}
	e, found, err := cn.findElem(setFor(dispatch, v6), key)
	if err == nil && !found {
		e, found, err = cn.findElem(setFor(noEndpoints, v6), key)
	}
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("not programmed in table %s %s", familyName(v6), d.cfg.table)
	}
	svc, kind, ok := parseComment(e.comment)
	if !ok {
		return nil, fmt.Errorf("element %s has no service comment", e)
	}
	fe.Kind = kind
	in := &lb.Inspection{Datapath: name, Service: svc, Frontend: fe, Scheduler: lb.Random, Backends: []lb.Backend{}}
	if e.set.id == noEndpoints {
		in.Details = []string{fmt.Sprintf("no endpoints: new connections are rejected (element of set %s)", e.set.def().name)}
		return in, nil
	}
	in.Details = []string{fmt.Sprintf("element of %s jumps to chain %s", e.set.def().name, e.chain)}
	var slots []netip.AddrPort
	var masq masqMode
	if t, ok := parseTarget(e.chain, v6); ok {
		masq = t.masq
		slots, err = cn.endpointSlots(fe, t.slots)
		in.Details = append(in.Details, fmt.Sprintf("numgen random mod %d over the endpoints map", t.slots))
	} else {
		var ch affinityChainInfo
		if ch, err = cn.readAffinityChain(v6, e.chain); err == nil {
			masq, in.AffinityTimeout = ch.masq, ch.timeout
			slots, err = cn.affinitySlots(fe, ch.slots)
			in.Details = append(in.Details, fmt.Sprintf("ClientIP affinity, timeout %s; numgen random mod %d over the affinity-slots map", ch.timeout, ch.slots))
		}
	}
	if err != nil {
		return nil, err
	}
	weights := make(map[netip.AddrPort]uint32)
	for _, b := range slots {
		weights[b]++
	}
	for b, w := range weights {
		in.Backends = append(in.Backends, lb.Backend{Addr: b, Weight: w})
	}
	slices.SortFunc(in.Backends, func(a, b lb.Backend) int { return a.Addr.Compare(b.Addr) })
	in.Details = append(in.Details, "masquerade: "+masq.String())
	for i, b := range slots {
		in.Details = append(in.Details, fmt.Sprintf("slot %d: %s", i, b))
	}
	return in, nil
}

// affinityChainInfo is what a frontend's affinity chain says.
type affinityChainInfo struct {
	slots   int
	timeout time.Duration
	masq    masqMode
}

// readAffinityChain reads a frontend's affinity chain back: the numgen
// modulus of its last rule, the timeout of its dynset updates and the mark
// chain it jumps to first.
func (cn *conn) readAffinityChain(v6 bool, chain string) (affinityChainInfo, error) {
	var info affinityChainInfo
	t := cn.table(v6)
	rules, err := cn.nft.GetRules(t, &nftables.Chain{Name: chain, Table: t})
	if err != nil {
		return info, fmt.Errorf("list rules of chain %s: %w", chain, err)
	}
	for _, r := range rules {
		for _, e := range r.Exprs {
			switch e := e.(type) {
			case *expr.Numgen:
				info.slots = int(e.Modulus)
			case *expr.Dynset:
				info.timeout = e.Timeout
			case *expr.Verdict:
				for m := masqAlways; m <= masqLocalSource; m++ {
					if e.Kind == expr.VerdictJump && e.Chain == markChain(m) {
						info.masq = m
					}
				}
			}
		}
	}
	if info.slots == 0 {
		return info, fmt.Errorf("chain %s is neither a target chain nor a frontend's affinity chain", chain)
	}
	return info, nil
}

// String says when a frontend's connections are masqueraded.
func (m masqMode) String() string {
	switch m {
	case masqAlways:
		return "always"
	case masqOutsideCluster:
		return "sources outside the cluster CIDRs"
	case masqLocalSource:
		return "the node's own connections only (Local policy)"
	}
	return "no (hairpin only)"
}

// findElem reads set d and returns the element with key k.
func (cn *conn) findElem(d setDef, k []byte) (elem, bool, error) {
	var found elem
	ok := false
	err := cn.readElems(d, func(e elem) {
		if e.key == string(k) {
			found, ok = e, true
		}
	})
	return found, ok, err
}

// endpointSlots returns the backend in each of the frontend's n slots of
// the endpoints map.
func (cn *conn) endpointSlots(fe lb.Frontend, n int) ([]netip.AddrPort, error) {
	return cn.slots(setFor(setEndpoints, fe.Addr.Is6()), fe, n, func(e elem) (netip.AddrPort, error) {
		return parseBackendValue([]byte(e.val))
	})
}

// affinitySlots returns the backend in each of the frontend's n slots of
// the affinity-slots map: the one its element's chain DNATs to.
func (cn *conn) affinitySlots(fe lb.Frontend, n int) ([]netip.AddrPort, error) {
	return cn.slots(setFor(setAffinitySlots, fe.Addr.Is6()), fe, n, func(e elem) (netip.AddrPort, error) {
		return parseAffinityBackendName(e.chain)
	})
}

// slots reads the frontend's n slots of set d, decoding each with backend.
func (cn *conn) slots(d setDef, fe lb.Frontend, n int, backend func(elem) (netip.AddrPort, error)) ([]netip.AddrPort, error) {
	want := make(map[string]int, n)
	for i := range n {
		want[string(endpointKey(fe, i))] = i
	}
	out := make([]netip.AddrPort, n)
	seen := 0
	var bad error
	err := cn.readElems(d, func(e elem) {
		i, ok := want[e.key]
		if !ok {
			return
		}
		b, err := backend(e)
		if err != nil && bad == nil {
			bad = fmt.Errorf("slot %d: %w", i, err)
		}
		out[i] = b
		seen++
	})
	if err = firstErr(err, bad); err != nil {
		return nil, err
	}
	if seen != n {
		return nil, fmt.Errorf("%d of the frontend's %d slots are in the %s map", seen, n, d.name)
	}
	return out, nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Adopt takes over a table a previous process left: it checks the table
// is of this version's layout and logs what it holds. Nothing is
// flushed; the first (full) sync changes only what differs, in one
// transaction, so established connections (held by conntrack), new ones and
// the affinity entries all carry on. A table of another layout is logged
// and replaced by that sync.
func (d *Datapath) Adopt(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("nftables: adopt: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	cn, err := d.cfg.dial()
	if err != nil {
		return err
	}
	defer cn.close()
	ks, err := cn.readState(d.cfg, false)
	if err != nil {
		return fmt.Errorf("nftables: adopt tables ip and ip6 %s%s: %w", d.cfg.table, d.cfg.where(), err)
	}
	switch {
	case !ks.anyExists():
		d.cfg.log.Info("no tables to adopt", "table", d.cfg.table)
		return nil
	case !ks.usable():
		d.cfg.log.Warn("tables of another layout: the first sync replaces them", "table", d.cfg.table, "reason", ks.reason())
		return nil
	}
	frontends := 0
	for _, v6 := range []bool{false, true} {
		for _, id := range []setID{setServices, setNodePorts, setNoEndpoints, setNoEndpointNodePorts} {
			if err := cn.readElems(setFor(id, v6), func(elem) { frontends++ }); err != nil {
				return fmt.Errorf("nftables: adopt: %w", err)
			}
		}
	}
	d.cfg.log.Info("adopted tables", "table", d.cfg.table, "frontends", frontends)
	return nil
}
