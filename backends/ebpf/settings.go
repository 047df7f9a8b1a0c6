package ebpf

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/lbkit/lbkit/bpf"
	"github.com/lbkit/lbkit/internal/nsutil"
	"github.com/lbkit/lbkit/lb"
)

// writeSettings writes lb_config and lb_cluster_cidrs from the options.
func (d *Datapath) writeSettings() error {
	// Pinned maps may hold a previous process's prefixes.
	var stale []bpf.LBCidrKey
	var k bpf.LBCidrKey
	var v uint32
	it := d.objs.LbClusterCidrs.Iterate()
	for it.Next(&k, &v) {
		stale = append(stale, k)
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("ebpf: read cluster CIDRs: %w", err)
	}
	for i := range stale {
		if err := d.objs.LbClusterCidrs.Delete(&stale[i]); err != nil {
			return fmt.Errorf("ebpf: delete stale cluster CIDR: %w", err)
		}
	}
	var cfg bpf.LBSettings
	if d.opts.MasqueradeAll {
		cfg.Flags |= cfgMasqAll
	}
	for _, p := range d.opts.ClusterCIDRs {
		a := p.Addr().Unmap()
		bits := p.Bits()
		if p.Addr().Is4In6() {
			bits -= 96
		}
		k := bpf.LBCidrKey{Prefixlen: uint32(32 + bits), Family: uint32(familyOf(a)), Addr: addrWords(a)}
		if err := d.objs.LbClusterCidrs.Update(&k, uint32(1), 0); err != nil {
			return fmt.Errorf("ebpf: write cluster CIDR %s: %w", p, err)
		}
		cfg.HaveClusterCidrs = 1
	}
	if err := d.objs.LbConfig.Update(uint32(0), &cfg, 0); err != nil {
		return fmt.Errorf("ebpf: write settings: %w", err)
	}
	return nil
}

// nodeAddr is an lb_nodeaddrs entry.
type nodeAddr = bpf.LBNodeaddrKey

// touchesNodePorts reports whether a changed service has a NodePort
// frontend on the unspecified address, whose node addresses must be
// current.
func (d *Datapath) touchesNodePorts(todo []work) bool {
	for _, w := range todo {
		if w.State == nil {
			continue
		}
		for _, fs := range w.State.Frontends {
			if fs.Kind == lb.NodePort && fs.Addr.IsUnspecified() {
				return true
			}
		}
	}
	return false
}

// syncNodeAddrs makes lb_nodeaddrs hold the namespace's addresses that
// Options.NodePortAddresses allows.
func (d *Datapath) syncNodeAddrs() error {
	var addrs []netip.Addr
	err := nsutil.Do(d.opts.Netns, func() error {
		ifaddrs, err := net.InterfaceAddrs()
		if err != nil {
			return err
		}
		for _, a := range ifaddrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if !ok || ip.IsLoopback() || ip.IsLinkLocalUnicast() {
				continue
			}
			addrs = append(addrs, ip.Unmap())
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("ebpf: list node addresses: %w", err)
	}
	want := make(map[nodeAddr]bool)
	for _, a := range addrs {
		if !d.nodePortAllowed(a) {
			continue
		}
		want[nodeAddr{Addr: addrWords(a), Family: familyOf(a)}] = true
	}
	for k := range want {
		if d.nodeAddrs[k] {
			continue
		}
		if err := d.objs.LbNodeaddrs.Update(&k, uint32(1), 0); err != nil {
			return fmt.Errorf("ebpf: write node address: %w", err)
		}
	}
	for k := range d.nodeAddrs {
		if !want[k] {
			if err := d.objs.LbNodeaddrs.Delete(&k); err != nil {
				return fmt.Errorf("ebpf: delete node address: %w", err)
			}
		}
	}
	d.nodeAddrs = want
	return nil
}

// nodePortAllowed reports whether NodePorts are served on a.
func (d *Datapath) nodePortAllowed(a netip.Addr) bool {
	if len(d.opts.NodePortAddresses) == 0 {
		return true
	}
	for _, p := range d.opts.NodePortAddresses {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
