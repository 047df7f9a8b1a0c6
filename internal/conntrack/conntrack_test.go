package conntrack

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/lbkit/lbkit/internal/netns"
	"github.com/lbkit/lbkit/internal/testenv"
)

// dnatTopology builds a topology whose node DNATs UDP to vip:80 to
// backend i, per an nft rule the test can replace.
type dnatTopology struct {
	topo *netns.Topology
}

func newDNATTopology(t *testing.T) *dnatTopology {
	t.Helper()
	netns.Require(t)
	testenv.RequireTool(t, "nft", "nftables") // installs the test's DNAT rule
	topo := netns.New(t, netns.Options{Backends: 2, IPv6: true, TCPPorts: []uint16{}})
	d := &dnatTopology{topo: topo}
	d.nft(t, "add table inet cttest")
	d.nft(t, "add chain inet cttest pre { type nat hook prerouting priority -100 ; }")
	return d
}

func (d *dnatTopology) nft(t *testing.T, cmd string) {
	t.Helper()
	if out, err := d.topo.Node.Exec(context.Background(), "nft", cmd); err != nil {
		t.Fatalf("nft %s: %v: %s", cmd, err, out)
	}
}

// dnatTo makes vip:80/udp go to backend i (replacing the previous rule).
func (d *dnatTopology) dnatTo(t *testing.T, vip netip.Addr, i int) {
	t.Helper()
	be := d.topo.Backends[i].Addr(vip.Is6())
	fam := "ip"
	if vip.Is6() {
		fam = "ip6"
	}
	d.nft(t, "flush chain inet cttest pre")
	d.nft(t, fmt.Sprintf("add rule inet cttest pre %s daddr %s udp dport 80 dnat %s to %s",
		fam, vip, fam, netip.AddrPortFrom(be, netns.DefaultPort)))
}

// request sends one UDP request from the client's fixed source port to dst
// and returns who answered.
func (d *dnatTopology) request(t *testing.T, src uint16, dst netip.AddrPort) string {
	t.Helper()
	local := netip.AddrPortFrom(d.topo.Client.Addr(dst.Addr().Is6()), src)
	r, err := d.topo.Client.RequestFrom(t.Context(), "udp", local, dst)
	if err != nil {
		t.Fatalf("request %s -> %s: %v", local, dst, err)
	}
	return r.Backend
}

