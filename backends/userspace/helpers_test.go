package userspace

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lbkit/lbkit/internal/testenv"
	"github.com/lbkit/lbkit/lb"
)

// waitLimit bounds the polls tests use to wait for asynchronous effects (a
// counter dropping after a close); it is a safety net, not an assertion.
const waitLimit = 20 * time.Second

// startTCPBackend starts a TCP server on 127.0.0.1 that greets every
// connection with "name\n", echoes what it reads and, after the client's
// EOF, sends "bye\n" and closes. It stops when the test ends.
func startTCPBackend(t testing.TB, name string) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("backend %s: %v", name, err)
	}
	var mu sync.Mutex
	conns := make(map[net.Conn]struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serveEcho(c, name)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// serveEcho is one connection of a TCP test backend.
func serveEcho(c net.Conn, name string) {
	if _, err := fmt.Fprintf(c, "%s\n", name); err != nil {
		return
	}
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				_, _ = io.WriteString(c, "bye\n")
			}
			return
		}
	}
}

// startUDPBackend starts a UDP server on 127.0.0.1 that answers every
// datagram with "name:" and the datagram.
func startUDPBackend(t testing.TB, name string) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatalf("backend %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteToUDPAddrPort(append([]byte(name+":"), buf[:n]...), from)
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		<-done
	})
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// freePort returns a port of 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB, proto lb.Protocol) uint16 {
	t.Helper()
	var c io.Closer
	var port int
	switch proto {
	case lb.UDP:
		pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		c, port = pc, pc.LocalAddr().(*net.UDPAddr).Port
	default:
		ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		c, port = ln, ln.Addr().(*net.TCPAddr).Port
	}
	c.Close()
	return uint16(port)
}

// deadAddr returns a 127.0.0.1 TCP address nobody listens on.
func deadAddr(t testing.TB) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), freePort(t, lb.TCP))
}

// loopFrontend returns a ClusterIP frontend on a free port of 127.0.0.1.
func loopFrontend(t testing.TB, proto lb.Protocol) lb.Frontend {
	return lb.Frontend{Addr: netip.MustParseAddr("127.0.0.1"), Port: freePort(t, proto), Protocol: proto, Kind: lb.ClusterIP}
}

// feAddr returns the address clients connect to for fe.
func feAddr(fe lb.Frontend) netip.AddrPort {
	ip := fe.Addr
	if ip.IsUnspecified() {
		ip = netip.MustParseAddr("127.0.0.1")
	}
	return netip.AddrPortFrom(ip, fe.Port)
}

// backendsOf lists addresses as weight-1 backends.
func backendsOf(addrs ...netip.AddrPort) []lb.Backend {
	bs := make([]lb.Backend, len(addrs))
	for i, a := range addrs {
		bs[i] = lb.Backend{Addr: a, Weight: 1}
	}
	return bs
}

// stateOf builds the selected state of svc with the same backends on every
// frontend, as lb.Select would for a Cluster policy.
func stateOf(svc *lb.Service, bs []lb.Backend) *lb.ServiceState {
	st := &lb.ServiceState{Service: svc}
	for _, fe := range svc.Frontends {
		st.Frontends = append(st.Frontends, lb.FrontendState{Frontend: fe, Backends: bs})
	}
	for _, b := range bs {
		st.Endpoints = append(st.Endpoints, lb.Endpoint{Addr: b.Addr, Ready: true, Serving: true, Weight: b.Weight})
	}
	return st
}

// simpleState is a one-frontend service over bs.
func simpleState(key string, sched lb.Scheduler, fe lb.Frontend, bs []lb.Backend) *lb.ServiceState {
	return stateOf(&lb.Service{Key: lb.ServiceKey(key), Frontends: []lb.Frontend{fe}, Scheduler: sched}, bs)
}

// newTestDatapath returns a datapath logging to the test, closed when the
// test ends.
func newTestDatapath(t testing.TB, opts Options) *Datapath {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testenv.LoggerAt(t, slog.LevelInfo)
	}
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d
}

// fullSync syncs the whole snapshot and fails the test on error.
func fullSync(t testing.TB, d *Datapath, s *lb.Snapshot) {
	t.Helper()
	if err := d.Sync(context.Background(), s, lb.ChangeSet{Full: true}); err != nil {
		t.Fatalf("Sync: %v", err)
	}
}

