package netns

import (
	"fmt"
	"slices"
)

// Options shape a Topology. The zero value gives three backends serving TCP
// and UDP on port 8080, IPv4 only.
type Options struct {
	// Backends is the number of backend hosts; 0 means 3. At most MaxBackends.
	Backends int
	// IPv6 also assigns IPv6 addresses (from 2001:2::/48), with duplicate
	// address detection off so that they are usable at once.
	IPv6 bool
	// TCPPorts are the ports every backend serves TCP on. nil means {8080};
	// an empty non-nil slice means none.
	TCPPorts []uint16
	// UDPPorts are the ports every backend serves UDP on. nil means {8080};
	// an empty non-nil slice means none.
	UDPPorts []uint16
	// LocalVIPs adds `local` routes for VIPRange4 (and VIPRange6 with IPv6)
	// on the node, so that a process there (a userspace proxy) can bind any
	// VIP and receives the traffic to it. IPv6 bind() ignores local routes,
	// so with IPv6 it also sets net.ipv6.ip_nonlocal_bind=1 on the node.
	LocalVIPs bool
}

// MaxBackends is the largest Options.Backends: backend i gets 198.18.2.(10+i).
const MaxBackends = 245

// DefaultPort is the port backends serve on when Options name none.
const DefaultPort uint16 = 8080

// withDefaults fills defaults in a copy of o and checks it.
func (o Options) withDefaults() (Options, error) {
	if o.Backends < 0 || o.Backends > MaxBackends {
		return o, fmt.Errorf("netns: Options.Backends is %d, want 0 (default 3) to %d", o.Backends, MaxBackends)
	}
	if o.Backends == 0 {
		o.Backends = 3
	}
	var err error
	if o.TCPPorts, err = ports("TCPPorts", o.TCPPorts); err != nil {
		return o, err
	}
	if o.UDPPorts, err = ports("UDPPorts", o.UDPPorts); err != nil {
		return o, err
	}
	return o, nil
}

// ports applies the default to a port list and rejects port 0 and repeats.
func ports(field string, in []uint16) ([]uint16, error) {
	if in == nil {
		return []uint16{DefaultPort}, nil
	}
	out := slices.Clone(in)
	for i, p := range out {
		if p == 0 {
			return nil, fmt.Errorf("netns: Options.%s[%d] is 0, want a port from 1 to 65535", field, i)
		}
		if slices.Contains(out[:i], p) {
			return nil, fmt.Errorf("netns: Options.%s lists port %d twice", field, p)
		}
	}
	return out, nil
}
