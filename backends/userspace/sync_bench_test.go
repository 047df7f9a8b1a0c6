package userspace

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/lbkit/lbkit/lb"
)

// benchServices is the number of services (one loopback listener each) of
// the sync benchmarks.
const benchServices = 1000

// syncedBench returns a datapath serving benchServices services, each on
// its own loopback address (127.1.x.y:18080), and their snapshot.
func syncedBench(b *testing.B) (*Datapath, *lb.Snapshot) {
	b.Helper()
	d := newTestDatapath(b, Options{Logger: slog.New(slog.DiscardHandler)})
	be := netip.MustParseAddrPort("127.0.0.1:9")
	var s *lb.Snapshot
	for i := range benchServices {
		fe := lb.Frontend{Addr: netip.AddrFrom4([4]byte{127, 1, byte(i / 250), byte(1 + i%250)}), Port: 18080, Protocol: lb.TCP, Kind: lb.ClusterIP}
		s = s.With(simpleState(fmt.Sprintf("svc-%04d", i), lb.Random, fe, backendsOf(be)))
	}
	fullSync(b, d, s)
	return d, s
}

// BenchmarkSyncResync measures the periodic full sync of an unchanged
// state of benchServices services: nothing to do but find that out.
func BenchmarkSyncResync(b *testing.B) {
	d, s := syncedBench(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := d.Sync(context.Background(), s, lb.ChangeSet{Full: true}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSyncOneEndpointChange measures a partial sync after the backend
// of one service changed, among benchServices services.
func BenchmarkSyncOneEndpointChange(b *testing.B) {
	d, s := syncedBench(b)
	key := lb.ServiceKey("svc-0500")
	st, _ := s.Service(key)
	states := [2]*lb.ServiceState{st, stateOf(st.Service, backendsOf(netip.MustParseAddrPort("127.0.0.1:10")))}
	cs := lb.ChangeSet{Changed: map[lb.ServiceKey]struct{}{key: {}}}
	b.ReportAllocs()
	op := 0
	for b.Loop() {
		op++
		s = s.With(states[op%2])
		if err := d.Sync(context.Background(), s, cs); err != nil {
			b.Fatal(err)
		}
	}
}