// changes names keys for a partial Sync.
func changes(keys ...string) lb.ChangeSet {
	cs := lb.ChangeSet{Changed: make(map[lb.ServiceKey]struct{})}
	for _, k := range keys {
		cs.Changed[lb.ServiceKey(k)] = struct{}{}
	}
	return cs
}

// testConn is a client connection through the proxy.
type testConn struct {
	*net.TCPConn
	r *bufio.Reader
}

// line reads one line without its newline.
func (c *testConn) line(t testing.TB) string {
	t.Helper()
	s, err := c.r.ReadString('\n')
	if err != nil {
		t.Fatalf("read from %s: %q, %v", c.RemoteAddr(), s, err)
	}
	return strings.TrimSuffix(s, "\n")
}

// dialVia connects to addr from source IP src (invalid = any) and returns
// the connection with the backend's greeting read.
func dialVia(t testing.TB, addr netip.AddrPort, src netip.Addr) (*testConn, string) {
	t.Helper()
	var dl net.Dialer
	if src.IsValid() {
		dl.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
	}
	c, err := dl.Dial("tcp", addr.String())
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	tc := &testConn{TCPConn: c.(*net.TCPConn), r: bufio.NewReader(c)}
	t.Cleanup(func() { tc.Close() })
	return tc, tc.line(t)
}

// hitTCP makes one connection to addr and returns the backend's name.
func hitTCP(t testing.TB, addr netip.AddrPort) string {
	t.Helper()
	c, name := dialVia(t, addr, netip.Addr{})
	c.Close()
	return name
}

// hitTCPFrom is hitTCP from source IP src.
func hitTCPFrom(t testing.TB, addr netip.AddrPort, src netip.Addr) string {
	t.Helper()
	c, name := dialVia(t, addr, src)
	c.Close()
	return name
}

// udpClient is a client socket: one flow through the proxy.
func udpClient(t testing.TB, addr netip.AddrPort) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatalf("dial udp %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// askUDP sends msg on c and returns the reply, retrying a few times since
// UDP may drop (the first datagram of a flow is never dropped by the proxy,
// but the kernel may).
func askUDP(t testing.TB, c *net.UDPConn, msg string) string {
	t.Helper()
	buf := make([]byte, 65535)
	for range 20 {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatalf("udp write: %v", err)
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		n, err := c.Read(buf)
		if err == nil {
			return string(buf[:n])
		}
		if !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err) {
			t.Fatalf("udp read: %v", err)
		}
	}
	t.Fatalf("no UDP reply from %s", c.RemoteAddr())
	return ""
}

// isTimeout reports a deadline error.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// activeCounts returns the proxy's live connection counts of a frontend's
// backends, in pool order.
func activeCounts(t testing.TB, d *Datapath, id lb.FrontendID) []int64 {
	t.Helper()
	d.mu.RLock()
	defer d.mu.RUnlock()
	key, ok := d.frontends[id]
	if !ok {
		t.Fatalf("frontend %s not served", id)
	}
	return serviceOf(d, key).frontends[id].currentPool().active()
}

// waitFor polls cond until it holds; the limit only keeps a broken test
// from hanging.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// count tallies names.
func count(names []string) map[string]int {
	m := make(map[string]int)
	for _, n := range names {
		m[n]++
	}
	return m
}

// expectClosed fails unless the peer closes or resets c; the read deadline
// only keeps a broken proxy from hanging the test.
func expectClosed(t testing.TB, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(waitLimit))
	n, err := c.Read(make([]byte, 64))
	switch {
	case err == nil:
		t.Fatalf("read %d bytes from %s, want it closed", n, c.RemoteAddr())
	case isTimeout(err):
		t.Fatalf("%s is still open", c.RemoteAddr())
	}
}

// expectAcceptedThenClosed connects to addr and fails unless the proxy
// accepts the connection and then closes or resets it. On loopback the reset
// can arrive before connect returns, which counts as well; a refused
// connection (no listener) does not.
func expectAcceptedThenClosed(t testing.TB, addr netip.AddrPort) {
	t.Helper()
	c, err := net.Dial("tcp", addr.String())
	if errors.Is(err, syscall.ECONNRESET) {
		return
	}
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	expectClosed(t, c)
}

// serviceOf returns the running state of service key (nil if none).
func serviceOf(d *Datapath, key lb.ServiceKey) *service {
	svc, _, _ := d.services.Get(key)
	return svc
}
