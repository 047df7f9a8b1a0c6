// Package lb is lbkit's backend-agnostic model of L4 services and the engine
// that drives a datapath with it.
//
// A user (or a source such as a services file or Kubernetes) tells an Engine
// what Services exist and which Endpoints back them. The Engine validates each
// change, selects the endpoints every frontend should use (kube-proxy
// semantics: ready endpoints, terminating fallback, traffic policies), and hands
// the result to a Datapath as an immutable Snapshot together with the set of
// services that changed since the last successful sync.
//
// The package imports no kernel, netlink or Kubernetes code; datapaths live in
// backends/ and depend on this package, never the other way round.
package lb

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// ServiceKey names a service uniquely: "namespace/name/port-name" for
// Kubernetes services, or any plain name for standalone use.
type ServiceKey string

// Protocol is an L4 protocol.
type Protocol uint8

// Protocols a frontend can carry.
const (
	TCP Protocol = iota + 1
	UDP
	SCTP
)

// String returns the protocol's lower-case name ("tcp", "udp", "sctp").
func (p Protocol) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	case SCTP:
		return "sctp"
	}
	return fmt.Sprintf("protocol(%d)", uint8(p))
}

// ParseProtocol accepts "tcp", "udp" or "sctp" in any case.
func ParseProtocol(s string) (Protocol, error) {
	switch strings.ToLower(s) {
	case "tcp":
		return TCP, nil
	case "udp":
		return UDP, nil
	case "sctp":
		return SCTP, nil
	}
	return 0, fmt.Errorf("unknown protocol %q (want tcp, udp or sctp)", s)
}

// FrontendKind says how a frontend is exposed.
type FrontendKind uint8

// Frontend kinds, as in Kubernetes.
const (
	ClusterIP FrontendKind = iota + 1
	NodePort
	ExternalIP
	LoadBalancer
)

