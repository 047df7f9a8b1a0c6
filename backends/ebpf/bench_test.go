package ebpf

import (
	"context"
	"fmt"
	"os/exec"
	"testing"

	"github.com/lbkit/lbkit/bench"
	"github.com/lbkit/lbkit/internal/testenv"
	"github.com/lbkit/lbkit/lb"
)

var benchSizes = []int{1000, 5000, 10000}

// emptyNetns creates a network namespace with only lo, so that a benchmark
// datapath attaches to nothing; it is removed when b ends.
func emptyNetns(b testing.TB) string {
	b.Helper()
	testenv.RequireTool(b, "ip", "iproute2")
	name := fmt.Sprintf("lbkt-ebpfbench-%d", benchNS.next())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		b.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	b.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	return "/var/run/netns/" + name
}

// generated returns the snapshot of n generated services x 3 endpoints.
func generated(b testing.TB, n int) *lb.Snapshot {
	b.Helper()
	items, err := bench.Generate(n, 3)
	if err != nil {
		b.Fatal(err)
	}
	e, err := lb.NewEngine(bench.Discard{}, lb.Config{NodeName: "node-a"})
	if err != nil {
		b.Fatal(err)
	}
	if err := bench.Load(e, items); err != nil {
		b.Fatal(err)
	}
	if err := e.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	return e.Snapshot()
}

// loadedDatapath returns a datapath in an empty namespace with its
// programs loaded and nothing programmed.
func loadedDatapath(b testing.TB) *Datapath {
	b.Helper()
	d, err := New(Options{Netns: emptyNetns(b)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = d.Cleanup(context.Background()) })
	if err := d.Sync(context.Background(), nil, lb.ChangeSet{Full: true}); err != nil {
		b.Fatal(err)
	}
	return d
}

// BenchmarkFullSync measures programming N services x 3 endpoints into
// empty maps (a start, or a resync after the maps were lost): batch writes
// of every backend, slot and service entry.
func BenchmarkFullSync(b *testing.B) {
	requireBPF(b)
	ctx := context.Background()
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			snap := generated(b, n)
			d := loadedDatapath(b)
			for b.Loop() {
				if err := d.Sync(ctx, snap, lb.ChangeSet{Full: true}); err != nil {
					b.Fatal(err)
				}
				// Empty the maps again (a full sync to nothing).
				b.StopTimer()
				if err := d.Sync(ctx, nil, lb.ChangeSet{Full: true}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// BenchmarkResync measures the periodic full sync of an unchanged state:
// every entry is rewritten (repairing what an outsider changed).
func BenchmarkResync(b *testing.B) {
	requireBPF(b)
	ctx := context.Background()
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			snap := generated(b, n)
			d := loadedDatapath(b)
			if err := d.Sync(ctx, snap, lb.ChangeSet{Full: true}); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if err := d.Sync(ctx, snap, lb.ChangeSet{Full: true}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOneEndpointChange measures a partial sync after one endpoint of
// one service changed, in a steady state of N services: one backend entry
// written, one slot rewritten, the old backend deleted.
func BenchmarkOneEndpointChange(b *testing.B) {
	requireBPF(b)
	ctx := context.Background()
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			snap := generated(b, n)
			d := loadedDatapath(b)
			if err := d.Sync(ctx, snap, lb.ChangeSet{Full: true}); err != nil {
				b.Fatal(err)
			}
			// Precompute the alternating states of one service per op.
			const variants = 64
			states := make([][2]*lb.ServiceState, variants)
			for v := range variants {
				i := (v * 7919) % n
				st, _ := snap.Service(bench.ServiceKey(i))
				states[v] = [2]*lb.ServiceState{st, withEndpoint(st, bench.Endpoints(i, 3, 1)[1])}
			}
			op := 0
			for b.Loop() {
				v := op % variants
				st := states[v][(op/variants+1)%2]
				snap = snap.With(st)
				cs := lb.ChangeSet{Changed: map[lb.ServiceKey]struct{}{st.Key(): {}}}
				if err := d.Sync(ctx, snap, cs); err != nil {
					b.Fatal(err)
				}
				op++
			}
		})
	}
}

// withEndpoint returns st with its second backend replaced by ep.
func withEndpoint(st *lb.ServiceState, ep lb.Endpoint) *lb.ServiceState {
	c := *st
	c.Frontends = make([]lb.FrontendState, len(st.Frontends))
	for i, fs := range st.Frontends {
		bs := append([]lb.Backend(nil), fs.Backends...)
		bs[1] = lb.Backend{Addr: ep.Addr, Weight: 1}
		c.Frontends[i] = lb.FrontendState{Frontend: fs.Frontend, Backends: bs}
	}
	return &c
}
