//go:build vmtest

package ipvs_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lbkit/lbkit/backends/ipvs"
	"github.com/lbkit/lbkit/internal/netns"
	"github.com/lbkit/lbkit/internal/testenv"
	"github.com/lbkit/lbkit/lb"
)

// world is a topology with an IPVS datapath on its node and an engine
// driving it.
type world struct {
	t    *testing.T
	topo *netns.Topology
	dp   *ipvs.Datapath
	eng  *lb.Engine
	// extraIPs counts the client addresses added so far.
	extraIPs int
}

// newWorld builds a topology with three backends and a datapath with opts
// (Netns and Logger filled in).
func newWorld(t *testing.T, opts ipvs.Options) *world {
	t.Helper()
	requireIPVS(t)
	topo := netns.New(t, netns.Options{})
	w := &world{t: t, topo: topo}
	w.dp, w.eng = w.datapath(opts)
	t.Cleanup(func() {
		if err := w.dp.Cleanup(context.Background()); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
	})
	return w
}

// datapath returns a new datapath and engine on the node.
func (w *world) datapath(opts ipvs.Options) (*ipvs.Datapath, *lb.Engine) {
	w.t.Helper()
	opts.Netns, opts.Logger = w.topo.Node.Path, testenv.Logger(w.t)
	dp, err := ipvs.New(opts)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { dp.Close() })
	eng, err := lb.NewEngine(dp, lb.Config{NodeName: "node-a", Logger: opts.Logger})
	if err != nil {
		w.t.Fatal(err)
	}
	return dp, eng
}

// vip returns the n-th virtual IP (n >= 1).
func (w *world) vip(n int) netip.Addr {
	a := w.topo.VIPRange4.Addr()
	for range n {
		a = a.Next()
	}
	return a
}

// backend returns backend i as a ready endpoint on this node.
func (w *world) backend(i int) lb.Endpoint {
	ep := lb.ReadyEndpoint(netip.AddrPortFrom(w.topo.Backends[i].IPv4, netns.DefaultPort))
	ep.NodeName = "node-a"
	return ep
}

// install upserts svc with endpoints eps on eng and flushes.
func (w *world) install(eng *lb.Engine, svc *lb.Service, eps ...lb.Endpoint) {
	w.t.Helper()
	if err := eng.Upsert(svc); err != nil {
		w.t.Fatalf("Upsert(%s): %v", svc.Key, err)
	}
	w.setEndpoints(eng, svc.Key, eps...)
}

// setEndpoints replaces the endpoints and flushes.
func (w *world) setEndpoints(eng *lb.Engine, key lb.ServiceKey, eps ...lb.Endpoint) {
	w.t.Helper()
	if err := eng.SetEndpoints(key, eps); err != nil {
		w.t.Fatalf("SetEndpoints(%s): %v", key, err)
	}
	if err := eng.Flush(w.t.Context()); err != nil {
		w.t.Fatalf("Flush: %v", err)
	}
}

// request sends one TCP (or UDP) request from the client and returns the
// backend that answered.
func (w *world) request(network string, to netip.AddrPort) string {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.t.Context(), 10*time.Second)
	defer cancel()
	r, err := w.topo.Client.Request(ctx, network, to)
	if err != nil {
		w.t.Fatalf("request %s %s: %v", network, to, err)
	}
	return r.Backend
}

// count sends n TCP requests and counts the answers per backend.
func (w *world) count(to netip.AddrPort, n int) map[string]int {
	w.t.Helper()
	c := map[string]int{}
	for range n {
		c[w.request("tcp", to)]++
	}
	return c
}

// conn is an open TCP connection through a frontend.
type conn struct {
	c       net.Conn
	rd      *bufio.Reader
	backend string
}

// dial opens a TCP connection to addr and reads the identity line.
func (w *world) dial(to netip.AddrPort) *conn {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.t.Context(), 10*time.Second)
	defer cancel()
	c, err := w.topo.Client.Dial(ctx, "tcp", to.String())
	if err != nil {
		w.t.Fatalf("dial %s: %v", to, err)
	}
	w.t.Cleanup(func() { c.Close() })
	rd := bufio.NewReader(c)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := rd.ReadString('\n')
	if err != nil {
		w.t.Fatalf("%s: identity line: %v", to, err)
	}
	name, _, _ := strings.Cut(line, " ")
	return &conn{c: c, rd: rd, backend: name}
}

// dialTo opens connections until one reaches backend want.
func (w *world) dialTo(to netip.AddrPort, want string) *conn {
	w.t.Helper()
	for range 50 {
		c := w.dial(to)
		if c.backend == want {
			return c
		}
		c.c.Close()
	}
	w.t.Fatalf("%s: no connection reached %s", to, want)
	return nil
}

// echo checks that the connection still carries data both ways.
func (c *conn) echo(msg string) error {
	c.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c.c, msg); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c.rd, buf); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if string(buf) != msg {
		return fmt.Errorf("echo %q, want %q", buf, msg)
	}
	return nil
}

// eventually polls cond every 200 ms until it holds or limit passes; it
// is a bound on waiting, never an assertion about time.
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not true after %s", what, limit)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// service returns a one-frontend TCP ClusterIP service.
func service(key string, sched lb.Scheduler, addr netip.Addr) *lb.Service {
	return &lb.Service{Key: lb.ServiceKey(key), Scheduler: sched,
		Frontends: []lb.Frontend{{Addr: addr, Port: 80, Protocol: lb.TCP, Kind: lb.ClusterIP}}}
}
