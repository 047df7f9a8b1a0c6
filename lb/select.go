package lb

import "slices"

// Select computes the state of one service on node nodeName: for every
// frontend, the backends it balances over, with kube-proxy's semantics:
//
//   - only endpoints of the frontend's IP family;
//   - with a Local policy (external for NodePort/ExternalIP/LoadBalancer,
//     internal for ClusterIP), only endpoints whose NodeName is nodeName;
//   - the ready endpoints among those; if none is ready, the ones that are
//     serving and terminating (so connections drain gracefully during a
//     rollout instead of failing);
//   - sorted by address, weights defaulted.
//
// Frontends with the same family and policy share one backends slice. The
// result must be treated as immutable.
func Select(svc *Service, eps []Endpoint, nodeName string) *ServiceState {
	st := &ServiceState{
		Service:   svc,
		Frontends: make([]FrontendState, len(svc.Frontends)),
		Endpoints: eps,
	}
	type group struct {
		v6, local bool
	}
	cache := make(map[group][]Backend, 2)
	for i, fe := range svc.Frontends {
		policy := svc.InternalPolicy
		if fe.Kind.External() {
			policy = svc.ExternalPolicy
		}
		g := group{v6: fe.Addr.Is6(), local: policy == PolicyLocal}
		bs, ok := cache[g]
		if !ok {
			bs = selectBackends(eps, g.v6, g.local, nodeName)
			cache[g] = bs
		}
		st.Frontends[i] = FrontendState{Frontend: fe, Backends: bs}
	}
	return st
}

func selectBackends(eps []Endpoint, v6, local bool, nodeName string) []Backend {
	usable := func(ep Endpoint) bool {
		return ep.Addr.Addr().Is6() == v6 && (!local || ep.NodeName == nodeName)
	}
	var ready, terminating []Backend
	for _, ep := range eps {
		if !usable(ep) {
			continue
		}
		b := Backend{Addr: ep.Addr, Weight: ep.EffectiveWeight(), NodeName: ep.NodeName, Zone: ep.Zone}
		switch {
		case ep.Ready:
			ready = append(ready, b)
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
