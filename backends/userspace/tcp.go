package userspace

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"time"
)

// tcpFrontend accepts connections on one listener and relays each to a
// backend.
type tcpFrontend struct {
	env    *proxyEnv
	ln     *net.TCPListener
	pool   atomic.Pointer[pool]
	closed atomic.Bool
	log    *slog.Logger
}

func newTCPFrontend(env *proxyEnv, ln *net.TCPListener, p *pool) *tcpFrontend {
	f := &tcpFrontend{env: env, ln: ln, log: env.log.With("frontend", p.fe.String())}
	f.pool.Store(p)
	return f
}

func (f *tcpFrontend) start() bool        { return f.env.reg.goroutine(f.serve) }
func (f *tcpFrontend) setPool(p *pool)    { f.pool.Store(p) }
func (f *tcpFrontend) currentPool() *pool { return f.pool.Load() }

// close stops accepting; connections in progress continue.
func (f *tcpFrontend) close() {
	f.closed.Store(true)
	_ = f.ln.Close()
}

// serve accepts until the listener is closed. Other accept errors (e.g. out
// of file descriptors) are retried with a growing pause, as net/http does.
func (f *tcpFrontend) serve() {
	var pause time.Duration
	for {
		c, err := f.ln.AcceptTCP()
		if err != nil {
			if f.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			f.log.Warn("accept failed; retrying", "error", err, "pause", pause)
			time.Sleep(pause)
			continue
		}
		pause = 0
		if !f.env.reg.goroutine(func() { f.handle(c) }) {
			_ = c.Close()
		}
	}
}

// handle balances one client connection: it dials a backend (falling over
// to the next on failure) and relays until both directions are done.
func (f *tcpFrontend) handle(c *net.TCPConn) {
	reg := f.env.reg
	if !reg.track(c) {
		_ = c.Close()
		return
	}
	defer func() {
		reg.untrack(c)
		_ = c.Close()
	}()
	p := f.pool.Load()
	if len(p.backends) == 0 {
		_ = c.SetLinger(0) // reset: there is nobody to talk to
		return
	}
	client := c.RemoteAddr().(*net.TCPAddr).AddrPort()
	var bc *net.TCPConn
	b, err := p.choose(client, func(b *backend) error {
		conn, err := f.env.dial("tcp", b.Addr)
		if err != nil {
			return err
		}
		bc = conn.(*net.TCPConn)
		return nil
	})
	if err != nil {
		f.log.Debug("no backend reachable", "client", client, "error", err)
		_ = c.SetLinger(0)
		return
	}
	defer b.stats.active.Add(-1)
	if !reg.track(bc) {
		_ = bc.Close()
		return
	}
	defer func() {
		reg.untrack(bc)
		_ = bc.Close()
	}()
	relay(c, bc)
}

// relay copies both ways until both directions are done. When one side
// finishes sending (EOF), the other side's write half is closed, so
// half-closed connections work end to end. An error in either direction
// (a reset, a failed write) resets both connections.
func relay(client, backend *net.TCPConn) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		copyHalf(backend, client)
	}()
	copyHalf(client, backend)
	<-done
}

// copyHalf copies src to dst (with splice on Linux) and then half-closes
// dst, or aborts both on error.
func copyHalf(dst, src *net.TCPConn) {
	if _, err := io.Copy(dst, src); err != nil {
		_ = dst.SetLinger(0)
		_ = src.SetLinger(0)
		_ = dst.Close()
		_ = src.Close()
		return
	}
	_ = dst.CloseWrite()
}
