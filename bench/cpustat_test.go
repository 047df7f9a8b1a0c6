package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lbkit/lbkit/internal/netns"
)

// userHZ is the unit of /proc/stat: clock ticks of 1/100 s on Linux.
const userHZ = 100

// cpuSample is the machine's and this process's CPU time at one instant.
type cpuSample struct {
	at time.Time
	// busy and total are ticks summed over all CPUs from /proc/stat: busy is
	// user+nice+system+irq+softirq (steal and idle/iowait excluded), total
	// adds idle, iowait and steal.
	busy, total uint64
	// proc is this process's user+system time (getrusage). It includes the
	// softirq work the kernel does in the context of the process's threads
	// (sending and receiving on veth pairs), but not ksoftirqd's.
	proc time.Duration
}

// sampleCPU reads the current CPU times.
func sampleCPU() (cpuSample, error) {
	s := cpuSample{at: time.Now()}
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s, fmt.Errorf("read /proc/stat: %w", err)
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	fields := strings.Fields(line)
	if len(fields) < 9 || fields[0] != "cpu" {
		return s, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	// cpu user nice system idle iowait irq softirq steal [guest guest_nice];
	// guest time is already counted in user.
	var v [8]uint64
	for i := range v {
		if v[i], err = strconv.ParseUint(fields[i+1], 10, 64); err != nil {
			return s, fmt.Errorf("/proc/stat: field %d of %q: %w", i+1, line, err)
		}
	}
	s.busy = v[0] + v[1] + v[2] + v[5] + v[6]
	s.total = s.busy + v[3] + v[4] + v[7]
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return s, fmt.Errorf("getrusage: %w", err)
	}
	s.proc = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return s, nil
}

// loadAverage returns the 1-minute load average (/proc/loadavg), or -1 when
// it cannot be read.
func loadAverage() float64 {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f, _, _ := strings.Cut(string(raw), " ")
	v, err := strconv.ParseFloat(f, 64)
	if err != nil {
		return -1
	}
	return v
}

// conntrackCount describes the number of conntrack entries in h's namespace
// (/proc/sys/net shows the namespace of the thread that opens it).
func conntrackCount(h *netns.Host) string {
	var out string
	err := h.Do(func() error {
		raw, err := os.ReadFile("/proc/sys/net/netfilter/nf_conntrack_count")
		if err != nil {
			return err
		}
		out = strings.TrimSpace(string(raw)) + " conntrack entries"
		return nil
	})
	if err != nil {
		return fmt.Sprintf("no conntrack count (%v)", err)
	}
	return out
}

// window is one measurement: operations completed between two samples.
type window struct {
	ops        uint64
	start, end cpuSample
	// load1 is the 1-minute load average at the end of the window.
	load1 float64
	// conntrack describes the conntrack entries in the node's namespace at
	// the end of the window.
	conntrack string
}

// rate is operations per second.
func (w window) rate() float64 { return float64(w.ops) / w.end.at.Sub(w.start.at).Seconds() }

// cpuPerOp is the machine's busy CPU time per operation, in microseconds.
func (w window) cpuPerOp() float64 {
	return float64(w.end.busy-w.start.busy) * (1e6 / userHZ) / float64(w.ops)
}

// procPerOp is this process's CPU time per operation, in microseconds.
func (w window) procPerOp() float64 {
	return float64((w.end.proc - w.start.proc).Microseconds()) / float64(w.ops)
}

// busyShare is the fraction of the machine's CPU time that was busy.
func (w window) busyShare() float64 {
	return float64(w.end.busy-w.start.busy) / float64(w.end.total-w.start.total)
}
