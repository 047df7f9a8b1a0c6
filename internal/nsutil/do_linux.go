package nsutil

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Do runs fn on a locked OS thread switched into the network namespace at path
// (e.g. /var/run/netns/NAME or /proc/PID/ns/net). An empty path runs fn in the
// caller's namespace. Sockets fn creates stay in that namespace after Do
// returns, so listeners and connections can be used from any goroutine.
//
// If the thread cannot be switched back, it is left locked so that the Go
// runtime discards it when the goroutine ends, rather than reuse a thread in
// the wrong namespace.
func Do(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	target, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("netns %s: %w", path, err)
	}
	defer target.Close()

	errc := make(chan error, 1)
	// A fresh goroutine: if restoring fails we exit it while still locked
	// and the runtime terminates the thread.
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns: open current namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns %s: setns: %w", path, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("netns: restore namespace: %w (thread discarded)", err)
			return // still locked: the thread dies with the goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
