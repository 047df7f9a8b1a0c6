//go:build vmtest

package ipvs_test

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	mobyipvs "github.com/moby/ipvs"

	"github.com/lbkit/lbkit/backends/ipvs"
	"github.com/lbkit/lbkit/lb"
)

// TestAdoptionAfterRestart: a new process adopts what the previous one
// left: an established connection survives, untouched virtual servers are
// not recreated, and only drift is repaired (a changed weight, an extra real
// server, a deleted virtual server), with exactly the netlink writes that
// takes.
func TestAdoptionAfterRestart(t *testing.T) {
	w := newWorld(t, ipvs.Options{Scheduler: "rr"})
	kept := service("kept", lb.Random, w.vip(1))
	weighted := service("weighted", lb.WRR, w.vip(2))
	deleted := service("deleted", lb.RR, w.vip(3))
	w.install(w.eng, kept, w.backend(0), w.backend(1), w.backend(2))
	w.install(w.eng, weighted, w.backend(0), w.backend(1))
	w.install(w.eng, deleted, w.backend(0), w.backend(1))
	fe := netip.AddrPortFrom(w.vip(1), 80)
	live := w.dial(fe)

	// The first process goes away without Cleanup, as proxyd does on
	// SIGTERM.
	if err := w.dp.Close(); err != nil {
		t.Fatal(err)
	}
	// Drift while nobody watches.
	h := ipvsHandle(t, w.topo.Node.Path)
	vs := virtualServers(t, w.topo.Node.Path)
	b1 := w.backend(1).Addr
	if err := h.UpdateDestination(vs[netip.AddrPortFrom(w.vip(2), 80).String()+"/tcp"],
		&mobyipvs.Destination{Address: net.IP(b1.Addr().AsSlice()), Port: b1.Port(), Weight: 9, AddressFamily: 2}); err != nil {
		t.Fatal(err)
	}
	if err := h.DelService(vs[netip.AddrPortFrom(w.vip(3), 80).String()+"/tcp"]); err != nil {
		t.Fatal(err)
	}

	dp2, eng2 := w.datapath(ipvs.Options{Scheduler: "rr"})
	w.dp = dp2 // the world's Cleanup removes what the second process has
	for _, s := range []*lb.Service{kept, weighted, deleted} {
		if err := eng2.Upsert(s); err != nil {
			t.Fatal(err)
		}
	}
	for _, set := range []struct {
		key lb.ServiceKey
		eps []lb.Endpoint
	}{{kept.Key, []lb.Endpoint{w.backend(0), w.backend(1), w.backend(2)}}, {weighted.Key, []lb.Endpoint{w.backend(0), w.backend(1)}}, {deleted.Key, []lb.Endpoint{w.backend(0), w.backend(1)}}} {
		if err := eng2.SetEndpoints(set.key, set.eps); err != nil {
			t.Fatal(err)
		}
	}
	before := dp2.Stats()
	if err := eng2.Flush(t.Context()); err != nil {
		t.Fatalf("first sync after the restart: %v", err)
	}
	st := dp2.Stats()
	// One weight back to 1, one virtual server and its two real servers.
	if writes := st.IPVSWrites - before.IPVSWrites; writes != 4 {
		t.Errorf("the first sync after a restart made %d IPVS writes, want 4 (repair one weight, recreate one virtual server with two real servers)", writes)
	}
	if err := live.echo("survived the restart\n"); err != nil {
		t.Errorf("the established connection broke across the restart: %v", err)
	}
	got := weights(t, w, netip.AddrPortFrom(w.vip(2), 80))
	if got[b1] != 1 {
		t.Errorf("drifted weight of %s: %d after the sync, want 1", b1, got[b1])
	}
	if c := w.count(netip.AddrPortFrom(w.vip(3), 80), 4); len(c) != 2 {
		t.Errorf("recreated service answers %v, want both backends", c)
	}
	in, err := dp2.Inspect(t.Context(), lb.FrontendID{Addr: w.vip(1), Port: 80, Protocol: lb.TCP})
	if err != nil {
		t.Fatal(err)
	}
	if in.Service != kept.Key || in.Scheduler != lb.RR || len(in.Backends) != 3 || in.Frontend.Kind != lb.ClusterIP ||
		!strings.Contains(strings.Join(in.Details, "\n"), "asked for random") {
		t.Errorf("Inspect after adoption: %+v", in)
	}
}
