package main

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/lbkit/lbkit/internal/nsutil"
	"github.com/lbkit/lbkit/proxyd/config"
)

// clusterCIDRs parses clusterCIDR (one CIDR or an IPv4,IPv6 pair; empty =
// none). The config is validated already; errors still name the field.
func clusterCIDRs(cfg *config.Config) ([]netip.Prefix, error) {
	return parsePrefixes("clusterCIDR", strings.Split(cfg.ClusterCIDR, ","))
}

// nodePortPrefixes turns nodePortAddresses into prefixes. Empty means every
// local address (nil). "primary" means the node's primary IPs: those of its
// Kubernetes Node (nodeIPs) when known, else bindAddress when it is a
// specific IP, else the first global address of each family on the
// interfaces of the datapath's namespace.
func nodePortPrefixes(cfg *config.Config, nodeIPs []netip.Addr) ([]netip.Prefix, error) {
	if usesPrimaryIPs(cfg) {
		ips := nodeIPs
		if len(ips) == 0 {
			var err error
			if ips, err = primaryIPs(cfg); err != nil {
				return nil, err
			}
		}
		out := make([]netip.Prefix, len(ips))
		for i, ip := range ips {
			out[i] = netip.PrefixFrom(ip, ip.BitLen())
		}
		return out, nil
	}
	return parsePrefixes("nodePortAddresses", cfg.NodePortAddresses)
}

// usesPrimaryIPs reports whether nodePortAddresses is the single value
// "primary".
func usesPrimaryIPs(cfg *config.Config) bool {
	return len(cfg.NodePortAddresses) == 1 && cfg.NodePortAddresses[0] == config.NodePortAddressesPrimary
}

func parsePrefixes(field string, ss []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range ss {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %q: %w", field, s, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// primaryIPs returns the node's primary IPs (see nodePortPrefixes).
func primaryIPs(cfg *config.Config) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(cfg.BindAddress); err == nil && !ip.IsUnspecified() {
		return []netip.Addr{ip}, nil
	}
	var out []netip.Addr
	err := nsutil.Do(cfg.Lbkit.Netns, func() error {
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			return err
		}
		var have4, have6 bool
		for _, a := range addrs {
			n, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(n.IP)
			if !ok || !ip.IsGlobalUnicast() {
				continue
			}
			ip = ip.Unmap()
			if ip.Is4() && !have4 || ip.Is6() && !have6 {
				out = append(out, ip)
				have4, have6 = have4 || ip.Is4(), have6 || ip.Is6()
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("nodePortAddresses primary: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("nodePortAddresses primary: the node has no global unicast address; set bindAddress")
	}
	return out, nil
}
