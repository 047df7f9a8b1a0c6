package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lbkit/lbkit/internal/netns"
)

// Protocols of the lean load.
const (
	// protoTCP: a new TCP connection per operation.
	protoTCP = "tcp"
	// protoUDP: a new UDP flow per operation (a DNS-like query from a fresh
	// socket).
	protoUDP = "udp"
	// protoUDPFlow: a query on an established UDP flow; every client slot
	// keeps its socket, so this is the per-packet cost of known flows.
	protoUDPFlow = "udp-flow"
)

// leanProtos lists the protocols of the lean load.
func leanProtos() []string { return []string{protoTCP, protoUDP, protoUDPFlow} }

// leanTimeout bounds every operation of a lean client, so that a broken
// datapath fails it instead of stalling the benchmark.
const leanTimeout = 2 * time.Second

// Client source tuples: operation k uses source address k mod len(sources)
// and port firstSourcePort + (k / len(sources)) mod sourcePorts, so every
// connection or query is a flow no datapath has seen for a long time (64
// addresses cycle through 3.2 million tuples): each one pays for a new NAT
// flow, and no conntrack entry is reused.
const (
	firstSourcePort = 10000
	sourcePorts     = 50000
)

// leanTarget is where the lean clients send operation k: the VIP, or for
// plain routing the backends directly, in turn.
type leanTarget struct {
	addrs []netip.AddrPort
	// direct: addrs[i] is backend i, which must be the one that answers.
	direct bool
}

// leanLoad is a running lean client load: client goroutines, each locked to
// an OS thread in the client namespace, each running an event loop that
// keeps depth operations in flight on non-blocking sockets with plain system
// calls.
type leanLoad struct {
	proto   string
	target  leanTarget
	sources []netip.Addr
	seq     *atomic.Uint64 // the rig's tuple counter, shared across loads
	depth   int            // operations in flight per client
	limit   uint64         // stop after this many operations; 0: until stopped

	claimed atomic.Uint64 // operations started (for limit)
	ops     atomic.Uint64 // operations that got the right answer
	fails   atomic.Uint64 // operations that did not
	stop    atomic.Bool
	wg      sync.WaitGroup

	mu         sync.Mutex
	firstErr   error
	perBackend []uint64
}

// startLean starts the load; stop it with finish.
func startLean(client *netns.Host, proto string, target leanTarget, sources []netip.Addr, seq *atomic.Uint64, clients, depth int, limit uint64, backends int) *leanLoad {
	l := &leanLoad{proto: proto, target: target, sources: sources, seq: seq, depth: depth, limit: limit, perBackend: make([]uint64, backends)}
	for range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			if err := client.Do(l.run); err != nil {
				l.fail(err)
			}
		}()
	}
	return l
}

// flight is one operation in flight.
type flight struct {
	fd       int // -1: none
	src, dst netip.AddrPort
	query    uint32
	backend  int // the backend that must answer, or -1: any
	// flowBackend answered the flow's earlier queries (protoUDPFlow), or -1.
	flowBackend int
	started     time.Time
	got         int
	buf         [64]byte
}

// run is one client's event loop.
func (l *leanLoad) run() error {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("epoll_create: %w", err)
	}
	defer unix.Close(ep)
	counts := make([]uint64, len(l.perBackend))
	fl := make([]flight, l.depth)
	defer func() {
		for i := range fl {
			if fl[i].fd >= 0 {
				_ = unix.Close(fl[i].fd)
			}
		}
		l.mu.Lock()
		for i, c := range counts {
			l.perBackend[i] += c
		}
		l.mu.Unlock()
	}()
	for i := range fl {
		fl[i].fd = -1
		l.begin(ep, fl, i)
	}
	events := make([]unix.EpollEvent, l.depth)
	lastCheck := time.Now()
	for !l.stop.Load() {
		n, err := unix.EpollWait(ep, events, int(leanPoll.Milliseconds()))
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("epoll_wait: %w", err)
		}
		for _, ev := range events[:max(n, 0)] {
			i := int(ev.Fd)
			backend, done, err := l.progress(&fl[i])
			if !done {
				continue
			}
			if err == nil {
				counts[backend]++
				l.ops.Add(1)
				if l.proto == protoUDPFlow {
					l.next(&fl[i])
					continue
				}
			} else {
				l.fail(err)
			}
			l.end(&fl[i])
			l.begin(ep, fl, i)
		}
		if now := time.Now(); now.Sub(lastCheck) >= leanPoll {
			lastCheck = now
			idle := 0
			for i := range fl {
				f := &fl[i]
				if f.fd >= 0 && now.Sub(f.started) > leanTimeout {
					l.end(f)
					l.fail(fmt.Errorf("%s %s -> %s: no answer in %v", l.proto, f.src, f.dst, leanTimeout))
				}
				if f.fd < 0 {
					l.begin(ep, fl, i)
				}
				if f.fd < 0 {
					idle++
				}
			}
			if idle == len(fl) && l.exhausted() {
				return nil
			}
		}
	}
	return nil
}

