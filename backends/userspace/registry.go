package userspace

import (
	"context"
	"fmt"
	"io"
	"sync"
)

// registry tracks the sockets and goroutines of one generation of the
// datapath (from the first Sync to Cleanup), so that Cleanup can close every
// connection and wait for every goroutine. After shutdown it accepts nothing:
// a late connection is closed by whoever tried to register it.
type registry struct {
	ctx    context.Context // cancelled by shutdown; bounds backend dials
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	conns  map[io.Closer]struct{}
	wg     sync.WaitGroup
}

func newRegistry() *registry {
	ctx, cancel := context.WithCancel(context.Background())
	return &registry{ctx: ctx, cancel: cancel, conns: make(map[io.Closer]struct{})}
}

// track registers c; false means the registry is shut down and the caller
// must close c itself.
func (r *registry) track(c io.Closer) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

// untrack forgets c (the caller closes it).
func (r *registry) untrack(c io.Closer) {
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
}

// goroutine runs fn in a new goroutine that wait waits for; false means the
// registry is shut down and fn was not started.
func (r *registry) goroutine(fn func()) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		fn()
	}()
	return true
}

// shutdown cancels pending dials and closes every tracked connection.
func (r *registry) shutdown() {
	r.cancel()
	r.mu.Lock()
	r.closed = true
	conns := r.conns
	r.conns = nil
	r.mu.Unlock()
	for c := range conns {
		_ = c.Close()
	}
}

// wait waits for every goroutine started by goroutine, or for ctx.
func (r *registry) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for connections to close: %w", ctx.Err())
	}
}
