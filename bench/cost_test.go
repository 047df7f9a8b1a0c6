package bench

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lbkit/lbkit/internal/netns"
)

// leanProcs is GOMAXPROCS while lean loads run.
const leanProcs = 64

// costConfig shapes BenchmarkDatapathCost; every field can be set from the
// environment (see costConfigFromEnv).
type costConfig struct {
	services []int         // LBKIT_COST_SERVICES, e.g. "1,10000"
	rounds   int           // LBKIT_COST_ROUNDS
	window   time.Duration // LBKIT_COST_WINDOW, measured time per datapath, protocol and round
	warmup   time.Duration // LBKIT_COST_WARMUP, load before each window
	clients  int           // LBKIT_COST_CLIENTS, client threads
	depth    int           // LBKIT_COST_DEPTH, operations in flight per client thread
	only     []string      // LBKIT_COST_DATAPATHS, e.g. "plain,ebpf-tc"; empty: all
	protos   []string      // LBKIT_COST_PROTOS, e.g. "tcp,udp"; default: leanProtos()
}

// costConfigFromEnv reads the configuration, with defaults for unset
// variables; a malformed value is an error naming the variable.
func costConfigFromEnv() (costConfig, error) {
	c := costConfig{services: []int{1, 10000}, rounds: 4, window: 400 * time.Millisecond, warmup: 200 * time.Millisecond, clients: 2, depth: 16, protos: leanProtos()}
	if v := os.Getenv("LBKIT_COST_SERVICES"); v != "" {
		c.services = nil
		for f := range strings.SplitSeq(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 || n-1 > MaxServices {
				return c, fmt.Errorf("LBKIT_COST_SERVICES=%q: %q is not a number of services from 1 to %d", v, f, MaxServices+1)
			}
			c.services = append(c.services, n)
		}
	}
	for _, iv := range []struct {
		name string
		dst  *int
	}{{"LBKIT_COST_ROUNDS", &c.rounds}, {"LBKIT_COST_CLIENTS", &c.clients}, {"LBKIT_COST_DEPTH", &c.depth}} {
		if v := os.Getenv(iv.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1000 {
				return c, fmt.Errorf("%s=%q: want a number from 1 to 1000", iv.name, v)
			}
			*iv.dst = n
		}
	}
	for _, dv := range []struct {
		name string
		dst  *time.Duration
	}{{"LBKIT_COST_WINDOW", &c.window}, {"LBKIT_COST_WARMUP", &c.warmup}} {
		if v := os.Getenv(dv.name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 || d > time.Hour {
				return c, fmt.Errorf("%s=%q: want a duration such as 2s", dv.name, v)
			}
			*dv.dst = d
		}
	}
	if c.window == 0 {
		return c, fmt.Errorf("LBKIT_COST_WINDOW is 0: want a duration such as 2s")
	}
	if v := os.Getenv("LBKIT_COST_DATAPATHS"); v != "" {
		for f := range strings.SplitSeq(v, ",") {
			f = strings.TrimSpace(f)
			if !slices.ContainsFunc(datapaths(), func(d datapath) bool { return d.name == f }) {
				return c, fmt.Errorf("LBKIT_COST_DATAPATHS=%q: unknown datapath %q", v, f)
			}
			c.only = append(c.only, f)
		}
	}
	if v := os.Getenv("LBKIT_COST_PROTOS"); v != "" {
		c.protos = nil
		for f := range strings.SplitSeq(v, ",") {
			f = strings.TrimSpace(f)
			if !slices.Contains(leanProtos(), f) {
				return c, fmt.Errorf("LBKIT_COST_PROTOS=%q: unknown protocol %q, want one of %v", v, f, leanProtos())
			}
			c.protos = append(c.protos, f)
		}
	}
	return c, nil
}

