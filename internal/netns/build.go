package netns

import (
	"fmt"
	"net/netip"
)

// build creates the whole topology: namespaces, node settings, the bridge,
// the client link and one link per backend.
func (b *builder) build() (*Topology, error) {
	tp := &Topology{
		VIPRange4:  vipNet4,
		VIPRange6:  vipNet6,
		BridgeIPv4: host(bridgeNet4, nodeHost),
		Options:    b.opts,
	}
	if b.opts.IPv6 {
		tp.BridgeIPv6 = host(bridgeNet6, nodeHost)
	}
	var err error
	if tp.Client, err = b.newHost("client"); err != nil {
		return nil, err
	}
	if tp.Node, err = b.newHost("node"); err != nil {
		return nil, err
	}
	tp.Node.Link = NodeClientLink
	for i := range b.opts.Backends {
		h, err := b.newHost(fmt.Sprintf("backend%d", i))
		if err != nil {
			return nil, err
		}
		tp.Backends = append(tp.Backends, h)
	}
	if err := b.setupNode(tp); err != nil {
		return nil, err
	}
	if err := b.linkClient(tp); err != nil {
		return nil, err
	}
	for i, h := range tp.Backends {
		if err := b.linkBackend(tp, i, h); err != nil {
			return nil, err
		}
	}
	// Interfaces created before "default" changed, or by the kernel, may
	// still carry a strict rp_filter.
	for _, h := range tp.Hosts() {
		if err := disableRPFilter(h.Path); err != nil {
			return nil, fmt.Errorf("%s: %w", h.Name, err)
		}
	}
	return tp, nil
}

// setupNode turns on forwarding, creates the bridge and, if asked, the local
// routes for the VIP ranges.
func (b *builder) setupNode(tp *Topology) error {
	n := tp.Node
	err := writeSysctls(n.Path, []sysctl{
		{key: "net/ipv4/ip_forward", value: "1"},
		{key: "net/ipv6/conf/all/forwarding", value: "1", optional: !b.opts.IPv6},
		{key: "net/ipv6/conf/default/forwarding", value: "1", optional: !b.opts.IPv6},
	})
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if err := b.ip(n, "link", "add", "name", BridgeName, "type", "bridge", "stp_state", "0", "forward_delay", "0"); err != nil {
		return err
	}
	if err := b.ip(n, "link", "set", BridgeName, "up"); err != nil {
		return err
	}
	if err := b.addAddr(n, BridgeName, tp.BridgeIPv4, bridgeNet4); err != nil {
		return err
	}
	if b.opts.IPv6 {
		if err := b.addAddr(n, BridgeName, tp.BridgeIPv6, bridgeNet6); err != nil {
			return err
		}
	}
	if b.opts.LocalVIPs {
		if err := b.ip(n, "route", "add", "local", vipNet4.String(), "dev", "lo", "table", "local"); err != nil {
			return err
		}
		if b.opts.IPv6 {
			if err := b.ip(n, "-6", "route", "add", "local", vipNet6.String(), "dev", "lo", "table", "local"); err != nil {
				return err
			}
			// IPv6 bind() checks for an assigned address, not the route.
			if err := writeSysctls(n.Path, []sysctl{{key: "net/ipv6/ip_nonlocal_bind", value: "1"}}); err != nil {
				return fmt.Errorf("node: %w", err)
			}
		}
	}
	return nil
}

// linkClient connects client and node with a veth pair created inside the
// node's namespace, its peer moved straight into the client's.
func (b *builder) linkClient(tp *Topology) error {
	c, n := tp.Client, tp.Node
	if err := b.ip(n, "link", "add", "name", NodeClientLink, "type", "veth", "peer", "name", HostLink, "netns", c.NS); err != nil {
		return err
	}
	c.IPv4, n.IPv4 = host(clientNet4, clientHost), host(clientNet4, nodeHost)
	if b.opts.IPv6 {
		c.IPv6, n.IPv6 = host(clientNet6, clientHost), host(clientNet6, nodeHost)
	}
	if err := b.upWithAddrs(n, NodeClientLink, n.IPv4, n.IPv6, clientNet4, clientNet6); err != nil {
		return err
	}
	if err := b.upWithAddrs(c, HostLink, c.IPv4, c.IPv6, clientNet4, clientNet6); err != nil {
		return err
	}
	return b.routeTestNets(c, n.IPv4, n.IPv6)
}

// linkBackend connects backend i to the node's bridge.
func (b *builder) linkBackend(tp *Topology, i int, h *Host) error {
	n := tp.Node
	port := nodeBackendLink(i)
	if err := b.ip(n, "link", "add", "name", port, "type", "veth", "peer", "name", HostLink, "netns", h.NS); err != nil {
		return err
	}
	if err := b.ip(n, "link", "set", port, "master", BridgeName, "up"); err != nil {
		return err
	}
	// Hairpin mode, as CNI plugins set it on pod ports: with br_netfilter
	// a backend's packet to a VIP can be DNATed back to that same backend,
	// and the bridge must then send it out of the port it came in on.
	if err := b.ip(n, "link", "set", port, "type", "bridge_slave", "hairpin", "on"); err != nil {
		return err
	}
	h.IPv4 = host(bridgeNet4, firstBackendID+i)
	if b.opts.IPv6 {
		h.IPv6 = host(bridgeNet6, firstBackendID+i)
	}
	if err := b.upWithAddrs(h, HostLink, h.IPv4, h.IPv6, bridgeNet4, bridgeNet6); err != nil {
		return err
	}
	return b.routeTestNets(h, tp.BridgeIPv4, tp.BridgeIPv6)
}

// upWithAddrs sets dev up in h and assigns v4 (and v6 when valid).
func (b *builder) upWithAddrs(h *Host, dev string, v4, v6 netip.Addr, p4, p6 netip.Prefix) error {
	if err := b.ip(h, "link", "set", dev, "up"); err != nil {
		return err
	}
	if err := b.addAddr(h, dev, v4, p4); err != nil {
		return err
	}
	if v6.IsValid() {
		return b.addAddr(h, dev, v6, p6)
	}
	return nil
}

// routeTestNets routes the whole test range (and nothing else) in h via gw4
// (and gw6 when valid) out of HostLink.
func (b *builder) routeTestNets(h *Host, gw4, gw6 netip.Addr) error {
	if err := b.addRoute(h, testNet4, gw4, HostLink); err != nil {
		return err
	}
	if gw6.IsValid() {
		return b.addRoute(h, testNet6, gw6, HostLink)
	}
	return nil
}
