package nftables

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/lbkit/lbkit/bench"
	"github.com/lbkit/lbkit/internal/netns"
	"github.com/lbkit/lbkit/lb"
)

// benchSizes are the service counts of the benchmarks (x 3 endpoints).
var benchSizes = []int{1000, 5000, 10000}

// benchSnapshot returns the snapshot of bench.Generate(n, 3), as the engine
// would select it.
func benchSnapshot(tb testing.TB, n int) *lb.Snapshot {
	tb.Helper()
	items, err := bench.Generate(n, 3)
	if err != nil {
		tb.Fatal(err)
	}
	var s *lb.Snapshot
	for _, it := range items {
		s = s.With(lb.Select(it.Service, it.Endpoints, lb.Node{}))
	}
	return s
}

// benchDatapath returns a datapath on a fresh namespace with nothing but
// loopback (the benchmark only programs, it sends no traffic).
func benchDatapath(b *testing.B) *Datapath {
	b.Helper()
	topo := netns.New(b, netns.Options{Backends: 1, TCPPorts: []uint16{}, UDPPorts: []uint16{}})
	d, err := New(Options{Netns: topo.Node.Path})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = d.Cleanup(b.Context()) })
	return d
}

// BenchmarkFullSync loads N services x 3 endpoints into empty tables: one
// transaction creating the tables, their chains and every element.
func BenchmarkFullSync(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			snap := benchSnapshot(b, n)
			d := benchDatapath(b)
			for b.Loop() {
				b.StopTimer()
				if err := d.Cleanup(b.Context()); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if err := d.Sync(b.Context(), snap, lb.ChangeSet{Full: true}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(memBookkeeping(b, d.cfg.netns, snap))/(1<<20), "bookkeeping-MiB")
		})
	}
}

// BenchmarkResync is a periodic full sync with nothing changed, when
// nobody else committed meanwhile (the ruleset generation tells).
func BenchmarkResync(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			snap := benchSnapshot(b, n)
			d := benchDatapath(b)
			if err := d.Sync(b.Context(), snap, lb.ChangeSet{Full: true}); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if err := d.Sync(b.Context(), snap, lb.ChangeSet{Full: true}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOneEndpointChange changes the endpoints of one service (all
// three move to another port) among N and syncs that change alone.
func BenchmarkOneEndpointChange(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			items, err := bench.Generate(n, 3)
			if err != nil {
				b.Fatal(err)
			}
			snap := benchSnapshot(b, n)
			d := benchDatapath(b)
			if err := d.Sync(b.Context(), snap, lb.ChangeSet{Full: true}); err != nil {
				b.Fatal(err)
			}
			gen := 0
			for b.Loop() {
				b.StopTimer()
				gen++
				i := (gen * 7919) % n
				it := items[i]
				snap = snap.With(lb.Select(it.Service, bench.Endpoints(i, 3, gen), lb.Node{}))
				cs := lb.ChangeSet{Changed: map[lb.ServiceKey]struct{}{it.Service.Key: {}}}
				b.StartTimer()
				if err := d.Sync(b.Context(), snap, cs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// memBookkeeping measures the heap a fresh datapath's bookkeeping holds
// after a full sync of snap (which the engine holds anyway, so it is kept
// alive throughout).
func memBookkeeping(tb testing.TB, netns string, snap *lb.Snapshot) uint64 {
	tb.Helper()
	d, err := New(Options{Netns: netns})
	if err != nil {
		tb.Fatal(err)
	}
	if err := d.Cleanup(tb.Context()); err != nil {
		tb.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := d.Sync(tb.Context(), snap, lb.ChangeSet{Full: true}); err != nil {
		tb.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(snap)
	runtime.KeepAlive(d)
	if after.HeapAlloc < before.HeapAlloc {
		return 0
	}
	return after.HeapAlloc - before.HeapAlloc
}

// BenchmarkResyncReadBack is a periodic full sync with nothing changed
// after someone else committed in the namespace: the tables are read back
// and compared, and nothing is rewritten but the chains.
func BenchmarkResyncReadBack(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			snap := benchSnapshot(b, n)
			d := benchDatapath(b)
			if err := d.Sync(b.Context(), snap, lb.ChangeSet{Full: true}); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				d.gen = 0 // as if another program had committed
				if err := d.Sync(b.Context(), snap, lb.ChangeSet{Full: true}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAddService adds one new service (a verdict map element, so the
// kernel validates the jumps) to N and syncs that change alone. After
// addServicePool additions it deletes them again, one per iteration.
func BenchmarkAddService(b *testing.B) {
	const addServicePool = 2000
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			items, err := bench.Generate(n+addServicePool, 3)
			if err != nil {
				b.Fatal(err)
			}
			snap := benchSnapshot(b, n)
			d := benchDatapath(b)
			if err := d.Sync(b.Context(), snap, lb.ChangeSet{Full: true}); err != nil {
				b.Fatal(err)
			}
			k := 0
			for b.Loop() {
				b.StopTimer()
				it := items[n+k%addServicePool]
				if k/addServicePool%2 == 0 {
					snap = snap.With(lb.Select(it.Service, it.Endpoints, lb.Node{}))
				} else {
					snap = snap.Without(it.Service.Key)
				}
				k++
				cs := lb.ChangeSet{Changed: map[lb.ServiceKey]struct{}{it.Service.Key: {}}}
				b.StartTimer()
				if err := d.Sync(b.Context(), snap, cs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