// BenchmarkDatapathCost measures what each datapath costs per new flow, with
// a load lean enough for that cost to show: lean clients in the client
// namespace against lean servers on three backends, all event loops on
// non-blocking sockets with plain system calls, each on its own locked OS
// thread (no Go netpoller, no goroutine or thread switch per operation).
// Every tcp or udp operation comes from a new source address and port, so
// that it is a new flow for the datapath and for conntrack:
//
//   - tcp: connect through the VIP, read an 8-byte reply (the server closes
//     after sending it), close with a reset;
//   - udp: a DNS-like query from a fresh socket through the VIP, one reply;
//   - udp-flow: the same query, but every client slot keeps its socket: the
//     per-packet cost of established flows (no new flow, no socket setup).
//
// For each number of services (the lean VIP plus generated ones, 3
// endpoints each), every datapath gets its own topology and table up front;
// then, for several rounds, each datapath in turn (starting one further
// each round) is measured for a window per protocol, each window paired
// with a plain one next to it, so that the machine's changing load spreads
// over all of them. It reports medians over the rounds:
//
//   - ops/s: connections or queries per second;
//   - cpu-us/op: busy CPU time of the whole machine (/proc/stat:
//     user+nice+system+irq+softirq over all CPUs) per operation, which
//     includes any other load on the machine;
//   - proc-cpu-us/op: this process's CPU time per operation (clients,
//     servers and the kernel work done in their threads, softirqs
//     included), insensitive to other processes' CPU use. It leaves out
//     work done later or elsewhere: the garbage collection of conntrack
//     entries (iptables, nftables; a reset TCP entry expires after 10 s, a
//     UDP one after 30 s) by kworkers, and softirqs left to ksoftirqd;
//   - busy-%: how busy the machine's CPUs were;
//   - load1: the machine's 1-minute load average after each window;
//   - extra-proc-us/op: the datapath's cost over plain routing: its
//     proc-cpu-us/op minus that of a plain window measured right next to
//     it (median over rounds).
//
// "plain" is routing without a datapath, the clients addressing the
// backends directly: the floor. Configure with LBKIT_COST_* (see
// costConfigFromEnv). Every operation's answer is checked; a failed one
// fails the benchmark.
func BenchmarkDatapathCost(b *testing.B) {
	netns.Require(b)
	cfg, err := costConfigFromEnv()
	if err != nil {
		b.Fatal(err)
	}
	var dps []datapath
	for _, d := range datapaths() {
		if len(cfg.only) == 0 || slices.Contains(cfg.only, d.name) {
			dps = append(dps, d)
		}
	}
	// Every client and server thread is locked and spends its time in
	// system calls; when one returns it needs a P. With GOMAXPROCS at the
	// number of CPUs they would queue for Ps and hand them over with futex
	// wake-ups, work that is not the datapath's. The kernel still runs the
	// threads on the machine's CPUs.
	prev := runtime.GOMAXPROCS(leanProcs)
	b.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	for _, n := range cfg.services {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			b.Logf("load average before setup: %.2f", loadAverage())
			rigs := make([]*rig, len(dps))
			for i, d := range dps {
				rigs[i] = newRig(b, d, n)
			}
			res := measureRounds(b, cfg, rigs)
			for _, proto := range cfg.protos {
				for i, d := range dps {
					ws, plain := res.windows[proto][i], res.paired[proto][i]
					b.Run(proto+"/"+d.name, func(b *testing.B) { reportWindows(b, ws, plain) })
				}
			}
		})
	}
}

// roundResults are the windows measured, by protocol and rig.
type roundResults struct {
	windows map[string][][]window
	// paired holds, for each window of a datapath, the plain window
	// measured right before or after it (none without a plain rig).
	paired map[string][][]window
}

