package conntrack

import (
	"net/netip"
	"testing"

	"github.com/lbkit/lbkit/internal/netns"
	"github.com/lbkit/lbkit/lb"
)

// udpService is a service with one UDP frontend served by backends.
func udpService(frontend netip.AddrPort, backends ...netip.AddrPort) *lb.ServiceState {
	fs := lb.FrontendState{Frontend: lb.Frontend{Addr: frontend.Addr(), Port: frontend.Port(), Protocol: lb.UDP, Kind: lb.ClusterIP}}
	for _, b := range backends {
		fs.Backends = append(fs.Backends, lb.Backend{Addr: b, Weight: 1})
	}
	return &lb.ServiceState{Service: &lb.Service{Key: "ns/udp"}, Frontends: []lb.FrontendState{fs}}
}

// TestClearStaleUDP is the datapaths' path (IPVS calls ClearStaleUDP after
// every sync): a sync before any flow exists clears nothing without error,
// and after the backend changes, the flow still pinned to the removed
// backend loses its entry and reaches the new one. It runs in the vmtest
// guest too (make vmtest), where the kernel is Debian 12's 6.1.
func TestClearStaleUDP(t *testing.T) {
	d := newDNATTopology(t)
	for _, v6 := range []bool{false, true} {
		vip := netip.MustParseAddr("198.18.100.1")
		if v6 {
			vip = netip.MustParseAddr("2001:2:0:100::1")
		}
		frontend := netip.AddrPortFrom(vip, 80)
		b0 := netip.AddrPortFrom(d.topo.Backends[0].Addr(v6), netns.DefaultPort)
		b1 := netip.AddrPortFrom(d.topo.Backends[1].Addr(v6), netns.DefaultPort)
		const src = 20031

		// The first sync: the service appears, no flow exists yet.
		var first lb.StaleUDP
		first.Note(nil, udpService(frontend, b0))
		if n, fes, err := ClearStaleUDP(d.topo.Node.Path, &first); err != nil || n != 0 || fes != 1 {
			t.Fatalf("ClearStaleUDP before any flow to %s = %d entries, %d frontends, %v; want 0, 1, nil", frontend, n, fes, err)
		}

		d.dnatTo(t, vip, 0)
		if got := d.request(t, src, frontend); got != "backend0" {
			t.Fatalf("first request to %s answered by %s, want backend0", frontend, got)
		}
		d.dnatTo(t, vip, 1)
		if got := d.request(t, src, frontend); got != "backend0" {
			t.Fatalf("the flow's conntrack entry should still send it to backend0, but %s answered", got)
		}

		// The next sync: backend0 is replaced by backend1.
		var next lb.StaleUDP
		next.Note(udpService(frontend, b0), udpService(frontend, b1))
		n, fes, err := ClearStaleUDP(d.topo.Node.Path, &next)
		if err != nil || n != 1 || fes != 1 {
			t.Errorf("ClearStaleUDP after %s moved from %s to %s = %d entries, %d frontends, %v; want 1, 1, nil", frontend, b0, b1, n, fes, err)
		}
		if got := d.request(t, src, frontend); got != "backend1" {
			t.Errorf("after clearing, the flow to %s was answered by %s, want backend1", frontend, got)
		}
		if n, _, err := ClearStaleUDP(d.topo.Node.Path, &next); err != nil || n != 0 {
			t.Errorf("ClearStaleUDP again (the flow now goes to %s) = %d, %v; want 0, nil", b1, n, err)
		}
	}
}
