package kube

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/lb"
)

// portID matches a Service port to EndpointSlice ports, as kube-proxy
// does: by name and protocol.
type portID struct {
	name     string
	protocol corev1.Protocol
}

// sliceEndpoints is what one EndpointSlice contributes: for each of its
// ports, the endpoints on that port.
type sliceEndpoints map[portID][]lb.Endpoint

// translateSlice turns an EndpointSlice into endpoints per port. FQDN
// slices carry no addresses to proxy and give nothing; an endpoint uses
// its first address, as in kube-proxy.
func translateSlice(s *discoveryv1.EndpointSlice) sliceEndpoints {
	if s.AddressType != discoveryv1.AddressTypeIPv4 && s.AddressType != discoveryv1.AddressTypeIPv6 {
		return nil
	}
	out := make(sliceEndpoints, len(s.Ports))
	for _, p := range s.Ports {
		if p.Port == nil || *p.Port <= 0 || *p.Port > 65535 {
			continue
		}
		id := portID{protocol: corev1.ProtocolTCP}
		if p.Name != nil {
			id.name = *p.Name
		}
		if p.Protocol != nil {
			id.protocol = *p.Protocol
		}
		eps := make([]lb.Endpoint, 0, len(s.Endpoints))
		for _, e := range s.Endpoints {
			if len(e.Addresses) == 0 {
				continue
			}
			addr, err := netip.ParseAddr(e.Addresses[0])
			if err != nil {
				continue
			}
			eps = append(eps, endpointOf(e, netip.AddrPortFrom(addr.Unmap(), uint16(*p.Port))))
		}
		out[id] = append(out[id], eps...)
	}
	return out
}

// endpointOf fills an lb.Endpoint from the EndpointSlice conditions with
// kube-proxy's defaults: ready and serving when unset, not terminating.
func endpointOf(e discoveryv1.Endpoint, addr netip.AddrPort) lb.Endpoint {
	c := e.Conditions
	ep := lb.Endpoint{
		Addr:        addr,
		Ready:       c.Ready == nil || *c.Ready,
		Serving:     c.Serving == nil || *c.Serving,
		Terminating: c.Terminating != nil && *c.Terminating,
	}
	if e.NodeName != nil {
		ep.NodeName = *e.NodeName
	}
	if e.Zone != nil {
		ep.Zone = *e.Zone
	}
	if h := e.Hints; h != nil {
		zones := make([]string, 0, len(h.ForZones))
		for _, z := range h.ForZones {
			zones = append(zones, z.Name)
		}
		nodes := make([]string, 0, len(h.ForNodes))
		for _, n := range h.ForNodes {
			nodes = append(nodes, n.Name)
		}
		ep.Hints = lb.NewHints(zones, nodes)
	}
	return ep
}

// mergeEndpoints merges the endpoints of one port over every slice of a
// service (given in a stable order), de-duplicated by address: an
// endpoint listed twice is ready if either copy is (kube-proxy keeps the
// ready copy). The result is sorted by address.
func mergeEndpoints(slices_ []sliceEndpoints, id portID) []lb.Endpoint {
	var all []lb.Endpoint
	for _, s := range slices_ {
		all = append(all, s[id]...)
	}
	if len(all) == 0 {
		return nil
	}
	slices.SortStableFunc(all, func(a, b lb.Endpoint) int { return a.Addr.Compare(b.Addr) })
	out := all[:0]
	for _, ep := range all {
		if n := len(out); n > 0 && out[n-1].Addr == ep.Addr {
			if ep.Ready && !out[n-1].Ready {
				out[n-1] = ep
			}
			continue
		}
		out = append(out, ep)
	}
	return slices.Clip(out)
}

// triggerTime returns the slice's last-change-trigger-time annotation, or
// the zero time when it has none or it does not parse.
func triggerTime(s *discoveryv1.EndpointSlice) time.Time {
	v, ok := s.Annotations[AnnotationTriggerTime]
	if !ok {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}
	}
	return t
}

// sortedSliceNames returns the names of a service's slices in order, so
// merges are deterministic.
func sortedSliceNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.SortFunc(names, cmp.Compare)
	return names
}
