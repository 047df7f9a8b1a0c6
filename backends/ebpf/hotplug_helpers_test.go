package ebpf

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lbkit/lbkit/internal/netns"
	"github.com/lbkit/lbkit/internal/testenv"
)

// ipCmd runs the ip command; failures fail the test.
func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// newClientNS creates an empty namespace for an extra client, deleted when
// the test ends (before the topology, so its link leaves the node first).
func newClientNS(t *testing.T, role string) *netns.Host {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := netns.NamePrefix + hex.EncodeToString(b[:]) + "-" + role
	ipCmd(t, "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	ipCmd(t, "-n", name, "link", "set", "lo", "up")
	return &netns.Host{Name: role, NS: name, Path: filepath.Join("/var/run/netns", name), Link: netns.HostLink}
}

// plugClient connects client to the node with a new veth pair: ifname in
// the node (198.18.<subnet>.1/24), eth0 in the client (198.18.<subnet>.2,
// routing the test range via the node).
func plugClient(t *testing.T, node, client *netns.Host, ifname string, subnet int) {
	t.Helper()
	nodeAddr := netip.AddrFrom4([4]byte{198, 18, byte(subnet), 1})
	client.IPv4 = netip.AddrFrom4([4]byte{198, 18, byte(subnet), 2})
	ipCmd(t, "-n", node.NS, "link", "add", "name", ifname, "type", "veth", "peer", "name", client.Link, "netns", client.NS)
	ipCmd(t, "-n", node.NS, "addr", "add", nodeAddr.String()+"/24", "dev", ifname)
	ipCmd(t, "-n", node.NS, "link", "set", ifname, "up")
	ipCmd(t, "-n", client.NS, "addr", "add", client.IPv4.String()+"/24", "dev", client.Link)
	ipCmd(t, "-n", client.NS, "link", "set", client.Link, "up")
	ipCmd(t, "-n", client.NS, "route", "add", "198.18.0.0/15", "via", nodeAddr.String(), "dev", client.Link)
}

// waitStatus waits until cond holds for the datapath's AttachStatus: the
// watcher applies events asynchronously. It fails the test, with the last
// status, if that never happens (the deadline is a safety net, not a
// timing assertion).
func waitStatus(t *testing.T, d *Datapath, what string, cond func(AttachStatus) bool) AttachStatus {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := d.AttachStatus()
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("never %s; status: %+v", what, s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// programCount returns how many programs AttachStatus lists on ifname (-1
// when it lists no such interface).
func programCount(s AttachStatus, ifname string) int {
	is, ok := s.Interface(ifname)
	if !ok {
		return -1
	}
	return len(is.Programs)
}

// programsOn lists what the kernel has attached to ifname in the namespace
// (TCX programs, clsact filters and qdisc, XDP), as leftovers does.
func programsOn(t *testing.T, nsPath, ifname string) []string {
	t.Helper()
	all, err := leftovers(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range all {
		if strings.HasPrefix(l, ifname+": ") {
			out = append(out, l)
		}
	}
	return out
}

// observed returns a logger that records entries at info and above.
func observed() (*slog.Logger, *testenv.LogCapture) {
	return testenv.CaptureLogs(slog.LevelInfo)
}

// logged reports whether an entry with message msg mentions ifname.
func logged(logs *testenv.LogCapture, msg, ifname string) bool {
	for _, e := range logs.WithMessage(msg) {
		if strings.Contains(fmt.Sprint(e.Attrs), ifname) {
			return true
		}
	}
	return false
}

// checkConsistent fails unless every interface AttachStatus lists has
// want programs and no error, and no attach error was counted.
func checkConsistent(t *testing.T, s AttachStatus, want int) {
	t.Helper()
	if s.Errors != 0 || s.WatchErrors != 0 {
		t.Errorf("status counts %d attach errors and %d lost event streams, want none", s.Errors, s.WatchErrors)
	}
	for _, is := range s.Interfaces {
		if len(is.Programs) != want || is.Err != "" {
			t.Errorf("interface %s: programs %v, error %q; want %d programs, no error", is.Name, is.Programs, is.Err, want)
		}
	}
}