// String returns the kind's Kubernetes-style name.
func (k FrontendKind) String() string {
	switch k {
	case ClusterIP:
		return "ClusterIP"
	case NodePort:
		return "NodePort"
	case ExternalIP:
		return "ExternalIP"
	case LoadBalancer:
		return "LoadBalancer"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ParseFrontendKind accepts the names String returns, in any case.
func ParseFrontendKind(s string) (FrontendKind, error) {
	for _, k := range []FrontendKind{ClusterIP, NodePort, ExternalIP, LoadBalancer} {
		if strings.EqualFold(s, k.String()) {
			return k, nil
		}
	}
	return 0, fmt.Errorf("unknown frontend kind %q (want ClusterIP, NodePort, ExternalIP or LoadBalancer)", s)
}

// External reports whether traffic to this kind of frontend comes from outside
// the cluster, so that the external traffic policy applies to it.
func (k FrontendKind) External() bool { return k != ClusterIP }

// Frontend is one address a service is reached at.
type Frontend struct {
	// Addr is the virtual IP. For a NodePort frontend an unspecified address
	// (0.0.0.0 or ::) means every node address the datapath serves.
	Addr     netip.Addr   `json:"ip"`
	Port     uint16       `json:"port"`
	Protocol Protocol     `json:"protocol"`
	Kind     FrontendKind `json:"kind"`
}

// String formats the frontend as "ADDR:PORT/proto".
func (f Frontend) String() string {
	return netip.AddrPortFrom(f.Addr, f.Port).String() + "/" + f.Protocol.String()
}

// FrontendID identifies a frontend independently of its kind: two services may
// never share one.
type FrontendID struct {
	Addr     netip.Addr
	Port     uint16
	Protocol Protocol
}

// ID returns the frontend's identity.
func (f Frontend) ID() FrontendID { return FrontendID{f.Addr, f.Port, f.Protocol} }

// String formats the id as "ADDR:PORT/proto".
func (id FrontendID) String() string {
	return Frontend{Addr: id.Addr, Port: id.Port, Protocol: id.Protocol}.String()
}

// Scheduler is the endpoint selection algorithm of a service.
type Scheduler string

// Schedulers known to lbkit; each datapath declares which it supports.
const (
	Random Scheduler = "random" // weighted random; the default
	RR     Scheduler = "rr"     // round robin, exact rotation, weights ignored
	WRR    Scheduler = "wrr"    // weighted round robin
	LC     Scheduler = "lc"     // least connections
	WLC    Scheduler = "wlc"    // weighted least connections
	SH     Scheduler = "sh"     // source hashing: a client IP sticks to a backend
	DH     Scheduler = "dh"     // destination hashing
	SED    Scheduler = "sed"    // shortest expected delay
	NQ     Scheduler = "nq"     // never queue
	Maglev Scheduler = "maglev" // Maglev consistent hashing of the flow
)

// Schedulers returns every scheduler lbkit knows, in a stable order, in a
// new slice the caller may keep.
func Schedulers() []Scheduler {
	return []Scheduler{Random, RR, WRR, LC, WLC, SH, DH, SED, NQ, Maglev}
}

// AffinityType is the session affinity mode of a service.
type AffinityType uint8

// Session affinity modes.
const (
	AffinityNone AffinityType = iota
	AffinityClientIP
)

// Affinity bounds for ClientIP session affinity, as in Kubernetes.
const (
	DefaultAffinityTimeout = 10800 * time.Second
	MaxAffinityTimeout     = 86400 * time.Second
)

// SessionAffinity makes all connections of a client IP go to the same
// backend for Timeout after its last connection.
type SessionAffinity struct {
	Type AffinityType
	// Timeout applies to AffinityClientIP; zero means DefaultAffinityTimeout.
	Timeout time.Duration
}

// TrafficPolicy says whether a frontend may use endpoints on other nodes.
type TrafficPolicy uint8

// Traffic policies. The zero value is Cluster.
const (
	PolicyCluster TrafficPolicy = iota
	PolicyLocal
)

// String returns "Cluster" or "Local".
func (p TrafficPolicy) String() string {
	if p == PolicyLocal {
		return "Local"
	}
	return "Cluster"
}

// Service is one load-balanced service: the frontends it is reached at and how
// it picks an endpoint. Its endpoints are set separately (Engine.SetEndpoints),
// as Kubernetes keeps Services and EndpointSlices apart.
type Service struct {
	Key       ServiceKey
	Frontends []Frontend
	// Scheduler defaults to Random when empty.
	Scheduler Scheduler
	Affinity  SessionAffinity
	// ExternalPolicy applies to NodePort, ExternalIP and LoadBalancer
	// frontends, InternalPolicy to ClusterIP ones.
	ExternalPolicy TrafficPolicy
	InternalPolicy TrafficPolicy
}

// EffectiveScheduler returns the scheduler with the default applied.
func (s *Service) EffectiveScheduler() Scheduler {
	if s.Scheduler == "" {
		return Random
	}
	return s.Scheduler
}

// AffinityTimeout returns the ClientIP affinity timeout with the default
// applied, or zero when the service has no affinity.
func (s *Service) AffinityTimeout() time.Duration {
	if s.Affinity.Type != AffinityClientIP {
		return 0
	}
	if s.Affinity.Timeout == 0 {
		return DefaultAffinityTimeout
	}
	return s.Affinity.Timeout
}

// Clone returns a deep copy.
func (s *Service) Clone() *Service {
	c := *s
	c.Frontends = append([]Frontend(nil), s.Frontends...)
	return &c
}

// Equal reports whether two services are the same in every field.
func (s *Service) Equal(o *Service) bool {
	if s.Key != o.Key || s.EffectiveScheduler() != o.EffectiveScheduler() ||
		s.Affinity.Type != o.Affinity.Type || s.AffinityTimeout() != o.AffinityTimeout() ||
		s.ExternalPolicy != o.ExternalPolicy || s.InternalPolicy != o.InternalPolicy ||
		len(s.Frontends) != len(o.Frontends) {
		return false
	}
	for i := range s.Frontends {
		if s.Frontends[i] != o.Frontends[i] {
			return false
		}
	}
	return true
}

// Weight bounds for endpoints. Zero in Endpoint.Weight means DefaultWeight.
const (
	DefaultWeight = 1
	MaxWeight     = 65535
)

// Endpoint is one backend of a service, with its Kubernetes conditions.
type Endpoint struct {
	Addr netip.AddrPort
	// Ready, Serving and Terminating follow EndpointSlice conditions: a ready
	// endpoint takes new traffic; a serving, terminating one only when no
	// endpoint is ready.
	Ready       bool
	Serving     bool
	Terminating bool
	// Weight is relative to the other endpoints; zero means DefaultWeight.
	Weight   uint32
	NodeName string
	Zone     string
	// Hints steer Cluster-policy traffic to endpoints for this node or
	// zone (EndpointSlice topology hints); see Select.
	Hints Hints
}

// EffectiveWeight returns the weight with the default applied.
func (e Endpoint) EffectiveWeight() uint32 {
	if e.Weight == 0 {
		return DefaultWeight
	}
	return e.Weight
}

// ReadyEndpoint is a convenience for a ready, serving endpoint of weight 1.
func ReadyEndpoint(addr netip.AddrPort) Endpoint {
	return Endpoint{Addr: addr, Ready: true, Serving: true}
}

// ParseFrontendID parses "IP:PORT[/PROTO]" ("198.18.100.1:80/tcp",
// "[2001:2::1]:53/udp"); the protocol defaults to tcp.
func ParseFrontendID(s string) (FrontendID, error) {
	addr, proto, hasProto := strings.Cut(s, "/")
	p := TCP
	if hasProto {
		var err error
		if p, err = ParseProtocol(proto); err != nil {
			return FrontendID{}, fmt.Errorf("frontend %q: %w", s, err)
		}
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return FrontendID{}, fmt.Errorf("frontend %q: want IP:PORT[/tcp|udp|sctp]: %w", s, err)
	}
	if ap.Port() == 0 {
		return FrontendID{}, fmt.Errorf("frontend %q: port 0", s)
	}
	return FrontendID{Addr: ap.Addr().Unmap(), Port: ap.Port(), Protocol: p}, nil
}

// MarshalText encodes the protocol by name, for JSON and YAML.
func (p Protocol) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText accepts what MarshalText produces.
func (p *Protocol) UnmarshalText(b []byte) error {
	v, err := ParseProtocol(string(b))
	*p = v
	return err
}

// MarshalText encodes the kind by name, for JSON and YAML.
func (k FrontendKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText accepts what MarshalText produces.
func (k *FrontendKind) UnmarshalText(b []byte) error {
	v, err := ParseFrontendKind(string(b))
	*k = v
	return err
}