// measureRounds measures every rig for cfg.rounds rounds, one rig after the
// other and starting one further each round. When a plain rig is among
// them, every window of a datapath is paired with a plain window measured
// next to it (before it in even rounds, after it in odd ones), so that the
// two see about the same load from the rest of the machine; plain's windows
// are all of those.
func measureRounds(b *testing.B, cfg costConfig, rigs []*rig) roundResults {
	res := roundResults{windows: make(map[string][][]window), paired: make(map[string][][]window)}
	for _, proto := range cfg.protos {
		res.windows[proto] = make([][]window, len(rigs))
		res.paired[proto] = make([][]window, len(rigs))
	}
	base := slices.IndexFunc(rigs, func(r *rig) bool { return r.dp.plain() })
	one := func(round, i int, proto string) window {
		w, err := measure(rigs[i], proto, cfg)
		if err != nil {
			b.Fatalf("round %d, %s %s: %v", round, rigs[i].dp.name, proto, err)
		}
		res.windows[proto][i] = append(res.windows[proto][i], w)
		return w
	}
	for round := range cfg.rounds {
		for j := range rigs {
			i := (round + j) % len(rigs)
			for _, proto := range cfg.protos {
				switch {
				case base < 0:
					one(round, i, proto)
				case i == base:
					if len(rigs) == 1 {
						one(round, i, proto)
					}
				case round%2 == 0:
					p := one(round, base, proto)
					one(round, i, proto)
					res.paired[proto][i] = append(res.paired[proto][i], p)
				default:
					one(round, i, proto)
					res.paired[proto][i] = append(res.paired[proto][i], one(round, base, proto))
				}
			}
		}
		b.Logf("round %d done, load average %.2f", round, loadAverage())
	}
	return res
}

// measure runs a lean load on r for cfg.warmup plus cfg.window and returns
// the window. Any failed operation is an error.
func measure(r *rig, proto string, cfg costConfig) (window, error) {
	l := r.start(proto, cfg.clients, cfg.depth, 0)
	time.Sleep(cfg.warmup)
	var w window
	var err error
	w.start, err = sampleCPU()
	n0 := l.ops.Load()
	if err == nil {
		time.Sleep(cfg.window)
		w.end, err = sampleCPU()
		w.ops = l.ops.Load() - n0
	}
	res := l.finish()
	w.load1, w.conntrack = loadAverage(), conntrackCount(r.topo.Node)
	switch {
	case err != nil:
		return w, err
	case res.fails > 0:
		return w, fmt.Errorf("%d of %d operations failed, the first: %w", res.fails, res.ops+res.fails, res.firstErr)
	case w.ops == 0:
		return w, fmt.Errorf("no operation completed in %v", cfg.window)
	}
	return w, nil
}

// reportWindows reports the medians of ws and logs every window. With the
// plain windows paired with them, it also reports extra-proc-us/op: the
// median over rounds of this datapath's proc-cpu-us/op minus that of the
// plain window next to it, which cancels much of the drift of the machine's
// load.
func reportWindows(b *testing.B, ws, plain []window) {
	var rate, cpu, proc, busy, extra, load []float64
	var each []string
	for i, w := range ws {
		rate = append(rate, w.rate())
		cpu = append(cpu, w.cpuPerOp())
		proc = append(proc, w.procPerOp())
		busy = append(busy, 100*w.busyShare())
		load = append(load, w.load1)
		if i < len(plain) {
			extra = append(extra, w.procPerOp()-plain[i].procPerOp())
		}
		each = append(each, fmt.Sprintf("%.0f/s %.1fus %.1fus %.0f%%", w.rate(), w.cpuPerOp(), w.procPerOp(), 100*w.busyShare()))
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(median(rate), "ops/s")
	b.ReportMetric(median(cpu), "cpu-us/op")
	b.ReportMetric(median(proc), "proc-cpu-us/op")
	b.ReportMetric(median(busy), "busy-%")
	b.ReportMetric(median(load), "load1")
	if len(extra) > 0 {
		b.ReportMetric(median(extra), "extra-proc-us/op")
	}
	if b.N == 1 {
		b.Logf("rounds (ops/s, cpu-us/op, proc-cpu-us/op, machine busy): %s", strings.Join(each, "; "))
		b.Logf("node namespace after the last round: %s", ws[len(ws)-1].conntrack)
	}
}

// median returns the median of v (the mean of the middle two for an even
// count); v is reordered.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	m := len(v) / 2
	if len(v)%2 == 1 {
		return v[m]
	}
	return (v[m-1] + v[m]) / 2
}
