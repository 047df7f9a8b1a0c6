package iptables

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/lbkit/lbkit/lb"
)

// Inspect reads from the kernel how a frontend is realized: the dispatch
// rule that selects it, and the service chain that picks its backend (or
// the rule that rejects it when it has no backend). Equal weights read back
// as 1; unequal ones as programmed, divided by their greatest common
// divisor.
func (d *Datapath) Inspect(ctx context.Context, id lb.FrontendID) (*lb.Inspection, error) {
	f := d.fams[0]
	if id.Addr.Is6() {
		f = d.fams[1]
	}
	fe := lb.Frontend{Addr: id.Addr.Unmap(), Port: id.Port, Protocol: id.Protocol}
	chain := chainNodePorts
	if !fe.Addr.IsUnspecified() {
		chain = shardChain(shardOf(fe.Addr))
	}
	var listErrs []string
	out, err := d.run.listChain(ctx, f.tools, "nat", chain)
	if err == nil {
		for _, r := range parseRules(out) {
			if matchesFrontend(r, fe) {
				return d.inspectService(ctx, f, fe, r)
			}
		}
	} else {
		listErrs = append(listErrs, err.Error())
	}
	out, err = d.run.listChain(ctx, f.tools, "filter", chainNoEndpoints)
	if err == nil {
		for _, r := range parseRules(out) {
			if matchesFrontend(r, fe) {
				in := d.inspection(f, fe, r, "")
				in.Details = append(in.Details, fmt.Sprintf("no backends: %s in filter %s", r.target(), chainNoEndpoints),
					"filter "+r.line)
				return in, nil
			}
		}
	} else {
		listErrs = append(listErrs, err.Error())
	}
	msg := fmt.Sprintf("iptables: frontend %s is not programmed", id)
	if len(listErrs) > 0 {
		msg += " (" + strings.Join(listErrs, "; ") + ")"
	}
	return nil, fmt.Errorf("%s", msg)
}

// matchesFrontend reports whether a dispatch or reject rule selects fe.
func matchesFrontend(r rule, fe lb.Frontend) bool {
	if p, _ := r.value("-p"); p != fe.Protocol.String() {
		return false
	}
	if port, _ := r.value("--dport"); port != strconv.Itoa(int(fe.Port)) {
		return false
	}
	dst, hasDst := r.value("-d")
	if fe.Addr.IsUnspecified() {
		// A NodePort on every node address: no destination, or the
		// node-address selection of the filter table.
		return !hasDst || r.has("--dst-type")
	}
	if !hasDst || r.negated("-d") {
		return false
	}
	p, err := netip.ParsePrefix(dst)
	return err == nil && p.Bits() == fe.Addr.BitLen() && p.Addr() == fe.Addr
}

// inspection starts an Inspection from a rule carrying our comment; chain
// is the service chain the rule leads to, if any.
func (d *Datapath) inspection(f *family, fe lb.Frontend, r rule, chain string) *lb.Inspection {
	in := &lb.Inspection{Datapath: name, Frontend: fe, Scheduler: lb.Random}
	comment, _ := r.value("--comment")
	esc, kind, _ := strings.Cut(comment, " ")
	if k, err := lb.ParseFrontendKind(kind); err == nil {
		in.Frontend.Kind = k
	}
	key, truncated, ok := unescapeKey(esc)
	switch {
	case !ok:
		in.Details = append(in.Details, fmt.Sprintf("rule comment %q is not lbkit's", comment))
	case truncated:
		// The key was too long for a comment: the chain names the service.
		in.Service = key + "..."
		if full, found := d.keyOf(f, fe, chain); found {
			in.Service = full
		}
	default:
		in.Service = key
	}
	return in
}

// keyOf finds, in the recorded state, the service owning a chain (or, with
// no chain, a frontend), for keys too long for a comment.
func (d *Datapath) keyOf(f *family, fe lb.Frontend, chain string) (lb.ServiceKey, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, r := range f.state.services {
		if chain != "" && r.hasChain(chain) {
			return k, true
		}
		for _, fs := range r.state.Frontends {
			if chain == "" && fs.ID() == fe.ID() {
				return k, true
			}
		}
	}
	return "", false
}

// inspectService reads the service chain a dispatch rule leads to.
func (d *Datapath) inspectService(ctx context.Context, f *family, fe lb.Frontend, dispatch rule) (*lb.Inspection, error) {
	chain := dispatch.target()
	in := d.inspection(f, fe, dispatch, chain)
	out, err := d.run.listChain(ctx, f.tools, "nat", chain)
	if err != nil {
		return nil, fmt.Errorf("iptables: frontend %s: read service chain: %w", fe.ID(), err)
	}
	in.Details = append(in.Details, "nat "+dispatch.line)
	remaining := 1.0
	for _, r := range parseRules(out) {
		in.Details = append(in.Details, "nat "+r.line)
		if r.target() != "DNAT" {
			continue
		}
		to, _ := r.value("--to-destination")
		addr, err := netip.ParseAddrPort(to)
		if err != nil {
			return nil, fmt.Errorf("iptables: frontend %s: chain %s: bad DNAT destination %q", fe.ID(), chain, to)
		}
		if r.has("--update") || r.has("--rcheck") {
			if s, err := strconv.Atoi(valueOr(r, "--seconds", "")); err == nil {
				in.AffinityTimeout = time.Duration(s) * time.Second
			}
			continue
		}
		be := lb.Backend{Addr: addr, Weight: 1}
		if c, ok := r.value("--comment"); ok {
			if w, ok := strings.CutPrefix(c, "weight="); ok {
				if n, err := strconv.ParseUint(w, 10, 32); err == nil {
					be.Weight = uint32(n)
				}
			}
		}
		p := 1.0
		if s, ok := r.value("--probability"); ok {
			if p, err = strconv.ParseFloat(s, 64); err != nil {
				return nil, fmt.Errorf("iptables: frontend %s: chain %s: bad probability %q", fe.ID(), chain, s)
			}
		}
		in.Details = append(in.Details, fmt.Sprintf("backend %s: %.1f%% of new connections", addr, 100*remaining*p))
		remaining *= 1 - p
		in.Backends = append(in.Backends, be)
	}
	return in, nil
}

// valueOr returns the value of flag in r, or def.
func valueOr(r rule, flag, def string) string {
	if v, ok := r.value(flag); ok {
		return v
	}
	return def
}