// exhausted reports whether a limited load has started its last operation.
func (l *leanLoad) exhausted() bool { return l.limit > 0 && l.claimed.Load() >= l.limit }

// begin starts the next operation in fl[i], unless the load is stopping or
// exhausted; a failure to start it is counted and leaves the slot idle
// until the next check.
func (l *leanLoad) begin(ep int, fl []flight, i int) {
	if l.stop.Load() {
		return
	}
	if !l.claim() {
		return
	}
	f := &fl[i]
	k := l.seq.Add(1) - 1
	f.src = netip.AddrPortFrom(l.sources[k%uint64(len(l.sources))], uint16(firstSourcePort+(k/uint64(len(l.sources)))%sourcePorts))
	ti := int(k % uint64(len(l.target.addrs)))
	f.dst, f.backend, f.flowBackend, f.query, f.got = l.target.addrs[ti], -1, -1, uint32(k), 0
	if l.target.direct {
		f.backend = ti
	}
	f.started = time.Now()
	fd, err := l.open(f)
	if err == nil {
		err = unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(i)})
		if err != nil {
			_ = unix.Close(fd)
			err = fmt.Errorf("epoll_ctl: %w", err)
		}
	}
	if err != nil {
		l.fail(fmt.Errorf("%s %s -> %s: %w", l.proto, f.src, f.dst, err))
		return
	}
	f.fd = fd
}

// claim reports whether another operation may start, counting it.
func (l *leanLoad) claim() bool {
	if l.stop.Load() {
		return false
	}
	if l.limit > 0 && l.claimed.Add(1) > l.limit {
		l.claimed.Store(l.limit)
		return false
	}
	return true
}

// next sends the next query on f's established flow (protoUDPFlow), or ends
// f when the load is stopping or exhausted, or the send fails.
func (l *leanLoad) next(f *flight) {
	if !l.claim() {
		l.end(f)
		return
	}
	f.query, f.got, f.started = uint32(l.seq.Add(1)-1), 0, time.Now()
	if err := sendQuery(f.fd, f.query); err != nil {
		l.fail(fmt.Errorf("%s %s -> %s: %w", l.proto, f.src, f.dst, err))
		l.end(f)
	}
}

// sendQuery sends query q on the connected UDP socket fd.
func sendQuery(fd int, q uint32) error {
	var b [leanQueryLen]byte
	binary.BigEndian.PutUint32(b[:], q)
	if _, err := unix.Write(fd, b[:]); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	return nil
}

// open opens f's socket and sends its connection request or query.
func (l *leanLoad) open(f *flight) (int, error) {
	typ := unix.SOCK_DGRAM
	if l.proto == protoTCP {
		typ = unix.SOCK_STREAM
	}
	fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	if err := l.request(fd, f); err != nil {
		_ = unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// request binds fd to f's source and connects it to f's destination: a TCP
// connection request, or for UDP a connected socket (which accepts only a
// reply from the destination, so a reply the datapath failed to translate
// back is lost, not accepted) that then sends the query.
func (l *leanLoad) request(fd int, f *flight) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fmt.Errorf("set SO_REUSEADDR: %w", err)
	}
	if l.proto == protoTCP {
		// Close with a reset: no TIME_WAIT on either side.
		if err := unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}); err != nil {
			return fmt.Errorf("set SO_LINGER: %w", err)
		}
	}
	if err := unix.Bind(fd, sockaddr(f.src)); err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	if err := unix.Connect(fd, sockaddr(f.dst)); err != nil && !errors.Is(err, unix.EINPROGRESS) {
		return fmt.Errorf("connect: %w", err)
	}
	if l.proto != protoTCP {
		return sendQuery(fd, f.query)
	}
	return nil
}

