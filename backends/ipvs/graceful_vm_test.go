//go:build vmtest

package ipvs_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/lbkit/lbkit/backends/ipvs"
	"github.com/lbkit/lbkit/lb"
)

// weights returns the real servers of a virtual server with their weights.
func weights(t *testing.T, w *world, fe netip.AddrPort) map[netip.AddrPort]int {
	t.Helper()
	in, err := w.dp.Inspect(t.Context(), lb.FrontendID{Addr: fe.Addr(), Port: fe.Port(), Protocol: lb.TCP})
	if err != nil {
		t.Fatal(err)
	}
	out := map[netip.AddrPort]int{}
	for _, b := range in.Backends {
		out[b.Addr] = int(b.Weight)
	}
	h := ipvsHandle(t, w.topo.Node.Path)
	svcs, _ := h.GetServices()
	for _, s := range svcs {
		a, _ := netip.AddrFromSlice(s.Address)
		if a.Unmap() != fe.Addr() || s.Port != fe.Port() {
			continue
		}
		ds, _ := h.GetDestinations(s)
		for _, d := range ds {
			da, _ := netip.AddrFromSlice(d.Address)
			out[netip.AddrPortFrom(da.Unmap(), d.Port)] = d.Weight
		}
	}
	return out
}

// TestGracefulTermination: a removed TCP real server keeps its established
// connection at weight 0, gets no new connections, and is deleted after the
// bound even though the connection is still open; one without connections
// goes at the next check.
func TestGracefulTermination(t *testing.T) {
	w := newWorld(t, ipvs.Options{GracefulTerminationTimeout: 3 * time.Second})
	fe := netip.AddrPortFrom(w.vip(1), 80)
	svc := service("drain", lb.RR, fe.Addr())
	w.install(w.eng, svc, w.backend(0), w.backend(1), w.backend(2))
	gone := w.backend(2).Addr
	live := w.dialTo(fe, w.topo.Backends[2].Name)

	w.setEndpoints(w.eng, svc.Key, w.backend(0), w.backend(1))
	if got := weights(t, w, fe)[gone]; got != 0 || w.dp.Draining() != 1 {
		t.Fatalf("after removing %s: weight %d, %d draining; want weight 0 and one draining", gone, got, w.dp.Draining())
	}
	if c := w.count(fe, 12); c[w.topo.Backends[2].Name] != 0 || c[w.topo.Backends[0].Name] != 6 {
		t.Errorf("new connections while %s drains: %v, want 6 each on the other two", gone, c)
	}
	if err := live.echo("still here\n"); err != nil {
		t.Errorf("the established connection to the draining real server broke: %v", err)
	}
	// The bound passes with the connection still open: the real server goes.
	eventually(t, time.Minute, "draining real server deleted after the bound", func() bool {
		_, present := weights(t, w, fe)[gone]
		return !present && w.dp.Draining() == 0
	})

	// A real server nobody ever used goes at the first check, not after
	// the bound: add backend 2 back, and remove it before any traffic.
	unused := &lb.Service{Key: "unused", Scheduler: lb.RR, Frontends: []lb.Frontend{{Addr: w.vip(2), Port: 80, Protocol: lb.TCP, Kind: lb.ClusterIP}}}
	w.install(w.eng, unused, w.backend(0), w.backend(2))
	w.setEndpoints(w.eng, unused.Key, w.backend(0))
	fe2 := netip.AddrPortFrom(w.vip(2), 80)
	eventually(t, time.Minute, "unused real server deleted", func() bool {
		_, present := weights(t, w, fe2)[gone]
		return !present
	})
}

// TestUDPRealServerGoesAtOnce: a removed UDP real server is deleted in the
// same sync (UDP has no end of connection to wait for; a draining UDP real
// server keeps taking a client's datagrams for the whole UDP timeout,
// which blackholed traffic in kube-proxy).
func TestUDPRealServerGoesAtOnce(t *testing.T) {
	w := newWorld(t, ipvs.Options{})
	svc := &lb.Service{Key: "dns", Scheduler: lb.RR, Frontends: []lb.Frontend{{Addr: w.vip(1), Port: 80, Protocol: lb.UDP, Kind: lb.ClusterIP}}}
	w.install(w.eng, svc, w.backend(0), w.backend(1))
	w.request("udp", netip.AddrPortFrom(w.vip(1), 80))
	w.setEndpoints(w.eng, svc.Key, w.backend(0))
	vs := virtualServers(t, w.topo.Node.Path)[netip.AddrPortFrom(w.vip(1), 80).String()+"/udp"]
	if vs == nil {
		t.Fatal("UDP virtual server missing")
	}
	ds, err := ipvsHandle(t, w.topo.Node.Path).GetDestinations(vs)
	if err != nil || len(ds) != 1 || w.dp.Draining() != 0 {
		t.Errorf("after removing a UDP backend: real servers %v (%v), %d draining; want one real server and none draining", ds, err, w.dp.Draining())
	}
}
