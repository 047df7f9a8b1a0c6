package kube

import "k8s.io/apimachinery/pkg/types"

// ServiceHealth serves the health check node ports of
// externalTrafficPolicy=Local services (proxyd/health.ServiceServers
// implements it). The source calls it with its lock held; it must not call
// back into the source.
type ServiceHealth interface {
	// SetService starts (or moves) the health check server of service
	// nn on port, with localEndpoints ready endpoints on this node; a
	// port of zero stops it.
	SetService(nn types.NamespacedName, port uint16, localEndpoints int)
}

// healthChanged tells Options.Health the state of service nn (e nil: the
// service is gone).
func (s *Source) healthChanged(nn types.NamespacedName, e *serviceEntry) {
	h := s.opts.Health
	if h == nil {
		return
	}
	if e == nil || e.healthCheckNodePort == 0 {
		h.SetService(nn, 0, 0)
		return
	}
	h.SetService(nn, e.healthCheckNodePort, s.state.localReady(e))
}