// progress reads what arrived for f. done reports that the operation is
// over: answered by backend, or failed with err.
func (l *leanLoad) progress(f *flight) (backend int, done bool, err error) {
	if f.fd < 0 {
		return 0, false, nil // an event for a socket already closed
	}
	want := leanReplyLen
	if l.proto != protoTCP {
		want = leanReplyLen + leanQueryLen
	}
	n, err := unix.Read(f.fd, f.buf[f.got:])
	switch {
	case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
		return 0, false, nil
	case err != nil:
		return 0, true, fmt.Errorf("%s %s -> %s: read: %w", l.proto, f.src, f.dst, err)
	case n == 0:
		return 0, true, fmt.Errorf("%s %s -> %s: closed after %d of %d reply bytes", l.proto, f.src, f.dst, f.got, want)
	}
	f.got += n
	if l.proto == protoTCP && f.got < want {
		return 0, false, nil
	}
	backend, err = l.check(f, want)
	if err != nil {
		return 0, true, fmt.Errorf("%s %s -> %s: %w", l.proto, f.src, f.dst, err)
	}
	return backend, true, nil
}

// check verifies f's reply: from a known backend (the addressed one with
// plain routing; the same as before on an established flow) that saw f's
// own source, echoing a UDP query.
func (l *leanLoad) check(f *flight, want int) (int, error) {
	if f.got != want {
		return 0, fmt.Errorf("reply %x is %d bytes, want %d", f.buf[:f.got], f.got, want)
	}
	backend, peer, err := parseReply(f.buf[:leanReplyLen])
	switch {
	case err != nil:
		return 0, err
	case backend >= len(l.perBackend):
		return 0, fmt.Errorf("reply from unknown backend %d", backend)
	case f.backend >= 0 && backend != f.backend:
		return 0, fmt.Errorf("reply from backend %d, sent to backend %d", backend, f.backend)
	case peer != f.src:
		return 0, fmt.Errorf("backend %d saw the client as %s", backend, peer)
	case l.proto != protoTCP && binary.BigEndian.Uint32(f.buf[leanReplyLen:want]) != f.query:
		return 0, fmt.Errorf("reply %x does not echo query %08x", f.buf[:want], f.query)
	case f.flowBackend >= 0 && backend != f.flowBackend:
		return 0, fmt.Errorf("reply from backend %d, the flow's earlier ones from backend %d", backend, f.flowBackend)
	}
	f.flowBackend = backend
	return backend, nil
}

// end closes f's socket (with a reset, for TCP).
func (l *leanLoad) end(f *flight) {
	_ = unix.Close(f.fd)
	f.fd = -1
}

// fail records a failed operation.
func (l *leanLoad) fail(err error) {
	l.fails.Add(1)
	l.mu.Lock()
	if l.firstErr == nil {
		l.firstErr = err
	}
	l.mu.Unlock()
}

// leanResult is what a finished load did.
type leanResult struct {
	ops, fails uint64
	firstErr   error
	perBackend []uint64
}

// finish stops the load (operations in flight are abandoned, not counted),
// waits for its clients and returns its result. With a limit, it first
// waits for the limit's operations to end.
func (l *leanLoad) finish() leanResult {
	if l.limit == 0 {
		l.stop.Store(true)
	}
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return leanResult{ops: l.ops.Load(), fails: l.fails.Load(), firstErr: l.firstErr, perBackend: l.perBackend}
}

// sockaddr converts an IPv4 address and port.
func sockaddr(ap netip.AddrPort) *unix.SockaddrInet4 {
	return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
}
