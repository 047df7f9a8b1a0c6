package kube

import (
	"net/netip"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/lb"
)

// Annotations lbkit reads on a Service: what kube-proxy cannot do, opt-in.
const (
	// AnnotationScheduler picks the service's scheduler (lb.Scheduler:
	// random, rr, wrr, lc, wlc, sh, dh, sed, nq, maglev) instead of the
	// datapath's default; a scheduler the datapath does not declare leaves
	// the service unprogrammed with an Event saying so.
	AnnotationScheduler = "lbkit.io/scheduler"
)

// Labels and annotations kube-proxy's semantics depend on.
const (
	// LabelServiceProxyName marks a service for a proxy other than the
	// default one; kube-proxy (and proxyd without --service-proxy-name)
	// ignores such services.
	LabelServiceProxyName = "service.kubernetes.io/service-proxy-name"
	// LabelHeadless marks the EndpointSlices of headless services.
	LabelHeadless = "service.kubernetes.io/headless"
	// LabelServiceName names the Service an EndpointSlice belongs to.
	LabelServiceName = "kubernetes.io/service-name"
	// AnnotationTriggerTime is when the change an EndpointSlice reflects
	// happened (kube-proxy's network programming latency starts there).
	AnnotationTriggerTime = "endpoints.kubernetes.io/last-change-trigger-time"
	// LabelZone is the Node label naming its zone.
	LabelZone = "topology.kubernetes.io/zone"
)

// servicePort is one translated port of a Service.
type servicePort struct {
	svc *lb.Service
	// name and protocol match the port to EndpointSlice ports.
	name     string
	protocol corev1.Protocol
}

// serviceKey is the lb key of one port: "namespace/name/port-name", or
// "namespace/name" for an unnamed port (a Service's only port may be
// unnamed).
func serviceKey(namespace, name, port string) lb.ServiceKey {
	if port == "" {
		return lb.ServiceKey(namespace + "/" + name)
	}
	return lb.ServiceKey(namespace + "/" + name + "/" + port)
}

// skipService reports whether kube-proxy ignores svc: headless services
// and ExternalName services have no cluster IP to proxy.
func skipService(svc *corev1.Service) bool {
	return svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone ||
		svc.Spec.Type == corev1.ServiceTypeExternalName
}

// translateService turns a Service into one lb.Service per port. It keeps
// what the model can carry and leaves validation to the engine, which
// reports a bad port or address as the service's status; an address that
// does not parse is dropped here, as kube-proxy drops it.
func translateService(svc *corev1.Service) []servicePort {
	if skipService(svc) {
		return nil
	}
	clusterIPs := parseIPs(svc.Spec.ClusterIPs)
	if len(clusterIPs) == 0 {
		clusterIPs = parseIPs([]string{svc.Spec.ClusterIP})
	}
	externalIPs := parseIPs(svc.Spec.ExternalIPs)
	var ingressIPs []netip.Addr
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		for _, ing := range svc.Status.LoadBalancer.Ingress {
			// An ingress in Proxy mode is reached through the cloud's
			// proxy, which sends to the node, not to the VIP.
			if ing.IPMode != nil && *ing.IPMode == corev1.LoadBalancerIPModeProxy {
				continue
			}
			ingressIPs = append(ingressIPs, parseIPs([]string{ing.IP})...)
		}
	}
	externallyAccessible := svc.Spec.Type == corev1.ServiceTypeNodePort ||
		svc.Spec.Type == corev1.ServiceTypeLoadBalancer || len(externalIPs) > 0

	base := lb.Service{
		Scheduler: lb.Scheduler(strings.TrimSpace(svc.Annotations[AnnotationScheduler])),
	}
	if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		base.Affinity = lb.SessionAffinity{Type: lb.AffinityClientIP}
		if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
			base.Affinity.Timeout = time.Duration(*c.ClientIP.TimeoutSeconds) * time.Second
		}
	}
	if externallyAccessible && svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
		base.ExternalPolicy = lb.PolicyLocal
	}
	if p := svc.Spec.InternalTrafficPolicy; p != nil && *p == corev1.ServiceInternalTrafficPolicyLocal {
		base.InternalPolicy = lb.PolicyLocal
	}

	out := make([]servicePort, 0, len(svc.Spec.Ports))
	for _, p := range svc.Spec.Ports {
		proto, ok := protocolOf(p.Protocol)
		if !ok {
			continue // the API server admits only TCP, UDP and SCTP
		}
		s := base
		s.Key = serviceKey(svc.Namespace, svc.Name, p.Name)
		port := uint16(p.Port)
		add := func(kind lb.FrontendKind, addrs []netip.Addr, port uint16) {
			for _, a := range addrs {
				s.Frontends = append(s.Frontends, lb.Frontend{Addr: a, Port: port, Protocol: proto, Kind: kind})
			}
		}
		add(lb.ClusterIP, clusterIPs, port)
		if p.NodePort != 0 {
			add(lb.NodePort, nodePortAddrs(clusterIPs), uint16(p.NodePort))
		}
		add(lb.ExternalIP, externalIPs, port)
		add(lb.LoadBalancer, ingressIPs, port)
		out = append(out, servicePort{svc: &s, name: p.Name, protocol: p.Protocol})
	}
	return out
}

// nodePortAddrs returns the unspecified address of each family the
// service has a cluster IP of: its NodePort frontends.
func nodePortAddrs(clusterIPs []netip.Addr) []netip.Addr {
	var out []netip.Addr
	has4, has6 := false, false
	for _, a := range clusterIPs {
		if a.Is4() && !has4 {
			has4 = true
			out = append(out, netip.IPv4Unspecified())
		}
		if a.Is6() && !has6 {
			has6 = true
			out = append(out, netip.IPv6Unspecified())
		}
	}
	return out
}

// parseIPs parses the addresses in ss, dropping what does not parse and
// duplicates, as kube-proxy ignores invalid IPs.
func parseIPs(ss []string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil || a.Zone() != "" {
			continue
		}
		a = a.Unmap()
		dup := false
		for _, b := range out {
			dup = dup || a == b
		}
		if !dup {
			out = append(out, a)
		}
	}
	return out
}

func protocolOf(p corev1.Protocol) (lb.Protocol, bool) {
	switch p {
	case corev1.ProtocolTCP, "":
		return lb.TCP, true
	case corev1.ProtocolUDP:
		return lb.UDP, true
	case corev1.ProtocolSCTP:
		return lb.SCTP, true
	}
	return 0, false
}
