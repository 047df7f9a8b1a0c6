package iptables

import (
	"net/netip"
	"testing"

	"github.com/lbkit/lbkit/internal/conntrack"
	"github.com/lbkit/lbkit/lb"
)

// TestStaleFilterFrontendMovedBetweenServices: a UDP frontend that moves
// from service a to service b in one sync must keep the flows already
// DNATed to b's backends; only flows to other backends are stale. (The
// datapath used to list the frontend twice, once with no backends, which
// deleted every flow of it.)
func TestStaleFilterFrontendMovedBetweenServices(t *testing.T) {
	fe := lb.Frontend{Addr: netip.MustParseAddr("198.18.100.1"), Port: 53, Protocol: lb.UDP, Kind: lb.ClusterIP}
	be1 := netip.MustParseAddrPort("198.18.2.1:53")
	be2 := netip.MustParseAddrPort("198.18.2.2:53")
	svc := func(name string, bes ...netip.AddrPort) *lb.ServiceState {
		fs := lb.FrontendState{Frontend: fe}
		for _, b := range bes {
			fs.Backends = append(fs.Backends, lb.Backend{Addr: b, Weight: 1})
		}
		return &lb.ServiceState{Service: &lb.Service{Key: lb.ServiceKey("ns/" + name)}, Frontends: []lb.FrontendState{fs}}
	}
	a, b := svc("a", be1), svc("b", be1, be2)
	changes := []change{
		{old: &svcRecord{state: a}},
		{new: &svcRecord{state: b}},
	}
	f := conntrack.StaleFilter(staleOf(changes))
	if len(f.Serving) != 1 {
		t.Fatalf("filter lists %d frontends (%+v), want the moved frontend once", len(f.Serving), f.Serving)
	}
	s := f.Serving[0]
	if s.Frontend != netip.AddrPortFrom(fe.Addr, fe.Port) || len(s.Backends) != 2 || s.Backends[0] != be1 || s.Backends[1] != be2 {
		t.Errorf("filter %+v, want %s served by %s and %s", s, fe, be1, be2)
	}
}
