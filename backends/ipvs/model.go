package ipvs

import (
	"fmt"
	"maps"
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/lbkit/lbkit/lb"
)

// vsKey identifies an IPVS virtual server: address, port and protocol.
type vsKey = lb.FrontendID

// virtualServer is one IPVS virtual server as the datapath wants it (or, in
// the kernel view, as it is): scheduler, persistence and real servers.
type virtualServer struct {
	key     vsKey
	sched   string
	flags   uint32 // without kernelFlags
	timeout uint32 // persistence, seconds; 0 without affinity
	// dests maps real servers to their weights. In the kernel view a
	// draining real server has weight 0.
	dests map[netip.AddrPort]int

	// What the datapath knows beyond the kernel (desired view only).
	service lb.ServiceKey
	kind    lb.FrontendKind
	asked   lb.Scheduler // the service's own scheduler
	// bind: the address belongs on the dummy device (not a NodePort).
	bind bool
	// masq: traffic is always masqueraded; masqOutside: only from outside
	// Options.ClusterCIDRs.
	masq, masqOutside bool
}

// sameService reports whether a and b agree on everything an IPVS
// UpdateService sets.
func (a *virtualServer) sameService(b *virtualServer) bool {
	return a.sched == b.sched && a.flags == b.flags && a.timeout == b.timeout
}

// nodeAddrs returns the node addresses (of one family) that serve NodePorts
// on an unspecified address.
type nodeAddrs func(v6 bool) ([]netip.Addr, error)

// desiredOf returns the virtual servers that realize st: one per frontend,
// and for a NodePort on an unspecified address one per node address of its
// family. An error names the field the datapath cannot express.
func desiredOf(st *lb.ServiceState, o *Options, nodes nodeAddrs) (map[vsKey]*virtualServer, error) {
	svc := st.Service
	sched, err := schedulerFor(svc.EffectiveScheduler(), o.Scheduler)
	if err != nil {
		return nil, &lb.UnsupportedError{Service: svc.Key, Field: "scheduler", Value: string(svc.EffectiveScheduler()), Datapath: name}
	}
	flags, timeout := sched.flags, uint32(0)
	if t := svc.AffinityTimeout(); t > 0 {
		flags |= flagPersistent
		timeout = uint32(min(math.Ceil(t.Seconds()), float64(math.MaxUint32)))
	}
	out := make(map[vsKey]*virtualServer, len(st.Frontends))
	for i, fe := range st.Frontends {
		addrs := []netip.Addr{fe.Addr}
		if fe.Kind == lb.NodePort && fe.Addr.IsUnspecified() {
			if addrs, err = nodes(fe.Addr.Is6()); err != nil {
				return nil, fmt.Errorf("frontends[%d] (%s): node addresses: %w", i, fe, err)
			}
		}
		policy := svc.InternalPolicy
		if fe.Kind.External() {
			policy = svc.ExternalPolicy
		}
		dests := make(map[netip.AddrPort]int, len(fe.Backends))
		for _, b := range fe.Backends {
			dests[b.Addr] = int(max(b.Weight, 1))
		}
		for _, a := range addrs {
			k := vsKey{Addr: a, Port: fe.Port, Protocol: fe.Protocol}
			if _, dup := out[k]; dup {
				return nil, fmt.Errorf("frontends[%d] (%s) resolves to virtual server %s twice", i, fe, k)
			}
			out[k] = &virtualServer{
				key: k, sched: sched.name, flags: flags, timeout: timeout, dests: dests,
				service: svc.Key, kind: fe.Kind, asked: svc.EffectiveScheduler(),
				bind:        fe.Kind != lb.NodePort,
				masq:        o.MasqueradeAll || (fe.Kind.External() && policy == lb.PolicyCluster),
				masqOutside: fe.Kind == lb.ClusterIP && hasFamily(o.ClusterCIDRs, a.Is6()),
			}
		}
	}
	return out, nil
}

// hasFamily reports whether ps holds a prefix of the family.
func hasFamily(ps []netip.Prefix, v6 bool) bool {
	for _, p := range ps {
		if p.Addr().Is6() == v6 {
			return true
		}
	}
	return false
}

// vsPlan is what turns the kernel's virtual server into the wanted one.
type vsPlan struct {
	create, update bool
	// add, set: real servers to create, and to change the weight of.
	add, set map[netip.AddrPort]int
	// drain: real servers to set to weight 0 and watch; remove: real
	// servers to delete now.
	drain, remove []netip.AddrPort
}

// empty reports whether the plan changes nothing.
func (p *vsPlan) empty() bool {
	return !p.create && !p.update && len(p.add) == 0 && len(p.set) == 0 && len(p.drain) == 0 && len(p.remove) == 0
}

// planVS compares the kernel's virtual server cur (nil: absent) with want.
// Real servers only cur has are drained when graceful (TCP, SCTP) and not
// already at weight 0 (draining), else removed; a drained real server that
// is wanted again gets its weight back.
func planVS(cur, want *virtualServer, draining func(netip.AddrPort) bool) vsPlan {
	p := vsPlan{add: map[netip.AddrPort]int{}, set: map[netip.AddrPort]int{}}
	if cur == nil {
		p.create = true
		maps.Copy(p.add, want.dests)
		return p
	}
	p.update = !cur.sameService(want)
	for d, w := range want.dests {
		cw, ok := cur.dests[d]
		switch {
		case !ok:
			p.add[d] = w
		case cw != w:
			p.set[d] = w
		}
	}
	graceful := want.key.Protocol != lb.UDP
	for _, d := range sortedDests(cur.dests) {
		if _, ok := want.dests[d]; ok {
			continue
		}
		switch {
		case !graceful:
			p.remove = append(p.remove, d)
		case cur.dests[d] == 0 && draining(d):
			// Already draining; the drain pass decides when it goes.
		default:
			p.drain = append(p.drain, d)
		}
	}
	return p
}

// sortedDests returns the real servers of m in address order.
func sortedDests(m map[netip.AddrPort]int) []netip.AddrPort {
	return slices.SortedFunc(maps.Keys(m), func(a, b netip.AddrPort) int { return a.Compare(b) })
}

// drainState is a real server that was removed from a TCP or SCTP virtual
// server and drains at weight 0.
type drainState struct {
	since time.Time
}

// drainKey names a draining real server.
type drainKey struct {
	vs   vsKey
	dest netip.AddrPort
}
