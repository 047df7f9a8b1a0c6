package conformance

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lbkit/lbkit/internal/netns"
	"github.com/lbkit/lbkit/lb"
)

// Request deadlines. They bound how long a test can hang; they are never
// asserted on. A request expected to fail gets a short deadline so that a
// dropped packet fails quickly; one expected to succeed gets a generous one.
const (
	okTimeout   = 10 * time.Second
	failTimeout = time.Second
)

// addr returns the frontend's address and port.
func addr(fe lb.Frontend) netip.AddrPort { return netip.AddrPortFrom(fe.Addr, fe.Port) }

// network returns the Go network name of the frontend's protocol.
func network(fe lb.Frontend) string { return fe.Protocol.String() }

// tryRequest sends one identity request to fe from the client, with the
// given deadline.
func (h *harness) tryRequest(fe lb.Frontend, timeout time.Duration) (netns.Reply, error) {
	ctx, cancel := context.WithTimeout(h.ctx, timeout)
	defer cancel()
	return h.client.Request(ctx, network(fe), addr(fe))
}

// request sends one request to fe that must succeed, and returns the name
// of the backend that answered.
func (h *harness) request(fe lb.Frontend) string {
	h.t.Helper()
	r, err := h.tryRequest(fe, okTimeout)
	if err != nil {
		h.t.Fatalf("request to %s: %v", fe, err)
	}
	return r.Backend
}

// tryRequestFrom sends one identity request to fe from a fixed source
// address of the client (port 0: a fresh port). A TCP connection ends with a
// reset, so the same source can be used again at once.
func (h *harness) tryRequestFrom(fe lb.Frontend, local netip.AddrPort) (netns.Reply, error) {
	ctx, cancel := context.WithTimeout(h.ctx, okTimeout)
	defer cancel()
	return h.client.RequestFrom(ctx, network(fe), local, addr(fe))
}

// tally counts replies per backend name.
type tally map[string]int

