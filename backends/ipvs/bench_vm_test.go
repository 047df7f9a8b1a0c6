//go:build vmtest

package ipvs_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os/exec"
	"testing"

	mobyipvs "github.com/moby/ipvs"

	"github.com/lbkit/lbkit/backends/ipvs"
	"github.com/lbkit/lbkit/internal/testenv"
	"github.com/lbkit/lbkit/lb"
)

// bareNetns creates an empty network namespace (lo up) and deletes it when
// the test ends; it returns its path.
func bareNetns(tb testing.TB) string {
	tb.Helper()
	testenv.RequireTool(tb, "ip", "iproute2")
	var b [4]byte
	rand.Read(b[:])
	name := "lbkt-" + hex.EncodeToString(b[:]) + "-bench"
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		tb.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	tb.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			tb.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	// With lo up the namespace has a local routing table; IPVS refuses
	// real servers (EINVAL) while the namespace has none.
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		tb.Fatalf("lo up in %s: %v: %s", name, err, out)
	}
	return "/var/run/netns/" + name
}

// table is n ClusterIP services with three endpoints each, on addresses
// that need not exist (no traffic is sent).
func table(n int) []*lb.ServiceState {
	out := make([]*lb.ServiceState, n)
	for i := range n {
		// VIPs from 198.19.0.0/16, distinct for up to 65536 services.
		vip := netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)})
		svc := &lb.Service{Key: lb.ServiceKey(fmt.Sprintf("ns/svc-%d/http", i)), Scheduler: lb.RR,
			Frontends: []lb.Frontend{{Addr: vip, Port: 80, Protocol: lb.TCP, Kind: lb.ClusterIP}}}
		var eps []lb.Endpoint
		for j := range 3 {
			ep := lb.ReadyEndpoint(netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(j), byte(i % 250)}), uint16(8000+i/250)))
			ep.NodeName = "node-a"
			eps = append(eps, ep)
		}
		out[i] = lb.Select(svc, eps, lb.Node{Name: "node-a"})
	}
	return out
}

// snapshotOf builds a snapshot holding states.
func snapshotOf(states []*lb.ServiceState) *lb.Snapshot {
	var s *lb.Snapshot
	for _, st := range states {
		s = s.With(st)
	}
	return s
}

func newDatapath(tb testing.TB, netns string) *ipvs.Datapath {
	tb.Helper()
	dp, err := ipvs.New(ipvs.Options{Netns: netns, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { dp.Close() })
	return dp
}

// oneChangeCalls installs n services, then changes one endpoint of one
// service and returns the netlink requests that partial sync made.
func oneChangeCalls(tb testing.TB, n int) ipvs.Stats {
	tb.Helper()
	ns := bareNetns(tb)
	dp := newDatapath(tb, ns)
	states := table(n)
	snap := snapshotOf(states)
	if err := dp.Sync(tb.Context(), snap, lb.ChangeSet{Full: true}); err != nil {
		tb.Fatalf("full sync of %d services: %v", n, err)
	}
	st := states[n/2]
	eps := append([]lb.Endpoint(nil), st.Endpoints...)
	eps[2].Addr = netip.AddrPortFrom(netip.MustParseAddr("198.18.9.9"), eps[2].Addr.Port())
	snap = snap.With(lb.Select(st.Service, eps, lb.Node{Name: "node-a"}))
	before := dp.Stats()
	if err := dp.Sync(tb.Context(), snap, lb.ChangeSet{Changed: map[lb.ServiceKey]struct{}{st.Key(): {}}}); err != nil {
		tb.Fatalf("partial sync: %v", err)
	}
	after := dp.Stats()
	return ipvs.Stats{
		IPVSReads: after.IPVSReads - before.IPVSReads, IPVSWrites: after.IPVSWrites - before.IPVSWrites,
		AddrCalls: after.AddrCalls - before.AddrCalls, NATBatches: after.NATBatches - before.NATBatches,
		SendBatches: after.SendBatches - before.SendBatches,
	}
}

// TestOneChangeCallsFlat: replacing one endpoint of one service costs the
// same netlink requests with 100 services as with 400 (no per-sync reads of
// the table).
func TestOneChangeCallsFlat(t *testing.T) {
	requireIPVS(t)
	small, large := oneChangeCalls(t, 100), oneChangeCalls(t, 400)
	t.Logf("one endpoint change: %+v (100 services), %+v (400 services)", small, large)
	if small != large {
		t.Errorf("one endpoint change made %+v with 100 services but %+v with 400, want the same", small, large)
	}
	// New real server, old one to weight 0, one check of it, one
	// nftables transaction (hairpin elements).
	if small.Total() > 5 {
		t.Errorf("one endpoint change made %d netlink requests (%+v), want at most 5", small.Total(), small)
	}
}

var sizes = []int{5000, 10000}

// BenchmarkFullSync: a first full sync of N services x 3 endpoints into an
// empty namespace (virtual servers, real servers, VIPs, masquerade sets).
func BenchmarkFullSync(b *testing.B) {
	requireIPVS(b)
	for _, n := range sizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			snap := snapshotOf(table(n))
			var st ipvs.Stats
			for b.Loop() {
				b.StopTimer()
				ns := bareNetns(b)
				dp := newDatapath(b, ns)
				b.StartTimer()
				if err := dp.Sync(b.Context(), snap, lb.ChangeSet{Full: true}); err != nil {
					b.Fatal(err)
				}
				st = dp.Stats()
			}
			b.ReportMetric(float64(st.Total()), "netlink-calls/op")
			b.ReportMetric(float64(st.SendBatches), "sendmsg/op")
		})
	}
}

