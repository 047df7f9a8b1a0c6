//go:build vmtest

package ipvs_test

import (
	"fmt"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	mobyipvs "github.com/moby/ipvs"

	"github.com/lbkit/lbkit/backends/ipvs"
	"github.com/lbkit/lbkit/lb"
)

// cost is the wall-clock, user and system CPU time of one measured run.
type cost struct{ wall, user, sys time.Duration }

// measure runs f and returns what it cost the process.
func measure(tb testing.TB, f func()) cost {
	tb.Helper()
	runtime.GC()
	var r0, r1 syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r0); err != nil {
		tb.Fatal(err)
	}
	t0 := time.Now()
	f()
	wall := time.Since(t0)
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r1); err != nil {
		tb.Fatal(err)
	}
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return cost{wall: wall, user: tv(r1.Utime) - tv(r0.Utime), sys: tv(r1.Stime) - tv(r0.Stime)}
}

// flushNetns deletes every virtual server in the namespace (outside the
// measured time), so that the namespace's deletion does not leave the
// kernel tearing down thousands of them while the next round runs.
func flushNetns(tb testing.TB, ns string) {
	tb.Helper()
	h, err := mobyipvs.New(ns)
	if err != nil {
		tb.Fatal(err)
	}
	defer h.Close()
	if err := h.Flush(); err != nil {
		tb.Fatalf("flush IPVS in %s: %v", ns, err)
	}
}

// floorRun programs states with plain moby/ipvs calls (the floor: one
// NewService and one NewDestination per real server) in a fresh namespace.
func floorRun(b *testing.B, states []*lb.ServiceState) cost {
	ns := bareNetns(b)
	h, err := mobyipvs.New(ns)
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	c := measure(b, func() { programFloor(b, h, states) })
	flushNetns(b, ns)
	return c
}

// lbkitRun is a first full sync of snap into a fresh namespace.
func lbkitRun(b *testing.B, snap *lb.Snapshot) (cost, ipvs.Stats) {
	ns := bareNetns(b)
	dp := newDatapath(b, ns)
	c := measure(b, func() {
		if err := dp.Sync(b.Context(), snap, lb.ChangeSet{Full: true}); err != nil {
			b.Fatal(err)
		}
	})
	st := dp.Stats()
	flushNetns(b, ns)
	return c, st
}

// BenchmarkFullSyncVsFloor alternates the floor (BenchmarkPlainMoby's
// calls) and lbkit's full sync of the same table, each in a fresh
// namespace, for several rounds in the same guest run, and reports the
// medians and the median of the per-round ratios: noise from the host
// hits both sides alike. Run it with -test.benchtime 1x.
func BenchmarkFullSyncVsFloor(b *testing.B) {
	requireIPVS(b)
	const rounds = 3
	for _, n := range sizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			states := table(n)
			snap := snapshotOf(states)
			for b.Loop() {
				var floor, lbkit []cost
				var ratios []float64
				var st ipvs.Stats
				for r := range rounds {
					var f, l cost
					if r%2 == 0 {
						f = floorRun(b, states)
						l, st = lbkitRun(b, snap)
					} else {
						l, st = lbkitRun(b, snap)
						f = floorRun(b, states)
					}
					b.Logf("round %d, %d services: floor %v (user %v sys %v), lbkit %v (user %v sys %v), ratio %.2f",
						r, n, f.wall, f.user, f.sys, l.wall, l.user, l.sys, l.wall.Seconds()/f.wall.Seconds())
					floor, lbkit = append(floor, f), append(lbkit, l)
					ratios = append(ratios, l.wall.Seconds()/f.wall.Seconds())
				}
				report(b, "floor", floor)
				report(b, "lbkit", lbkit)
				b.ReportMetric(median(ratios), "ratio")
				b.ReportMetric(float64(st.Total()), "netlink-calls/op")
				b.ReportMetric(float64(st.SendBatches), "sendmsg/op")
			}
		})
	}
}

// report reports the medians of cs' wall-clock, user and system times.
func report(b *testing.B, what string, cs []cost) {
	pick := func(f func(cost) time.Duration) float64 {
		var xs []float64
		for _, c := range cs {
			xs = append(xs, f(c).Seconds())
		}
		return median(xs)
	}
	b.ReportMetric(pick(func(c cost) time.Duration { return c.wall }), what+"-s")
	b.ReportMetric(pick(func(c cost) time.Duration { return c.user }), what+"-user-s")
	b.ReportMetric(pick(func(c cost) time.Duration { return c.sys }), what+"-sys-s")
}

func median(xs []float64) float64 {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return xs[len(xs)/2]
}
