package userspace

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// maxDatagram is the largest UDP payload (over IPv6 jumbograms aside).
const maxDatagram = 65535

// udpFrontend relays datagrams between clients and backends. Every client
// address gets a flow: a connected UDP socket to the backend chosen for it.
// Replies return to the client from the frontend socket.
type udpFrontend struct {
	env    *proxyEnv
	pc     *net.UDPConn
	pool   atomic.Pointer[pool]
	closed atomic.Bool
	log    *slog.Logger

	mu    sync.Mutex
	flows map[netip.AddrPort]*flow
}

// flow is one client's association with a backend.
type flow struct {
	client  netip.AddrPort
	backend *backend
	conn    *net.UDPConn
	last    atomic.Int64 // unix nanoseconds of the last datagram either way
}

// touch records activity now.
func (fl *flow) touch() { fl.last.Store(time.Now().UnixNano()) }

func newUDPFrontend(env *proxyEnv, pc *net.UDPConn, p *pool) *udpFrontend {
	f := &udpFrontend{
		env: env, pc: pc, flows: make(map[netip.AddrPort]*flow),
		log: env.log.With("frontend", p.fe.String()),
	}
	f.pool.Store(p)
	return f
}

func (f *udpFrontend) start() bool        { return f.env.reg.goroutine(f.serve) }
func (f *udpFrontend) currentPool() *pool { return f.pool.Load() }

// setPool swaps the backend set and ends the flows whose backend is gone,
// so that their clients' next datagrams are balanced anew (kube-proxy
// clears the conntrack entries of removed UDP backends for the same reason).
func (f *udpFrontend) setPool(p *pool) {
	f.pool.Store(p)
	f.mu.Lock()
	defer f.mu.Unlock()
	for client, fl := range f.flows {
		if !p.has(fl.backend.Addr) {
			delete(f.flows, client)
			_ = fl.conn.Close()
		}
	}
}

// close closes the socket and ends every flow.
func (f *udpFrontend) close() {
	f.closed.Store(true)
	_ = f.pc.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	for client, fl := range f.flows {
		delete(f.flows, client)
		_ = fl.conn.Close()
	}
}

// serve reads client datagrams until the socket is closed and forwards each
// to its flow's backend.
func (f *udpFrontend) serve() {
	buf := make([]byte, maxDatagram)
	var pause time.Duration
	for {
		n, client, err := f.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if f.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			f.log.Warn("read failed; retrying", "error", err, "pause", pause)
			time.Sleep(pause)
			continue
		}
		pause = 0
		fl := f.flowFor(client)
		if fl == nil {
			continue // no backend: dropped
		}
		fl.touch()
		_, err = fl.conn.Write(buf[:n])
		if errors.Is(err, net.ErrClosed) {
			// A Sync ended the flow (its backend is gone) since we looked
			// it up: balance the datagram anew.
			if fl = f.flowFor(client); fl == nil {
				continue
			}
			_, err = fl.conn.Write(buf[:n])
		}
		if err != nil {
			f.log.Debug("forward failed", "client", client,
				"backend", fl.backend.Addr, "error", err)
		}
	}
}

// flowFor returns client's flow, creating it (and its backend socket) if
// needed; nil when there is no usable backend. Only serve calls it, so two
// flows for one client are never created at once.
func (f *udpFrontend) flowFor(client netip.AddrPort) *flow {
	f.mu.Lock()
	fl := f.flows[client]
	f.mu.Unlock()
	if fl != nil {
		return fl
	}
	p := f.pool.Load()
	var conn *net.UDPConn
	b, err := p.choose(client, func(b *backend) error {
		c, err := f.env.dial("udp", b.Addr)
		if err != nil {
			return err
		}
		conn = c.(*net.UDPConn)
		return nil
	})
	if err != nil {
		if !errors.Is(err, errNoBackends) {
			f.log.Debug("no backend reachable", "client", client, "error", err)
		}
		return nil
	}
	fl = &flow{client: client, backend: b, conn: conn}
	fl.touch()
	if !f.env.reg.track(conn) {
		f.endFlow(fl)
		return nil
	}
	f.mu.Lock()
	// A Sync may have swapped the pool (and swept the flows) since we
	// loaded it: never add a flow to a backend that is gone.
	if f.closed.Load() || !f.pool.Load().has(b.Addr) {
		f.mu.Unlock()
		f.endFlow(fl)
		return nil
	}
	f.flows[client] = fl
	f.mu.Unlock()
	if !f.env.reg.goroutine(func() { f.runFlow(fl) }) {
		f.endFlow(fl)
		return nil
	}
	return fl
}

// runFlow relays the backend's replies to the client until the flow has
// been idle for the idle timeout, its socket fails (e.g. ICMP port
// unreachable), or it is closed.
func (f *udpFrontend) runFlow(fl *flow) {
	defer f.endFlow(fl)
	buf := make([]byte, maxDatagram)
	for {
		deadline := time.Unix(0, fl.last.Load()).Add(f.env.udpIdle)
		if !time.Now().Before(deadline) {
			return // idle
		}
		_ = fl.conn.SetReadDeadline(deadline)
		n, err := fl.conn.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue // re-check: a client datagram may have moved last
			}
			return
		}
		fl.touch()
		if _, err := f.pc.WriteToUDPAddrPort(buf[:n], fl.client); err != nil {
			if f.closed.Load() {
				return
			}
			f.log.Debug("reply failed", "client", fl.client, "error", err)
		}
	}
}

// endFlow forgets fl, closes its socket and releases its backend count.
// It runs exactly once per flow that choose returned.
func (f *udpFrontend) endFlow(fl *flow) {
	f.mu.Lock()
	if f.flows[fl.client] == fl {
		delete(f.flows, fl.client)
	}
	f.mu.Unlock()
	f.env.reg.untrack(fl.conn)
	_ = fl.conn.Close()
	fl.backend.stats.active.Add(-1)
}
