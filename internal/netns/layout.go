package netns

import (
	"fmt"
	"net/netip"
)

// Interface names. Each lives in its own namespace, so "eth0" repeats.
const (
	// HostLink is the interface of the client and of every backend.
	HostLink = "eth0"
	// NodeClientLink is the node's interface toward the client.
	NodeClientLink = "lbclient"
	// BridgeName is the node's bridge that the backends hang off.
	BridgeName = "lbbr0"
)

// nodeBackendLink names the node's bridge port toward backend i.
func nodeBackendLink(i int) string { return fmt.Sprintf("lbback%d", i) }

// Fixed prefixes of the layout.
var (
	clientNet4 = netip.MustParsePrefix("198.18.1.0/24")
	bridgeNet4 = netip.MustParsePrefix("198.18.2.0/24")
	testNet4   = netip.MustParsePrefix("198.18.0.0/15")
	vipNet4    = netip.MustParsePrefix("198.18.100.0/24")
	clientNet6 = netip.MustParsePrefix("2001:2:0:1::/64")
	bridgeNet6 = netip.MustParsePrefix("2001:2:0:2::/64")
	testNet6   = netip.MustParsePrefix("2001:2::/48")
	vipNet6    = netip.MustParsePrefix("2001:2:0:100::/64")
)

// host returns the address with the given low bits in prefix p (a /24 or a
// /64; host is small).
func host(p netip.Prefix, h int) netip.Addr {
	if p.Addr().Is4() {
		b := p.Addr().As4()
		b[3] = byte(h)
		return netip.AddrFrom4(b)
	}
	b := p.Addr().As16()
	b[14], b[15] = byte(h>>8), byte(h)
	return netip.AddrFrom16(b)
}

// Well-known hosts: .1 is the node, .2 the client, backend i is 10+i.
const (
	nodeHost       = 1
	clientHost     = 2
	firstBackendID = 10
)

// withLen formats a as addr/len of prefix p, for `ip addr add`.
func withLen(a netip.Addr, p netip.Prefix) string {
	return netip.PrefixFrom(a, p.Bits()).String()
}