// BenchmarkPlainMoby is the floor: the same virtual and real servers with
// plain moby/ipvs NewService and NewDestination calls.
func BenchmarkPlainMoby(b *testing.B) {
	requireIPVS(b)
	for _, n := range sizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			states := table(n)
			for b.Loop() {
				b.StopTimer()
				ns := bareNetns(b)
				h, err := mobyipvs.New(ns)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				programFloor(b, h, states)
				b.StopTimer()
				h.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(4*n), "netlink-calls/op")
		})
	}
}

// BenchmarkOneEndpointChange: one endpoint of one service changes in a
// table of N services; the netlink requests per change stay flat.
func BenchmarkOneEndpointChange(b *testing.B) {
	requireIPVS(b)
	for _, n := range []int{1000, 5000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			ns := bareNetns(b)
			dp := newDatapath(b, ns)
			states := table(n)
			snap := snapshotOf(states)
			if err := dp.Sync(b.Context(), snap, lb.ChangeSet{Full: true}); err != nil {
				b.Fatal(err)
			}
			before := dp.Stats().Total()
			i := 0
			for b.Loop() {
				st := states[i%n]
				eps := append([]lb.Endpoint(nil), st.Endpoints...)
				eps[2].Addr = netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 9, byte(i % 200)}), eps[2].Addr.Port())
				snap = snap.With(lb.Select(st.Service, eps, lb.Node{Name: "node-a"}))
				if err := dp.Sync(b.Context(), snap, lb.ChangeSet{Changed: map[lb.ServiceKey]struct{}{st.Key(): {}}}); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(dp.Stats().Total()-before)/float64(b.N), "netlink-calls/op")
		})
	}
}

// programFloor programs states with plain moby/ipvs calls: one NewService
// per virtual server and one NewDestination per real server (the floor).
func programFloor(tb testing.TB, h *mobyipvs.Handle, states []*lb.ServiceState) {
	tb.Helper()
	for _, st := range states {
		fe := st.Frontends[0]
		s := &mobyipvs.Service{Address: net.IP(fe.Addr.AsSlice()), Port: fe.Port, Protocol: 6, AddressFamily: 2, SchedName: "rr", Netmask: 0xffffffff}
		if err := h.NewService(s); err != nil {
			tb.Fatal(err)
		}
		for _, be := range fe.Backends {
			d := &mobyipvs.Destination{Address: net.IP(be.Addr.Addr().AsSlice()), Port: be.Addr.Port(), Weight: 1, AddressFamily: 2}
			if err := h.NewDestination(s, d); err != nil {
				tb.Fatal(err)
			}
		}
	}
}
