package userspace

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/lbkit/lbkit/internal/nsutil"
	"github.com/lbkit/lbkit/internal/testenv"
	"github.com/lbkit/lbkit/lb"
)

// testNetns creates a named network namespace with lo up and the given
// addresses on lo, deleted when the test ends. It skips unless root.
func testNetns(t *testing.T, addrs ...string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("creating a network namespace needs root")
	}
	testenv.RequireTool(t, "ip", "iproute2")
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "lbus-" + hex.EncodeToString(b)
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	ip("-n", name, "link", "set", "dev", "lo", "up")
	for _, a := range addrs {
		ip("-n", name, "addr", "add", a, "dev", "lo")
	}
	return "/var/run/netns/" + name
}

func TestNetnsOption(t *testing.T) {
	ns := testNetns(t, "198.18.100.1/32")
	// A backend inside the namespace, on its own loopback.
	var ln net.Listener
	if err := nsutil.Do(ns, func() error {
		var err error
		ln, err = net.Listen("tcp4", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serveEcho(c, "inside")
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	be := ln.Addr().(*net.TCPAddr).AddrPort()

	fe := lb.Frontend{Addr: netip.MustParseAddr("198.18.100.1"), Port: 80, Protocol: lb.TCP, Kind: lb.ClusterIP}
	d := newTestDatapath(t, Options{Netns: ns})
	// The VIP is local only inside the namespace, and the backend listens
	// only there: success proves both the listener and the dial used it.
	fullSync(t, d, (*lb.Snapshot)(nil).With(simpleState("web", lb.RR, fe, backendsOf(be))))
	var greeting string
	if err := nsutil.Do(ns, func() error {
		c, err := net.Dial("tcp4", "198.18.100.1:80")
		if err != nil {
			return err
		}
		defer c.Close()
		greeting, err = bufio.NewReader(c).ReadString('\n')
		return err
	}); err != nil {
		t.Fatalf("request inside the namespace: %v", err)
	}
	if greeting != "inside\n" {
		t.Fatalf("greeting %q, want inside", greeting)
	}
}
