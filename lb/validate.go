package lb

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// maxKeyLen bounds a service key (namespace/name/port fits comfortably).
const maxKeyLen = 512

// Validate checks a service on its own (not against other services) and
// returns every problem it finds, each a *ValidationError, joined.
func (s *Service) Validate() error {
	var errs []error
	bad := func(field, value, reason string) {
		errs = append(errs, &ValidationError{Service: s.Key, Field: field, Value: value, Reason: reason})
	}
	switch {
	case s.Key == "":
		bad("key", `""`, "must not be empty")
	case len(s.Key) > maxKeyLen:
		bad("key", fmt.Sprintf("(%d bytes)", len(s.Key)), fmt.Sprintf("longer than %d bytes", maxKeyLen))
	case strings.ContainsFunc(string(s.Key), func(r rune) bool { return r <= ' ' || r == 0x7f }):
		bad("key", fmt.Sprintf("%q", s.Key), "must not contain spaces or control characters")
	}
	if len(s.Frontends) == 0 {
		bad("frontends", "[]", "a service needs at least one frontend")
	}
	seen := make(map[FrontendID]int, len(s.Frontends))
	for i, fe := range s.Frontends {
		field := fmt.Sprintf("frontends[%d]", i)
		if r := checkAddr(fe.Addr, fe.Kind == NodePort); r != "" {
			bad(field+".ip", addrString(fe.Addr), r)
		}
		if fe.Port == 0 {
			bad(field+".port", "0", "must be 1-65535")
		}
		if fe.Protocol < TCP || fe.Protocol > SCTP {
			bad(field+".protocol", fe.Protocol.String(), "must be tcp, udp or sctp")
		}
		if fe.Kind < ClusterIP || fe.Kind > LoadBalancer {
			bad(field+".kind", fe.Kind.String(), "must be ClusterIP, NodePort, ExternalIP or LoadBalancer")
		}
		if j, dup := seen[fe.ID()]; dup {
			bad(field, fe.String(), fmt.Sprintf("duplicates frontends[%d]", j))
		}
		seen[fe.ID()] = i
	}
	if s.Scheduler != "" && !slices.Contains(Schedulers(), s.Scheduler) {
		bad("scheduler", fmt.Sprintf("%q", s.Scheduler), fmt.Sprintf("unknown scheduler (known: %s)", schedulerList()))
	}
	switch s.Affinity.Type {
	case AffinityNone:
	case AffinityClientIP:
		if t := s.Affinity.Timeout; t != 0 && (t < time.Second || t > MaxAffinityTimeout) {
			bad("affinity.timeout", t.String(), fmt.Sprintf("must be between 1s and %s", MaxAffinityTimeout))
		}
	default:
		bad("affinity.type", fmt.Sprint(s.Affinity.Type), "must be None or ClientIP")
	}
	if s.ExternalPolicy > PolicyLocal {
		bad("externalTrafficPolicy", fmt.Sprint(s.ExternalPolicy), "must be Cluster or Local")
	}
	if s.InternalPolicy > PolicyLocal {
		bad("internalTrafficPolicy", fmt.Sprint(s.InternalPolicy), "must be Cluster or Local")
	}
	return errors.Join(errs...)
}

// ValidateEndpoints checks the endpoints of the service key. When svc is not
// nil, every endpoint must also share an IP family with one of its frontends.
func ValidateEndpoints(key ServiceKey, svc *Service, eps []Endpoint) error {
	var errs []error
	// bad reports endpoints[i] plus suffix; the field name is only
	// formatted for an error (this runs on every endpoint change).
	bad := func(i int, suffix, value, reason string) {
		errs = append(errs, &ValidationError{Service: key, Field: fmt.Sprintf("endpoints[%d]%s", i, suffix), Value: value, Reason: reason})
	}
	var has4, has6 bool
	if svc != nil {
		for _, fe := range svc.Frontends {
			has4 = has4 || fe.Addr.Is4()
			has6 = has6 || fe.Addr.Is6()
		}
	}
	seen := make(map[netip.AddrPort]int, len(eps))
	for i, ep := range eps {
		ip := ep.Addr.Addr()
		if r := checkAddr(ip, false); r != "" {
			bad(i, ".ip", addrString(ip), r)
			continue
		}
		if ep.Addr.Port() == 0 {
			bad(i, ".port", "0", "must be 1-65535")
		}
		if ep.Weight > MaxWeight {
			bad(i, ".weight", fmt.Sprint(ep.Weight), fmt.Sprintf("must be 1-%d (0 means %d)", MaxWeight, DefaultWeight))
		}
		if svc != nil && ((ip.Is4() && !has4) || (ip.Is6() && !has6)) {
			bad(i, ".ip", ip.String(), "mixed families: the service has no frontend of this IP family")
		}
		if j, dup := seen[ep.Addr]; dup {
			bad(i, "", ep.Addr.String(), fmt.Sprintf("duplicates endpoints[%d]", j))
		}
		seen[ep.Addr] = i
	}
	return errors.Join(errs...)
}