// entries lists the node's UDP conntrack entries of the family of a.
func (d *dnatTopology) entries(t *testing.T, a netip.Addr) []*netlink.ConntrackFlow {
	t.Helper()
	h, err := openHandle(d.topo.Node.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	fam := netlink.InetFamily(unix.AF_INET)
	if a.Is6() {
		fam = unix.AF_INET6
	}
	flows, err := h.ConntrackTableList(netlink.ConntrackTable, fam)
	if err != nil {
		t.Fatalf("list conntrack: %v", err)
	}
	var out []*netlink.ConntrackFlow
	for _, f := range flows {
		if f.Forward.Protocol == unix.IPPROTO_UDP {
			out = append(out, f)
		}
	}
	return out
}

// hasFlowFrom reports whether an entry of the client's source port src to
// dst exists.
func (d *dnatTopology) hasFlowFrom(t *testing.T, src uint16, dst netip.AddrPort) bool {
	for _, f := range d.entries(t, dst.Addr()) {
		if f.Forward.SrcPort == src && netip.AddrPortFrom(addrOf(f.Forward.DstIP), f.Forward.DstPort) == dst {
			return true
		}
	}
	return false
}

// TestStaleUDPFlowFollowsNewBackendAfterClear: a UDP flow from a fixed
// source port keeps going to the backend it was first DNATed to, even after
// the rule changes, until ClearUDPBackend deletes its entry; a flow sent to
// a backend directly is not touched.
func TestStaleUDPFlowFollowsNewBackendAfterClear(t *testing.T) {
	d := newDNATTopology(t)
	for _, v6 := range []bool{false, true} {
		vip := netip.MustParseAddr("198.18.100.1")
		if v6 {
			vip = netip.MustParseAddr("2001:2:0:100::1")
		}
		t.Run(fmt.Sprintf("ipv6=%v", v6), func(t *testing.T) {
			frontend := netip.AddrPortFrom(vip, 80)
			b0 := netip.AddrPortFrom(d.topo.Backends[0].Addr(v6), netns.DefaultPort)
			b1 := netip.AddrPortFrom(d.topo.Backends[1].Addr(v6), netns.DefaultPort)
			const natSrc, directSrc = 20001, 20002

			d.dnatTo(t, vip, 0)
			if got := d.request(t, natSrc, frontend); got != "backend0" {
				t.Fatalf("first request answered by %s, want backend0", got)
			}
			if got := d.request(t, directSrc, b0); got != "backend0" {
				t.Fatalf("direct request answered by %s, want backend0", got)
			}
			d.dnatTo(t, vip, 1)
			if got := d.request(t, natSrc, frontend); got != "backend0" {
				t.Fatalf("the flow's conntrack entry should still send it to backend0, but %s answered", got)
			}

			n, err := ClearUDPBackend(d.topo.Node.Path, b0)
			if err != nil {
				t.Fatalf("ClearUDPBackend(%s): %v", b0, err)
			}
			if n != 1 {
				t.Errorf("ClearUDPBackend(%s) deleted %d entries, want 1 (the DNATed flow)", b0, n)
			}
			if !d.hasFlowFrom(t, directSrc, b0) {
				t.Errorf("the flow sent to %s directly lost its entry", b0)
			}
			if got := d.request(t, natSrc, frontend); got != "backend1" {
				t.Errorf("after clearing, the flow was answered by %s, want backend1", got)
			}
			if n, err := ClearUDPBackend(d.topo.Node.Path, b0); err != nil || n != 0 {
				t.Errorf("second ClearUDPBackend(%s) = %d, %v; want 0, nil", b0, n, err)
			}
			if !d.hasFlowFrom(t, natSrc, frontend) {
				t.Fatalf("no entry for the flow to %s after the last request", frontend)
			}
			other := netip.AddrPortFrom(vip, 81)
			if n, err := ClearUDP(d.topo.Node.Path, Filter{Flows: []Flow{{Frontend: other, Backend: b1}}}); err != nil || n != 0 {
				t.Errorf("ClearUDP(flows %s -> %s) = %d, %v; want 0, nil", other, b1, n, err)
			}
			if n, err := ClearUDP(d.topo.Node.Path, Filter{Flows: []Flow{{Frontend: frontend, Backend: b1}}}); err != nil || n != 1 {
				t.Errorf("ClearUDP(flows %s -> %s) = %d, %v; want 1, nil", frontend, b1, n, err)
			}
		})
	}
}

// TestClearUDPFrontend deletes the entries of flows to a frontend (also one
// rejected or not NATed), including by port on every address, and nothing
// else.
func TestClearUDPFrontend(t *testing.T) {
	d := newDNATTopology(t)
	vip := netip.MustParseAddr("198.18.100.1")
	frontend := netip.AddrPortFrom(vip, 80)
	b0 := netip.AddrPortFrom(d.topo.Backends[0].IPv4, netns.DefaultPort)
	d.dnatTo(t, vip, 0)
	d.request(t, 20011, frontend)
	d.request(t, 20012, frontend)
	d.request(t, 20013, b0)

	n, err := ClearUDPFrontend(d.topo.Node.Path, frontend)
	if err != nil || n != 2 {
		t.Errorf("ClearUDPFrontend(%s) = %d, %v; want 2, nil", frontend, n, err)
	}
	if d.hasFlowFrom(t, 20011, frontend) || d.hasFlowFrom(t, 20012, frontend) {
		t.Errorf("flows to %s still have entries after ClearUDPFrontend", frontend)
	}
	if !d.hasFlowFrom(t, 20013, b0) {
		t.Errorf("the flow to %s lost its entry", b0)
	}
	// By port on every address: the direct flow to the backend's port.
	n, err = ClearUDP(d.topo.Node.Path, Filter{Frontends: []netip.AddrPort{netip.AddrPortFrom(netip.IPv4Unspecified(), netns.DefaultPort)}})
	if err != nil || n != 1 {
		t.Errorf("ClearUDP(0.0.0.0:%d) = %d, %v; want 1, nil", netns.DefaultPort, n, err)
	}
	if d.hasFlowFrom(t, 20013, b0) {
		t.Errorf("the flow to %s kept its entry after clearing port %d on every address", b0, netns.DefaultPort)
	}
}

// TestClearUDPServing deletes exactly the flows to a frontend that are not
// DNATed to one of its current backends.
func TestClearUDPServing(t *testing.T) {
	d := newDNATTopology(t)
	vip := netip.MustParseAddr("198.18.100.1")
	frontend := netip.AddrPortFrom(vip, 80)
	b1 := netip.AddrPortFrom(d.topo.Backends[1].IPv4, netns.DefaultPort)
	d.dnatTo(t, vip, 0)
	d.request(t, 20021, frontend) // DNATed to backend0
	d.dnatTo(t, vip, 1)
	d.request(t, 20022, frontend) // DNATed to backend1
	serving := Filter{Serving: []Serving{{Frontend: frontend, Backends: []netip.AddrPort{b1}}}}
	if n, err := ClearUDP(d.topo.Node.Path, serving); err != nil || n != 1 {
		t.Errorf("ClearUDP(%s served by %s) = %d, %v; want 1, nil", frontend, b1, n, err)
	}
	if d.hasFlowFrom(t, 20021, frontend) {
		t.Error("the flow DNATed to the removed backend0 kept its entry")
	}
	if !d.hasFlowFrom(t, 20022, frontend) {
		t.Error("the flow DNATed to the serving backend1 lost its entry")
	}
	if got := d.request(t, 20021, frontend); got != "backend1" {
		t.Errorf("the cleared flow was answered by %s, want backend1", got)
	}
}
