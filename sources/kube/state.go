package kube

import (
	"net/netip"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/lbkit/lbkit/lb"
)

// state is what the source knows of the cluster and what it gave the
// sink, so that each event sends only the difference. It is not safe for
// concurrent use; Source serializes access.
type state struct {
	node     string
	services map[types.NamespacedName]*serviceEntry
	// slices holds each service's EndpointSlices by slice name; slices
	// of a service not seen yet wait here for it.
	slices map[types.NamespacedName]map[string]sliceEndpoints
	// keys maps an lb key back to its Service, for events.
	keys map[lb.ServiceKey]types.NamespacedName
}

// serviceEntry is one Service as given to the sink.
type serviceEntry struct {
	ref   corev1.ObjectReference
	ports []servicePort
	// sent is the endpoints last given to the sink, per port key.
	sent map[lb.ServiceKey][]lb.Endpoint
	// healthCheckNodePort is set for externalTrafficPolicy=Local
	// services that have one.
	healthCheckNodePort uint16
	// bad is set for the ports whose last status carried an error, so
	// that recovering is told once.
	bad map[lb.ServiceKey]bool
}

func newState(node string) *state {
	return &state{
		node:     node,
		services: make(map[types.NamespacedName]*serviceEntry),
		slices:   make(map[types.NamespacedName]map[string]sliceEndpoints),
		keys:     make(map[lb.ServiceKey]types.NamespacedName),
	}
}

// applyService makes the sink hold svc (nil: its deletion). Called with
// s.mu held.
func (s *Source) applyService(nn types.NamespacedName, svc *corev1.Service) {
	st := s.state
	old := st.services[nn]
	var ports []servicePort
	if svc != nil {
		ports = translateService(svc)
	}
	if len(ports) == 0 {
		if old == nil {
			return
		}
		for _, p := range old.ports {
			s.removeKey(p.svc.Key, old)
		}
		delete(st.services, nn)
		s.healthChanged(nn, nil)
		return
	}
	e := old
	if e == nil {
		e = &serviceEntry{sent: make(map[lb.ServiceKey][]lb.Endpoint)}
		st.services[nn] = e
	}
	e.ref = corev1.ObjectReference{Kind: "Service", APIVersion: "v1", Namespace: svc.Namespace, Name: svc.Name, UID: svc.UID}
	e.healthCheckNodePort = 0
	if ports[0].svc.ExternalPolicy == lb.PolicyLocal && svc.Spec.HealthCheckNodePort > 0 {
		e.healthCheckNodePort = uint16(svc.Spec.HealthCheckNodePort)
	}
	// Removed ports first: they may free frontends a new port takes.
	for _, p := range e.ports {
		if !slices.ContainsFunc(ports, func(n servicePort) bool { return n.svc.Key == p.svc.Key }) {
			s.removeKey(p.svc.Key, e)
		}
	}
	oldPorts := e.ports
	e.ports = ports
	for _, p := range ports {
		i := slices.IndexFunc(oldPorts, func(o servicePort) bool { return o.svc.Key == p.svc.Key })
		if i < 0 || !oldPorts[i].svc.Equal(p.svc) {
			st.keys[p.svc.Key] = nn
			_ = s.sink.Upsert(p.svc.Clone()) // refused input: the engine keeps it and reports its status
		}
	}
	s.pushEndpoints(nn, e, time.Time{})
	s.healthChanged(nn, e)
}

// removeKey deletes one port's service and endpoints from the sink.
func (s *Source) removeKey(key lb.ServiceKey, e *serviceEntry) {
	s.sink.Delete(key)
	if _, had := e.sent[key]; had {
		_ = s.sink.SetEndpoints(key, nil)
		delete(e.sent, key)
	}
	delete(s.state.keys, key)
}

// applySlice records one EndpointSlice of service nn and pushes the
// service's endpoints. Called with s.mu held.
func (s *Source) applySlice(nn types.NamespacedName, name string, eps sliceEndpoints, deleted bool, trigger time.Time) {
	st := s.state
	m := st.slices[nn]
	if deleted {
		if m == nil {
			return
		}
		delete(m, name)
		if len(m) == 0 {
			delete(st.slices, nn)
		}
	} else {
		if m == nil {
			m = make(map[string]sliceEndpoints)
			st.slices[nn] = m
		}
		m[name] = eps
	}
	if e := st.services[nn]; e != nil {
		s.pushEndpoints(nn, e, trigger)
		s.healthChanged(nn, e)
	}
}

// pushEndpoints gives the sink each port's merged endpoints where they
// changed.
func (s *Source) pushEndpoints(nn types.NamespacedName, e *serviceEntry, trigger time.Time) {
	m := s.state.slices[nn]
	all := make([]sliceEndpoints, 0, len(m))
	for _, name := range sortedSliceNames(m) {
		all = append(all, m[name])
	}
	for _, p := range e.ports {
		eps := mergeEndpoints(all, portID{name: p.name, protocol: p.protocol})
		key := p.svc.Key
		prev, had := e.sent[key]
		if had && slices.Equal(prev, eps) || !had && len(eps) == 0 {
			continue
		}
		if ts, ok := s.sink.(triggeredSink); ok {
			_ = ts.SetEndpointsTriggered(key, eps, trigger)
		} else {
			_ = s.sink.SetEndpoints(key, eps)
		}
		if len(eps) == 0 {
			delete(e.sent, key)
		} else {
			e.sent[key] = eps
		}
	}
}

// localReady counts the distinct addresses of service e's ready
// endpoints on this node, over all its ports: what its health check node
// port reports.
func (st *state) localReady(e *serviceEntry) int {
	seen := make(map[netip.Addr]bool)
	for _, eps := range e.sent {
		for _, ep := range eps {
			if ep.Ready && ep.NodeName == st.node && st.node != "" {
				seen[ep.Addr.Addr()] = true
			}
		}
	}
	return len(seen)
}
