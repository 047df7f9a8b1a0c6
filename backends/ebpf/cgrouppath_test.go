package ebpf

import (
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/lbkit/lbkit/internal/netns"
	"github.com/lbkit/lbkit/lb"
)

// TestSocketLBNeedsCgroupPath: socket-LB without Options.CgroupPath is
// refused with ErrNoCgroupPath (the default would be the cgroup v2 root:
// every process of the machine); the root given explicitly is accepted, a
// directory that is no cgroup v2 is not.
func TestSocketLBNeedsCgroupPath(t *testing.T) {
	for _, o := range []Options{{Attach: AttachSocket}, {SocketLB: true}, {Attach: AttachXDP, SocketLB: true}} {
		_, err := New(o)
		if !errors.Is(err, ErrNoCgroupPath) {
			t.Errorf("New(%+v) without CgroupPath: %v, want ErrNoCgroupPath", o, err)
			continue
		}
		if !strings.Contains(err.Error(), "Options.CgroupPath") || !strings.Contains(err.Error(), "cgroup v2 root") {
			t.Errorf("the error does not say what to set and why: %v", err)
		}
	}
	if _, err := New(Options{}); err != nil {
		t.Errorf("TC without socket-LB needs no cgroup: %v", err)
	}
	if _, err := New(Options{Attach: AttachSocket, CgroupPath: "relative/dir"}); err == nil {
		t.Error("a relative CgroupPath was accepted")
	}
	if _, err := New(Options{Attach: AttachSocket, CgroupPath: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "not a cgroup v2 directory") {
		t.Errorf("a plain directory as CgroupPath: %v, want an error saying it is no cgroup v2 directory", err)
	}
	root := cgroup2Root()
	if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err != nil {
		t.Skipf("no cgroup v2 hierarchy at %s: %v", root, err)
	}
	if _, err := New(Options{Attach: AttachSocket, CgroupPath: root}); err != nil {
		t.Errorf("the cgroup v2 root given explicitly: %v", err)
	}
}

// socketChildEnv makes the re-executed test binary connect to the address
// it holds and report the backend it reached.
const socketChildEnv = "LBKIT_EBPF_SOCKET_CHILD"

// TestSocketLBOnlyInItsCgroup: socket-LB attached to a cgroup the test
// made balances the connections of processes in it (this test process)
// and no others: a process in the cgroup the test started from, in the
// same client namespace, is not translated.
func TestSocketLBOnlyInItsCgroup(t *testing.T) {
	if addr := os.Getenv(socketChildEnv); addr != "" {
		socketChild(t, addr)
		return
	}
	requireBPF(t)
	netns.Require(t)
	orig, err := ownCgroup()
	if err != nil {
		t.Fatal(err)
	}
	cg := testCgroup(t)
	topo := netns.New(t, netns.Options{Backends: 2})
	d, err := New(Options{Netns: topo.Node.Path, Attach: AttachSocket, CgroupPath: cg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Cleanup(t.Context()) })
	fe := lb.Frontend{Addr: netip.MustParseAddr("198.18.100.40"), Port: 80, Protocol: lb.TCP, Kind: lb.ClusterIP}
	st := &lb.ServiceState{Service: &lb.Service{Key: "cg", Frontends: []lb.Frontend{fe}}, Frontends: []lb.FrontendState{{Frontend: fe}}}
	for _, b := range topo.Backends {
		st.Frontends[0].Backends = append(st.Frontends[0].Backends, lb.Backend{Addr: netip.AddrPortFrom(b.IPv4, netns.DefaultPort), Weight: 1})
	}
	if err := d.Sync(t.Context(), snapshotOf(st), lb.ChangeSet{Full: true}); err != nil {
		t.Fatal(err)
	}
	vip := netip.AddrPortFrom(fe.Addr, fe.Port)
	if _, err := topo.Client.Request(t.Context(), "tcp", vip); err != nil {
		t.Fatalf("a client in the cgroup does not reach the VIP: %v", err)
	}

	// The same request from a process started in the original cgroup.
	dir, err := os.Open(filepath.Join(cgroup2Root(), orig))
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	cmd := exec.CommandContext(t.Context(), "ip", "netns", "exec", topo.Client.NS, os.Args[0],
		"-test.run", "^TestSocketLBOnlyInItsCgroup$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), socketChildEnv+"="+vip.String())
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the child process failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "not translated") {
		t.Fatalf("a process outside the cgroup was balanced:\n%s", out)
	}
}

// socketChild connects to addr once and logs whether it reached a backend.
func socketChild(t *testing.T, addr string) {
	r, err := netns.Request(t.Context(), nil, "tcp", addr)
	if err != nil {
		t.Logf("not translated: %v", err)
		return
	}
	t.Logf("reached backend %s", r.Backend)
}
