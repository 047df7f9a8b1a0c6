package iptables

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"syscall"
	"testing"
	"time"

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
	opts.Logger = slog.New(slog.DiscardHandler)
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

// meter accumulates, over the timed syncs of a benchmark, their wall-clock
// time and the CPU time this process used during them (engine, rule
// generation, writing the input, and the Go runtime's work such as garbage
// collection); iptables-restore's own CPU is in the datapath's timing.
type meter struct {
	syncs      int
	wall, self time.Duration
}

// sync times one call of f (a sync).
func (m *meter) sync(b *testing.B, f func() error) {
	cpu0, start := selfCPU(), time.Now()
	if err := f(); err != nil {
		b.Fatal(err)
	}
	m.wall += time.Since(start)
	m.self += selfCPU() - cpu0
	m.syncs++
}

// selfCPU returns the user and system CPU time this process has used,
// without its children's.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// report adds the time per sync spent generating rules and in
// iptables-restore (wall clock and its CPU), and the shares of the sync not
// spent in iptables-restore: of the wall-clock time (%not-restore, which a
// loaded machine inflates) and of the CPU time of this process and
// iptables-restore together (%cpu-not-restore, what the issue's "engine +
// rule generation CPU" goal measures).
func report(b *testing.B, d *Datapath, before timing, m meter) {
	t := d.timing
	per := func(x time.Duration) float64 { return float64(x) / float64(m.syncs) / 1e6 }
	gen, rest, cpu := t.generate-before.generate, t.restore-before.restore, t.restoreCPU-before.restoreCPU
	b.ReportMetric(per(gen), "gen-ms/sync")
	b.ReportMetric(per(rest), "restore-ms/sync")
	b.ReportMetric(per(cpu), "restore-cpu-ms/sync")
	b.ReportMetric(per(m.self), "self-cpu-ms/sync")
	b.ReportMetric(100*float64(m.wall-rest)/float64(m.wall), "%not-restore")
	b.ReportMetric(100*float64(m.self)/float64(m.self+cpu), "%cpu-not-restore")
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
				benchFirstSyncs(b, eng, d)
			})
			b.Run(fmt.Sprintf("%s/resync/services=%d", f, n), func(b *testing.B) {
				eng, d := benchEngine(b, f, n)
				ctx := context.Background()
				if err := eng.Flush(ctx); err != nil {
					b.Fatal(err)
				}
				before := d.timing
				var m meter
				for b.Loop() {
					eng.RequestFullSync()
					m.sync(b, func() error { return eng.Flush(ctx) })
				}
				report(b, d, before, m)
			})
		}
	}
}

// benchFirstSyncs measures first full syncs: each starts from an empty
// namespace (Cleanup, outside the timing), as at a process start.
func benchFirstSyncs(b *testing.B, eng *lb.Engine, d *Datapath) {
	ctx := context.Background()
	var m meter
	before := d.timing
	for b.Loop() {
		b.StopTimer()
		if err := d.Cleanup(ctx); err != nil {
			b.Fatal(err)
		}
		// Collect Cleanup's garbage (it parses the whole table) so
		// that it is not charged to the sync.
		runtime.GC()
		eng.RequestFullSync()
		b.StartTimer()
		m.sync(b, func() error { return eng.Flush(ctx) })
	}
	report(b, d, before, m)
}

// BenchmarkFullSyncRemoteEndpoints is the first full sync at 10,000
// services with Options.NodeName set while the generated endpoints are on
// no node of that name, as on a node of a large cluster where almost every
// endpoint runs elsewhere: no hairpin rules.
func BenchmarkFullSyncRemoteEndpoints(b *testing.B) {
	for _, f := range flavours {
		b.Run(fmt.Sprintf("%s/services=10000", f), func(b *testing.B) {
			eng, d := benchEngineOpts(b, f, 10000, Options{NodeName: "node-a"})
			benchFirstSyncs(b, eng, d)
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
				var m meter
				i := 0
				for b.Loop() {
					i++
					svc := (i * 7919) % n
					m.sync(b, func() error {
						if err := eng.SetEndpoints(bench.ServiceKey(svc), bench.Endpoints(svc, 3, i)); err != nil {
							return err
						}
						return eng.Flush(ctx)
					})
				}
				report(b, d, before, m)
			})
		}
	}
}
