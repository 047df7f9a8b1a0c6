package conntrack

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/lbkit/lbkit/internal/netns"
)

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
