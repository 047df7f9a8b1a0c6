package conntrack

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// flow builds a conntrack flow: the client sent to origDst, the reply came
// from replySrc.
func flow(proto uint8, client, origDst, replySrc string) *netlink.ConntrackFlow {
	c, o, r := netip.MustParseAddrPort(client), netip.MustParseAddrPort(origDst), netip.MustParseAddrPort(replySrc)
	ip := func(a netip.Addr) net.IP { return net.IP(a.AsSlice()) }
	return &netlink.ConntrackFlow{
		Forward: netlink.IPTuple{Protocol: proto, SrcIP: ip(c.Addr()), SrcPort: c.Port(), DstIP: ip(o.Addr()), DstPort: o.Port()},
		Reverse: netlink.IPTuple{Protocol: proto, SrcIP: ip(r.Addr()), SrcPort: r.Port(), DstIP: ip(c.Addr()), DstPort: c.Port()},
	}
}

func TestMatcher(t *testing.T) {
	m, err := newMatcher(Filter{
		Backends:  []netip.AddrPort{netip.MustParseAddrPort("198.18.2.10:8080"), netip.MustParseAddrPort("[2001:2:0:2::a]:8080")},
		Frontends: []netip.AddrPort{netip.MustParseAddrPort("198.18.100.1:53"), netip.MustParseAddrPort("0.0.0.0:30053")},
	})
	if err != nil {
		t.Fatal(err)
	}
	const udp, tcp = unix.IPPROTO_UDP, unix.IPPROTO_TCP
	for _, tc := range []struct {
		name string
		f    *netlink.ConntrackFlow
		want bool
	}{
		{"DNATed to the backend", flow(udp, "198.18.1.2:4000", "198.18.100.9:80", "198.18.2.10:8080"), true},
		{"IPv6 DNATed to the backend", flow(udp, "[2001:2:0:1::2]:4000", "[2001:2:0:100::1]:80", "[2001:2:0:2::a]:8080"), true},
		{"TCP DNATed to the backend", flow(tcp, "198.18.1.2:4000", "198.18.100.9:80", "198.18.2.10:8080"), false},
		{"sent to the backend directly", flow(udp, "198.18.1.2:4000", "198.18.2.10:8080", "198.18.2.10:8080"), false},
		{"another port of the backend", flow(udp, "198.18.1.2:4000", "198.18.100.9:80", "198.18.2.10:8081"), false},
		{"to the frontend, not NATed", flow(udp, "198.18.1.2:4000", "198.18.100.1:53", "198.18.100.1:53"), true},
		{"to the frontend, NATed", flow(udp, "198.18.1.2:4000", "198.18.100.1:53", "198.18.2.11:53"), true},
		{"another port of the frontend IP", flow(udp, "198.18.1.2:4000", "198.18.100.1:54", "198.18.100.1:54"), false},
		{"NodePort on any address", flow(udp, "198.18.1.2:4000", "198.18.1.1:30053", "198.18.1.1:30053"), true},
		{"NodePort port, IPv6", flow(udp, "[2001:2:0:1::2]:4000", "[2001:2:0:1::1]:30053", "[2001:2:0:1::1]:30053"), false},
	} {
		if got := m.MatchConntrackFlow(tc.f); got != tc.want {
			t.Errorf("%s: match = %v, want %v", tc.name, got, tc.want)
		}
	}
	if fams := m.families(); len(fams) != 2 {
		t.Errorf("families() = %v, want IPv4 and IPv6", fams)
	}
}

func TestBadFilters(t *testing.T) {
	for _, tc := range []struct {
		f    Filter
		want string
	}{
		{Filter{Backends: []netip.AddrPort{{}}}, "backends[0]"},
		{Filter{Backends: []netip.AddrPort{netip.MustParseAddrPort("198.18.2.10:0")}}, "port 0"},
		{Filter{Backends: []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:53")}}, "unspecified"},
		{Filter{Frontends: []netip.AddrPort{netip.MustParseAddrPort("198.18.100.1:53"), {}}}, "frontends[1]"},
	} {
		if _, err := ClearUDP("", tc.f); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ClearUDP(%+v) = %v, want an error mentioning %q", tc.f, err, tc.want)
		}
	}
	if n, err := ClearUDP("/nonexistent/netns", Filter{}); n != 0 || err != nil {
		t.Errorf("empty filter: %d, %v; want 0, nil without touching the namespace", n, err)
	}
	_, err := ClearUDPBackend("/nonexistent/netns", netip.MustParseAddrPort("198.18.2.10:8080"))
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/netns") {
		t.Errorf("ClearUDPBackend in a missing namespace = %v, want an error naming it", err)
	}
}

