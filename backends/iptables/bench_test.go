package iptables

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/lbkit/lbkit/bench"
	"github.com/lbkit/lbkit/lb"
)

// benchSizes are the service counts of the benchmarks (3 endpoints each).
var benchSizes = []int{1000, 5000, 10000}

// benchEngine returns an engine driving a datapath of flavour f in a fresh
// namespace, loaded with n generated services (not synced yet).
func benchEngine(b *testing.B, f Flavour, n int) (*lb.Engine, *Datapath) {
	b.Helper()
	return benchEngineOpts(b, f, n, Options{})
}

// benchEngineOpts is benchEngine with datapath options.
func benchEngineOpts(b *testing.B, f Flavour, n int, opts Options) (*lb.Engine, *Datapath) {
	b.Helper()
	ns := testNetns(b)
	opts.Logger = zap.NewNop()
	d := newTest(b, f, ns, opts)
	items, err := bench.Generate(n, 3)
	if err != nil {
		b.Fatal(err)
	}
	eng, err := lb.NewEngine(d, lb.Config{NodeName: "node-a"})
	if err != nil {
		b.Fatal(err)
	}
	if err := bench.Load(eng, items); err != nil {
		b.Fatal(err)
	}
	return eng, d
}

// report adds the time per sync spent generating rules and in
// iptables-restore (wall clock and its CPU), and their shares.
func report(b *testing.B, d *Datapath, before timing, syncs int, total time.Duration) {
	t := d.timing
	per := func(x time.Duration) float64 { return float64(x) / float64(syncs) / 1e6 }
	gen, rest, cpu := t.generate-before.generate, t.restore-before.restore, t.restoreCPU-before.restoreCPU
	b.ReportMetric(per(gen), "gen-ms/sync")
	b.ReportMetric(per(rest), "restore-ms/sync")
	b.ReportMetric(per(cpu), "restore-cpu-ms/sync")
	b.ReportMetric(100*float64(total-rest)/float64(total), "%not-restore")
}

// BenchmarkFullSync measures full syncs of N services x 3 endpoints
// through the engine: "first" programs an empty namespace (a process
// start), "resync" rewrites every chain over the same rules (the periodic
// full sync). Run as root: go test -run ^$ -bench FullSync ./backends/iptables/
func BenchmarkFullSync(b *testing.B) {
	for _, f := range flavours {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/first/services=%d", f, n), func(b *testing.B) {
				eng, d := benchEngine(b, f, n)
				ctx := context.Background()
				var total time.Duration
				before := d.timing
				syncs := 0
				for b.Loop() {
					b.StopTimer()
					if err := d.Cleanup(ctx); err != nil {
						b.Fatal(err)
					}
					eng.RequestFullSync()
					start := time.Now()
					b.StartTimer()
					if err := eng.Flush(ctx); err != nil {
						b.Fatal(err)
					}
					total += time.Since(start)
					syncs++
				}
				report(b, d, before, syncs, total)
			})
			b.Run(fmt.Sprintf("%s/resync/services=%d", f, n), func(b *testing.B) {
				eng, d := benchEngine(b, f, n)
				ctx := context.Background()
				if err := eng.Flush(ctx); err != nil {
					b.Fatal(err)
				}
				before := d.timing
				start := time.Now()
				syncs := 0
				for b.Loop() {
					eng.RequestFullSync()
					if err := eng.Flush(ctx); err != nil {
						b.Fatal(err)
					}
					syncs++
				}
				report(b, d, before, syncs, time.Since(start))
			})
		}
	}
}

// BenchmarkFullSyncRemoteEndpoints is the first full sync at 10,000
// services with Options.NodeName set while the generated endpoints are on
// no node of that name, as on a node of a large cluster where almost every
// endpoint runs elsewhere: no hairpin rules.
func BenchmarkFullSyncRemoteEndpoints(b *testing.B) {
	for _, f := range flavours {
		b.Run(fmt.Sprintf("%s/services=10000", f), func(b *testing.B) {
			eng, d := benchEngineOpts(b, f, 10000, Options{NodeName: "node-a"})
			ctx := context.Background()
			var total time.Duration
			before := d.timing
			syncs := 0
			for b.Loop() {
				b.StopTimer()
				if err := d.Cleanup(ctx); err != nil {
					b.Fatal(err)
				}
				eng.RequestFullSync()
				start := time.Now()
				b.StartTimer()
				if err := eng.Flush(ctx); err != nil {
					b.Fatal(err)
				}
				total += time.Since(start)
				syncs++
			}
			report(b, d, before, syncs, total)
		})
	}
}

// BenchmarkOneEndpointChange measures a partial sync after one endpoint
// change (the endpoints of one service move to another port) in a steady
// state of N services, through the engine.
func BenchmarkOneEndpointChange(b *testing.B) {
	for _, f := range flavours {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/services=%d", f, n), func(b *testing.B) {
				eng, d := benchEngine(b, f, n)
				ctx := context.Background()
				if err := eng.Flush(ctx); err != nil {
					b.Fatal(err)
				}
				before := d.timing
				start := time.Now()
				i := 0
				for b.Loop() {
					i++
					svc := (i * 7919) % n
					if err := eng.SetEndpoints(bench.ServiceKey(svc), bench.Endpoints(svc, 3, i)); err != nil {
						b.Fatal(err)
					}
					if err := eng.Flush(ctx); err != nil {
						b.Fatal(err)
					}
				}
				report(b, d, before, i, time.Since(start))
			})
		}
	}
}
