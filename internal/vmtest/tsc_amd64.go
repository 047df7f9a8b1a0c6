package vmtest

import "time"

// rdtsc reads the time stamp counter.
func rdtsc() uint64

// hostTSCkHz measures the host's time stamp counter rate in kHz against
// the monotonic clock (the best of three 20 ms windows, so that a
// preemption in between does not skew it).
func hostTSCkHz() uint64 {
	var best uint64
	for range 3 {
		t0, c0 := time.Now(), rdtsc()
		time.Sleep(20 * time.Millisecond)
		c1, t1 := rdtsc(), time.Now()
		us := uint64(t1.Sub(t0).Microseconds())
		if us == 0 || c1 <= c0 {
			continue
		}
		// Preemption between the reads only lengthens the clock interval
		// relative to the counter's, so the largest ratio is closest.
		best = max(best, (c1-c0)*1000/us)
	}
	return best
}
