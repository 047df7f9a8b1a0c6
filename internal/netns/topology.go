package netns

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"testing"
)

// A Topology is a client, a node and backends in their own namespaces (see
// the package documentation for the drawing).
type Topology struct {
	// Client sends the test traffic; it routes the test ranges to the node.
	Client *Host
	// Node is where the datapath runs; IPv4/IPv6 forwarding on, rp_filter off.
	Node *Host
	// Backends serve identity on Options.TCPPorts and UDPPorts.
	Backends []*Host
	// VIPRange4 (198.18.100.0/24) is routed by the client to the node.
	VIPRange4 netip.Prefix
	// VIPRange6 (2001:2:0:100::/64) is routed by the client to the node.
	VIPRange6 netip.Prefix
	// BridgeIPv4 is the node's address on the backend bridge (198.18.2.1),
	// the backends' gateway.
	BridgeIPv4 netip.Addr
	// BridgeIPv6 is the node's IPv6 address on the bridge (2001:2:0:2::1);
	// zero unless Options.IPv6.
	BridgeIPv6 netip.Addr
	// Options are the options the topology was built with, defaults filled.
	Options Options
}

// Hosts returns the client, the node and the backends, in that order.
func (tp *Topology) Hosts() []*Host {
	return append([]*Host{tp.Client, tp.Node}, tp.Backends...)
}

// New builds a topology for the test. It calls Require (skipping the test
// where namespaces cannot be built) and removes everything in t.Cleanup,
// even when the test fails: the backend servers first, then the namespaces.
// Any setup failure fails the test.
func New(t testing.TB, opts Options) *Topology {
	t.Helper()
	Require(t)
	o, err := opts.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	id, err := randomID()
	if err != nil {
		t.Fatal(err)
	}
	b := &builder{opts: o, id: id}
	// Registered before anything exists, so it runs last and even when the
	// build fails half-way.
	t.Cleanup(func() {
		for _, err := range b.teardown() {
			t.Error(err)
		}
	})
	tp, err := b.build()
	if err != nil {
		t.Fatalf("netns: build topology lbkt-%s: %v", id, err)
	}
	for _, h := range tp.Backends {
		serveBackend(t, h, o)
	}
	if err := probe(tp); err != nil {
		t.Fatalf("netns: topology lbkt-%s built, but %v", id, err)
	}
	return tp
}

// serveBackend starts the identity servers of one backend.
func serveBackend(t testing.TB, h *Host, o Options) {
	t.Helper()
	addrs := []netip.Addr{h.IPv4}
	if o.IPv6 {
		addrs = append(addrs, h.IPv6)
	}
	for _, a := range addrs {
		for _, p := range o.TCPPorts {
			ln, err := h.Listen("tcp", netip.AddrPortFrom(a, p).String())
			if err != nil {
				t.Fatal(err)
			}
			ServeTCP(t, h.Name, ln)
		}
		for _, p := range o.UDPPorts {
			pc, err := h.ListenPacket("udp", netip.AddrPortFrom(a, p).String())
			if err != nil {
				t.Fatal(err)
			}
			ServeUDP(t, h.Name, pc)
		}
	}
}

// probe checks that the client reaches every backend directly, once per
// address family, so that a broken topology fails here with a clear message
// rather than deep inside a datapath test. TCP probes end with a reset and
// leave no TIME_WAIT behind.
func probe(tp *Topology) error {
	network, port := "tcp", uint16(0)
	switch {
	case len(tp.Options.TCPPorts) > 0:
		port = tp.Options.TCPPorts[0]
	case len(tp.Options.UDPPorts) > 0:
		network, port = "udp", tp.Options.UDPPorts[0]
	default:
		return nil // nothing listens
	}
	for _, b := range tp.Backends {
		for _, v6 := range []bool{false, true} {
			if v6 && !tp.Options.IPv6 {
				continue
			}
			dst := netip.AddrPortFrom(b.Addr(v6), port)
			err := tp.Client.Do(func() error {
				r, err := request(context.Background(), nil, network, dst.String(), true)
				if err != nil {
					return err
				}
				if r.Backend != b.Name {
					return fmt.Errorf("%s answered as %q", dst, r.Backend)
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("the client cannot reach %s directly: %w", b.Name, err)
			}
		}
	}
	return nil
}

// builder creates the namespaces and links of one topology and remembers
// what it created so that teardown removes exactly that.
type builder struct {
	opts    Options
	id      string
	created []string // namespace names, in creation order
}

// teardown deletes every namespace the builder created and returns the
// failures.
func (b *builder) teardown() []error {
	var errs []error
	for i := len(b.created) - 1; i >= 0; i-- {
		name := b.created[i]
		if err := runIP("netns", "del", name); err != nil {
			if _, serr := os.Stat(nsPath(name)); os.IsNotExist(serr) {
				continue // already gone
			}
			errs = append(errs, fmt.Errorf("netns: cleanup: %w", err))
		}
	}
	b.created = nil
	return errs
}

// newHost creates the namespace of one host and applies the settings every
// host gets: DAD off (IPv6), rp_filter off, lo up.
func (b *builder) newHost(role string) (*Host, error) {
	name := NamePrefix + b.id + "-" + role
	if err := runIP("netns", "add", name); err != nil {
		return nil, err
	}
	b.created = append(b.created, name)
	h := &Host{Name: role, NS: name, Path: nsPath(name), Link: HostLink}
	settings := []sysctl{
		{key: "net/ipv4/conf/all/rp_filter", value: "0"},
		{key: "net/ipv4/conf/default/rp_filter", value: "0"},
	}
	if b.opts.IPv6 {
		settings = append(settings,
			sysctl{key: "net/ipv6/conf/all/disable_ipv6", value: "0"},
			sysctl{key: "net/ipv6/conf/default/disable_ipv6", value: "0"},
			sysctl{key: "net/ipv6/conf/all/accept_dad", value: "0"},
			sysctl{key: "net/ipv6/conf/default/accept_dad", value: "0"},
		)
	}
	if err := writeSysctls(h.Path, settings); err != nil {
		return nil, fmt.Errorf("%s: %w", role, err)
	}
	if err := b.ip(h, "link", "set", "lo", "up"); err != nil {
		return nil, err
	}
	return h, nil
}

// ip runs `ip -n <ns of h> args...`.
func (b *builder) ip(h *Host, args ...string) error {
	return runIP(append([]string{"-n", h.NS}, args...)...)
}

// addAddr assigns a (with the length of prefix p) to dev in h, without DAD
// for IPv6.
func (b *builder) addAddr(h *Host, dev string, a netip.Addr, p netip.Prefix) error {
	args := []string{"addr", "add", withLen(a, p), "dev", dev}
	if a.Is6() {
		args = append(args, "nodad")
	}
	return b.ip(h, args...)
}

// addRoute routes dst via gw out of dev in h.
func (b *builder) addRoute(h *Host, dst netip.Prefix, gw netip.Addr, dev string) error {
	return b.ip(h, "route", "add", dst.String(), "via", gw.String(), "dev", dev)
}
