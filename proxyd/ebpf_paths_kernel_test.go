package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/lbkit/lbkit/internal/netns"
)

// runProxydToExit runs the proxyd binary with args (prefixed by `ip netns
// exec NS` when ns is set) and returns its output and exit code. A proxyd
// that keeps running fails the test after e2eWait.
func runProxydToExit(t *testing.T, bin, ns string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), e2eWait)
	defer cancel()
	name, all := bin, args
	if ns != "" {
		name, all = "ip", append([]string{"netns", "exec", ns, bin}, args...)
	}
	out, err := exec.CommandContext(ctx, name, all...).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("proxyd %s kept running instead of exiting:\n%s", strings.Join(args, " "), out)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

// emptyServices writes a services file with no service.
func emptyServices(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "services.yaml")
	if err := os.WriteFile(path, []byte("services: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestEBPFPinPathWithoutBPFFSExitsAtStart runs the real proxyd in ebpf mode
// under `ip netns exec`, which remounts /sys without a bpffs: with the
// default pin path and with --ebpf-pin-path pointing at a directory that
// is not on a bpffs, proxyd exits at once, non-zero, naming the flag and
// the mount command, instead of failing every sync.
func TestEBPFPinPathWithoutBPFFSExitsAtStart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the proxyd binary")
	}
	netns.Require(t)
	bin := buildProxyd(t)
	topo := netns.New(t, netns.Options{Backends: 1})
	services := emptyServices(t)
	for _, pin := range [][]string{nil, {"--ebpf-pin-path", filepath.Join(t.TempDir(), "pins")}} {
		args := append([]string{"--mode=ebpf", "--services", services, "--metrics-bind-address=", "--healthz-bind-address=",
			"--log-format=console"}, pin...)
		out, code := runProxydToExit(t, bin, topo.Node.NS, args...)
		if code == 0 || !strings.Contains(out, "mount -t bpf bpffs /sys/fs/bpf") || !strings.Contains(out, "--ebpf-pin-path") {
			t.Errorf("proxyd %v without a bpffs: exit %d, want non-zero with the mount command and the flag:\n%s", pin, code, out)
		}
		if strings.Contains(out, "sync failed") {
			t.Errorf("proxyd %v tried to sync:\n%s", pin, out)
		}
	}
}

// TestEBPFSocketLBCgroupPath runs the real proxyd with socket-LB: without
// --ebpf-cgroup-path it refuses to start (socket-LB would otherwise attach
// to the root cgroup, every process of the machine, whatever --netns
// says); with it, the programs are attached to that cgroup.
func TestEBPFSocketLBCgroupPath(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the proxyd binary")
	}
	netns.Require(t)
	bin := buildProxyd(t)
	topo := netns.New(t, netns.Options{Backends: 1})
	services := emptyServices(t)
	base := []string{"--mode=ebpf", "--netns", topo.Node.Path, "--services", services, "--ebpf-pin-path=",
		"--metrics-bind-address=", "--healthz-bind-address=", "--log-format=console"}

	for _, extra := range [][]string{{"--ebpf-attach=socket"}, {"--ebpf-socket-lb"}} {
		out, code := runProxydToExit(t, bin, "", append(append([]string{}, base...), extra...)...)
		if code == 0 || !strings.Contains(out, "--ebpf-cgroup-path") || !strings.Contains(out, "cgroup v2 root") {
			t.Errorf("proxyd %v without --ebpf-cgroup-path: exit %d, want non-zero naming the flag and why:\n%s", extra, code, out)
		}
	}

	root := "/sys/fs/cgroup"
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err != nil {
		root = "/sys/fs/cgroup/unified"
	}
	cg, err := os.MkdirTemp(root, "lbkit-proxyd-test-")
	if err != nil {
		t.Skipf("create a test cgroup under %s: %v", root, err)
	}
	t.Cleanup(func() {
		if err := os.Remove(cg); err != nil {
			t.Errorf("remove the test cgroup: %v", err)
		}
	})
	args := append(append([]string{}, base...), "--ebpf-attach=socket", "--ebpf-cgroup-path", cg)
	ctx, cancel := context.WithCancel(t.Context())
	cmd := exec.CommandContext(ctx, bin, args...)
	var logs safeBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		_ = exec.Command(bin, "--cleanup", "--mode=ebpf", "--netns", topo.Node.Path, "--ebpf-cgroup-path", cg).Run()
		// Detached links go with proxyd's exit (nothing pinned).
		if t.Failed() {
			t.Logf("proxyd output:\n%s", logs.String())
		}
	})
	waitFor(t, "socket-LB programs in "+cg, func() bool { return cgroupConnectPrograms(t, cg) > 0 })
}

// cgroupConnectPrograms returns the number of connect4 programs attached to
// the cgroup at dir.
func cgroupConnectPrograms(t *testing.T, dir string) int {
	t.Helper()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := link.QueryPrograms(link.QueryOptions{Target: int(f.Fd()), Attach: ebpf.AttachCGroupInet4Connect})
	if err != nil {
		t.Fatalf("query the cgroup's connect4 programs: %v", err)
	}
	return len(res.Programs)
}