// String lists the counts sorted by name: "backend0=98 backend1=101".
func (c tally) String() string {
	names := make([]string, 0, len(c))
	for n := range c {
		names = append(names, n)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s=%d", n, c[n])
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// total returns the number of replies counted.
func (c tally) total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// count sends n requests to fe, one after the other, each of which must
// succeed, and counts the backends that answered.
func (h *harness) count(fe lb.Frontend, n int) tally {
	h.t.Helper()
	c := tally{}
	for i := range n {
		r, err := h.tryRequest(fe, okTimeout)
		if err != nil {
			h.t.Fatalf("request %d of %d to %s: %v (answers so far %v)", i+1, n, fe, err, c)
		}
		c[r.Backend]++
	}
	return c
}

// assertShares fails unless every backend in names answered at least
// minShare of the requests in c, and nobody else answered.
func (h *harness) assertShares(fe lb.Frontend, c tally, names []string, minShare float64) {
	h.t.Helper()
	h.assertOnly(fe, c, names...)
	total := c.total()
	for _, n := range names {
		if float64(c[n]) < minShare*float64(total) {
			h.t.Errorf("%s: backend %s answered %d of %d requests, want at least %.0f%% (answers %v)",
				fe, n, c[n], total, 100*minShare, c)
		}
	}
}

// assertOnly fails if a backend not in names answered.
func (h *harness) assertOnly(fe lb.Frontend, c tally, names ...string) {
	h.t.Helper()
	for n, v := range c {
		if !slices.Contains(names, n) {
			h.t.Errorf("%s: %s answered %d requests, want only %v to answer (answers %v)", fe, n, v, names, c)
		}
	}
}

// assertSeen fails unless every backend in names answered at least once.
func (h *harness) assertSeen(fe lb.Frontend, c tally, names ...string) {
	h.t.Helper()
	for _, n := range names {
		if c[n] == 0 {
			h.t.Errorf("%s: backend %s never answered, want it among the backends (answers %v)", fe, n, c)
		}
	}
}

// expectNoAnswer sends tries requests to fe and fails the test if any of
// them is answered by a backend. why says what was done to the service.
func (h *harness) expectNoAnswer(fe lb.Frontend, tries int, why string) {
	h.t.Helper()
	for i := range tries {
		r, err := h.tryRequest(fe, failTimeout)
		if err == nil {
			h.t.Errorf("after %s: request %d to %s was answered by %s, want it to fail", why, i+1, fe, r.Backend)
		}
	}
}

// liveConn is an open TCP connection through a frontend to a known backend.
type liveConn struct {
	conn    net.Conn
	rd      *bufio.Reader
	backend string
}

// dialBackend opens TCP connections to fe until one lands on backend want
// (at most tries), and returns it open; the others are closed.
func (h *harness) dialBackend(fe lb.Frontend, want string, tries int) *liveConn {
	h.t.Helper()
	seen := tally{}
	for range tries {
		lc := h.dial(fe)
		if lc.backend == want {
			return lc
		}
		seen[lc.backend]++
		_ = lc.conn.Close()
	}
	h.t.Fatalf("%s: none of %d connections reached %s (answers %v)", fe, tries, want, seen)
	return nil
}

// dial opens one TCP connection to fe, reads the backend's identity line and
// returns the connection open. It is closed at the end of the test.
func (h *harness) dial(fe lb.Frontend) *liveConn {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.ctx, okTimeout)
	defer cancel()
	conn, err := h.client.Dial(ctx, "tcp", addr(fe).String())
	if err != nil {
		h.t.Fatalf("dial %s: %v", fe, err)
	}
	h.t.Cleanup(func() { _ = conn.Close() })
	lc := &liveConn{conn: conn, rd: bufio.NewReader(conn)}
	if err := conn.SetDeadline(time.Now().Add(okTimeout)); err != nil {
		h.t.Fatalf("set deadline: %v", err)
	}
	line, err := lc.rd.ReadString('\n')
	if err != nil {
		h.t.Fatalf("%s: read identity line: %v", fe, err)
	}
	name, _, ok := strings.Cut(line, " ")
	if !ok {
		h.t.Fatalf("%s: malformed identity line %q", fe, line)
	}
	lc.backend = name
	return lc
}

// echo sends msg over the connection and checks the backend echoes it.
func (lc *liveConn) echo(msg string) error {
	if err := lc.conn.SetDeadline(time.Now().Add(okTimeout)); err != nil {
		return fmt.Errorf("set deadline: %w", err)
	}
	if _, err := io.WriteString(lc.conn, msg); err != nil {
		return fmt.Errorf("write %q: %w", msg, err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(lc.rd, buf); err != nil {
		return fmt.Errorf("read echo of %q: %w", msg, err)
	}
	if string(buf) != msg {
		return fmt.Errorf("echo of %q came back as %q", msg, buf)
	}
	return nil
}

// traffic is a stream of requests sent in the background while a scenario
// changes the service.
type traffic struct {
	stop chan struct{}
	done chan struct{}

	mu     sync.Mutex
	cond   *sync.Cond // signaled after every request
	counts tally
	errs   []error
	ended  bool
}

// startTraffic sends requests to fe one after the other until halted.
func (h *harness) startTraffic(fe lb.Frontend) *traffic {
	tr := &traffic{stop: make(chan struct{}), done: make(chan struct{}), counts: tally{}}
	tr.cond = sync.NewCond(&tr.mu)
	go func() {
		defer close(tr.done)
		defer func() {
			tr.mu.Lock()
			tr.ended = true
			tr.cond.Broadcast()
			tr.mu.Unlock()
		}()
		for {
			select {
			case <-tr.stop:
				return
			default:
			}
			r, err := h.tryRequest(fe, okTimeout)
			tr.mu.Lock()
			if err != nil {
				tr.errs = append(tr.errs, err)
			} else {
				tr.counts[r.Backend]++
			}
			tr.cond.Broadcast()
			tr.mu.Unlock()
		}
	}()
	h.t.Cleanup(tr.halt)
	return tr
}

// waitFor blocks until the traffic has sent n requests (or stopped), so
// that a change is known to happen while traffic flows.
func (tr *traffic) waitFor(n int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for !tr.ended && tr.counts.total()+len(tr.errs) < n {
		tr.cond.Wait()
	}
}

// halt stops the traffic and waits for the request in flight. It may be
// called more than once.
func (tr *traffic) halt() {
	select {
	case <-tr.stop:
	default:
		close(tr.stop)
	}
	<-tr.done
}

// result halts the traffic and returns what it saw.
func (tr *traffic) result() (tally, []error) {
	tr.halt()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.counts, tr.errs
}