func TestMatcherFlows(t *testing.T) {
	m, err := newMatcher(Filter{Flows: []Flow{
		{Frontend: netip.MustParseAddrPort("198.18.100.1:53"), Backend: netip.MustParseAddrPort("198.18.2.10:53")},
		{Frontend: netip.MustParseAddrPort("0.0.0.0:30053"), Backend: netip.MustParseAddrPort("198.18.2.11:53")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	const udp = unix.IPPROTO_UDP
	for _, tc := range []struct {
		name string
		f    *netlink.ConntrackFlow
		want bool
	}{
		{"the frontend's flow to the backend", flow(udp, "198.18.1.2:4000", "198.18.100.1:53", "198.18.2.10:53"), true},
		{"another frontend's flow to the backend", flow(udp, "198.18.1.2:4000", "198.18.100.2:53", "198.18.2.10:53"), false},
		{"the frontend's flow to another backend", flow(udp, "198.18.1.2:4000", "198.18.100.1:53", "198.18.2.12:53"), false},
		{"NodePort flow on any node address", flow(udp, "198.18.1.2:4000", "198.18.1.1:30053", "198.18.2.11:53"), true},
		{"NodePort port, other backend", flow(udp, "198.18.1.2:4000", "198.18.1.1:30053", "198.18.2.10:53"), false},
	} {
		if got := m.MatchConntrackFlow(tc.f); got != tc.want {
			t.Errorf("%s: match = %v, want %v", tc.name, got, tc.want)
		}
	}
	if _, err := newMatcher(Filter{Flows: []Flow{{Frontend: netip.MustParseAddrPort("198.18.100.1:53"), Backend: netip.MustParseAddrPort("[2001:2::1]:53")}}}); err == nil {
		t.Error("a flow mixing families was accepted")
	}
}

func TestMatcherServing(t *testing.T) {
	m, err := newMatcher(Filter{Serving: []Serving{
		{Frontend: netip.MustParseAddrPort("198.18.100.1:53"), Backends: []netip.AddrPort{netip.MustParseAddrPort("198.18.2.10:53")}},
		{Frontend: netip.MustParseAddrPort("198.18.100.2:53")},
		{Frontend: netip.MustParseAddrPort("0.0.0.0:30053"), Backends: []netip.AddrPort{netip.MustParseAddrPort("198.18.2.11:53")}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	const udp = unix.IPPROTO_UDP
	for _, tc := range []struct {
		name string
		f    *netlink.ConntrackFlow
		want bool
	}{
		{"DNATed to a serving backend", flow(udp, "198.18.1.2:4000", "198.18.100.1:53", "198.18.2.10:53"), false},
		{"DNATed to a removed backend", flow(udp, "198.18.1.2:4000", "198.18.100.1:53", "198.18.2.12:53"), true},
		{"not DNATed", flow(udp, "198.18.1.2:4000", "198.18.100.1:53", "198.18.100.1:53"), true},
		{"frontend without backends", flow(udp, "198.18.1.2:4000", "198.18.100.2:53", "198.18.2.10:53"), true},
		{"another frontend", flow(udp, "198.18.1.2:4000", "198.18.100.3:53", "198.18.100.3:53"), false},
		{"NodePort, serving", flow(udp, "198.18.1.2:4000", "198.18.1.1:30053", "198.18.2.11:53"), false},
		{"NodePort, not DNATed", flow(udp, "198.18.1.2:4000", "198.18.1.1:30053", "198.18.1.1:30053"), true},
	} {
		if got := m.MatchConntrackFlow(tc.f); got != tc.want {
			t.Errorf("%s: match = %v, want %v", tc.name, got, tc.want)
		}
	}
}
