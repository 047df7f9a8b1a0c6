package ebpf

import (
	"bufio"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lbkit/lbkit/internal/netns"
	"github.com/lbkit/lbkit/internal/testenv"
	"github.com/lbkit/lbkit/lb"
)

// TestPinnedRestart: with Options.PinPath the datapath survives its
// process: traffic flows while no process holds it, the next process
// adopts it without breaking an established connection, and Cleanup
// removes every pin and program. It runs in a re-executed copy of the test
// binary inside a private mount namespace (unshare), where it mounts its
// own bpffs.
func TestPinnedRestart(t *testing.T) {
	requireBPF(t)
	netns.Require(t)
	if !testenv.InPrivateMountNamespace(t) {
		return
	}
	fs := t.TempDir()
	if err := unix.Mount("bpf", fs, "bpf", 0, ""); err != nil {
		t.Fatalf("mount a bpffs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(fs, 0) })
	pins := filepath.Join(fs, "lbkit")

	topo := netns.New(t, netns.Options{})
	opts := Options{Netns: topo.Node.Path, PinPath: pins}
	fe := lb.Frontend{Addr: netip.MustParseAddr("198.18.100.1"), Port: 80, Protocol: lb.TCP, Kind: lb.ClusterIP}
	svc := &lb.Service{Key: "pinned", Frontends: []lb.Frontend{fe}}
	var eps []lb.Endpoint
	for _, b := range topo.Backends {
		eps = append(eps, lb.ReadyEndpoint(netip.AddrPortFrom(b.IPv4, netns.DefaultPort)))
	}
	start := func() (*Datapath, *lb.Engine) {
		d, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		return d, testenv.Program(t, d, svc, eps)
	}
	vip := netip.AddrPortFrom(fe.Addr, fe.Port)
	request := func(when string) {
		t.Helper()
		if _, err := topo.Client.Request(t.Context(), "tcp", vip); err != nil {
			t.Fatalf("%s: request to %s: %v", when, vip, err)
		}
	}

	d1, _ := start()
	conn, err := topo.Client.Dial(t.Context(), "tcp", vip.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rd := bufio.NewReader(conn)
	if _, err := rd.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	echo := func(when string) {
		t.Helper()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(conn, "ping\n"); err != nil {
			t.Fatalf("%s: write on the established connection: %v", when, err)
		}
		if line, err := rd.ReadString('\n'); err != nil || line != "ping\n" {
			t.Fatalf("%s: echo on the established connection: %q, %v", when, line, err)
		}
	}
	echo("first process")

	ids := func(d *Datapath) []uint32 {
		var out []uint32
		for _, f := range d.frontends {
			out = append(out, f.id)
			for _, b := range f.bes {
				out = append(out, b.id)
			}
		}
		return out
	}
	// Interfaces that appear later are attached and pinned too: lbhot0
	// keeps its programs through the restart, and the pins of lbgone,
	// deleted while no process runs, are removed by the next one.
	c2 := newClientNS(t, "client2")
	plugClient(t, topo.Node, c2, "lbhot0", 3)
	ipCmd(t, "-n", topo.Node.NS, "link", "add", "name", "lbgone", "type", "veth", "peer", "name", "lbgonep")
	waitStatus(t, d1, "attached to lbhot0 and lbgone", func(s AttachStatus) bool {
		return programCount(s, "lbhot0") == 2 && programCount(s, "lbgone") == 2
	})
	pinned := func(ifname string) []string {
		var out []string
		for _, dir := range []string{"ingress", "egress"} {
			p := filepath.Join(pins, linksDir, "tcx_"+dir+"_"+ifname)
			if _, err := os.Stat(p); err == nil {
				out = append(out, p)
			}
		}
		return out
	}
	if got := pinned("lbhot0"); len(got) != 2 {
		t.Errorf("pinned links of lbhot0: %v, want ingress and egress", got)
	}
	hotRequest := func(when string) {
		t.Helper()
		if _, err := c2.Request(t.Context(), "tcp", vip); err != nil {
			t.Fatalf("%s: request from behind lbhot0: %v", when, err)
		}
	}
	hotRequest("first process")

	before := ids(d1)
	if err := d1.Close(); err != nil { // the process "exits"
		t.Fatal(err)
	}
	request("no process")
	echo("no process")
	hotRequest("no process")
	ipCmd(t, "-n", topo.Node.NS, "link", "del", "lbgone")

	d2, eng2 := start()
	request("second process")
	echo("after adoption")
	hotRequest("second process")
	if got := pinned("lbgone"); len(got) > 0 {
		t.Errorf("after adoption the pins of the deleted lbgone remain: %v", got)
	}
	if got := pinned("lbhot0"); len(got) != 2 {
		t.Errorf("after adoption the pinned links of lbhot0: %v, want ingress and egress", got)
	}
	if n := programCount(d2.AttachStatus(), "lbhot0"); n != 2 {
		t.Errorf("after adoption lbhot0 has %d programs, want 2", n)
	}
	if got := programsOn(t, topo.Node.Path, "lbhot0"); len(got) != 2 || !strings.Contains(got[0], ": 1 ") || !strings.Contains(got[1], ": 1 ") {
		t.Errorf("after adoption the kernel shows %v on lbhot0, want one program per direction (taken over, not added)", got)
	}
	if after := ids(d2); !slices.Equal(before, after) {
		t.Errorf("ids after adoption %v, want the first process's %v (connection entries name them)", after, before)
	}

	if err := eng2.Cleanup(t.Context()); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	left, err := leftovers(topo.Node.Path)
	if err != nil || len(left) > 0 {
		t.Errorf("after Cleanup: %v (%v)", left, err)
	}
	if _, err := os.Stat(pins); !os.IsNotExist(err) {
		entries, _ := os.ReadDir(pins)
		t.Errorf("after Cleanup %s still exists (%v): %v", pins, err, entries)
	}
}
