package lb

import "slices"

// Select computes the state of one service on node: for every frontend,
// the backends it balances over, with kube-proxy's semantics:
//
//   - only endpoints of the frontend's IP family;
//   - with a Local policy (external for NodePort/ExternalIP/LoadBalancer,
//     internal for ClusterIP), only endpoints whose NodeName is node.Name;
//   - with a Cluster policy, topology hints when every ready endpoint of
//     the family carries them: those hinted for this node when one is,
//     else those hinted for this node's zone when one is, else all;
//   - the ready endpoints among those; if none is ready, the ones that are
//     serving and terminating (so connections drain gracefully during a
//     rollout instead of failing);
//   - sorted by address, weights defaulted.
//
// Frontends with the same family and policy share one backends slice. The
// result must be treated as immutable.
func Select(svc *Service, eps []Endpoint, node Node) *ServiceState {
	st := &ServiceState{
		Service:   svc,
		Frontends: make([]FrontendState, len(svc.Frontends)),
		Endpoints: eps,
	}
	// Frontends of the same family and policy share one result: index
	// v6*2 + local.
	var cache [4][]Backend
	var done [4]bool
	for i, fe := range svc.Frontends {
		policy := svc.InternalPolicy
		if fe.Kind.External() {
			policy = svc.ExternalPolicy
		}
		v6, local := fe.Addr.Is6(), policy == PolicyLocal
		g := 0
		if v6 {
			g += 2
		}
		if local {
			g++
		}
		if !done[g] {
			cache[g], done[g] = selectBackends(eps, v6, local, node), true
		}
		st.Frontends[i] = FrontendState{Frontend: fe, Backends: cache[g]}
	}
	return st
}

func selectBackends(eps []Endpoint, v6, local bool, node Node) []Backend {
	usable := func(ep Endpoint) bool {
		return ep.Addr.Addr().Is6() == v6 && (!local || ep.NodeName == node.Name)
	}
	topo := topologyNone
	if !local {
		topo = topologyOf(eps, v6, node)
	}
	ready := make([]Backend, 0, len(eps))
	var terminating []Backend
	for _, ep := range eps {
		if !usable(ep) {
			continue
		}
		b := Backend{Addr: ep.Addr, Weight: ep.EffectiveWeight(), NodeName: ep.NodeName, Zone: ep.Zone}
		switch {
		case ep.Ready && topo.usableFor(ep, node):
			ready = append(ready, b)
		case ep.Ready:
			// Hinted for another node or zone.
		case ep.Serving && ep.Terminating:
			b.Terminating = true
			terminating = append(terminating, b)
		}
	}
	out := ready
	if len(out) == 0 {
		out = terminating
	}
	slices.SortFunc(out, func(a, b Backend) int { return a.Addr.Compare(b.Addr) })
	return out
}