// checkAddr returns why ip cannot be a frontend or endpoint address, or "".
func checkAddr(ip netip.Addr, unspecifiedOK bool) string {
	switch {
	case !ip.IsValid():
		return "not an IP address"
	case ip.Is4In6():
		return "IPv4-mapped IPv6 address: write it as IPv4"
	case ip.Zone() != "":
		return "zoned addresses are not supported"
	case ip.IsUnspecified() && !unspecifiedOK:
		return "unspecified address (only a NodePort frontend may use it, meaning every node address)"
	case ip.IsMulticast():
		return "multicast address"
	}
	return ""
}

func addrString(ip netip.Addr) string {
	if !ip.IsValid() {
		return `""`
	}
	return ip.String()
}

func schedulerList() string {
	all := Schedulers()
	names := make([]string, len(all))
	for i, s := range all {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// CheckCapabilities returns an *UnsupportedError for the first thing the
// service (with its endpoints) needs that caps lacks. The engine refuses
// such services before they reach a datapath; a datapath can use it to
// guard callers that hand it snapshots of their own.
func CheckCapabilities(caps Capabilities, datapath string, svc *Service, eps []Endpoint) error {
	if err := checkServiceCaps(caps, datapath, svc); err != nil {
		return err
	}
	return checkEndpointCaps(caps, datapath, svc.Key, eps)
}

// checkServiceCaps checks the service's own fields against caps.
func checkServiceCaps(caps Capabilities, datapath string, svc *Service) error {
	unsupported := func(field, value string) error {
		return &UnsupportedError{Service: svc.Key, Field: field, Value: value, Datapath: datapath}
	}
	if s := svc.EffectiveScheduler(); !caps.SupportsScheduler(s) {
		return unsupported("scheduler", string(s))
	}
	if svc.Affinity.Type == AffinityClientIP && !caps.Affinity {
		return unsupported("affinity", "ClientIP")
	}
	if (svc.ExternalPolicy == PolicyLocal || svc.InternalPolicy == PolicyLocal) && !caps.LocalPolicy {
		return unsupported("trafficPolicy", "Local")
	}
	for i, fe := range svc.Frontends {
		if !caps.SupportsProtocol(fe.Protocol) {
			return unsupported(fmt.Sprintf("frontends[%d].protocol", i), fe.Protocol.String())
		}
		if !caps.SupportsKind(fe.Kind) {
			return unsupported(fmt.Sprintf("frontends[%d].kind", i), fe.Kind.String())
		}
		if fe.Addr.Is6() && !caps.IPv6 {
			return unsupported(fmt.Sprintf("frontends[%d].ip", i), "IPv6 "+fe.Addr.String())
		}
	}
	return nil
}

// checkEndpointCaps checks the endpoints of key against caps.
func checkEndpointCaps(caps Capabilities, datapath string, key ServiceKey, eps []Endpoint) error {
	if caps.Weights {
		return nil
	}
	for i, ep := range eps {
		if ep.EffectiveWeight() != eps[0].EffectiveWeight() {
			return &UnsupportedError{Service: key, Field: fmt.Sprintf("endpoints[%d].weight", i),
				Value: fmt.Sprintf("%d (unequal weights)", ep.EffectiveWeight()), Datapath: datapath}
		}
	}
	return nil
}
