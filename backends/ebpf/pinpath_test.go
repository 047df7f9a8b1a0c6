package ebpf

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lbkit/lbkit/internal/netns"
)

// pinPathChildEnv marks the re-executed test process that runs in a
// private mount namespace.
const pinPathChildEnv = "LBKIT_EBPF_PINPATH_CHILD"

// mountHint is what a pin path error must tell the user to do.
const mountHint = "mount -t bpf bpffs /sys/fs/bpf"

// TestPinPathMustBeOnBPFFS: New refuses a pin path that is not on a bpffs
// at once, with the mount command, instead of failing every Sync.
func TestPinPathMustBeOnBPFFS(t *testing.T) {
	for _, dir := range []string{filepath.Join(t.TempDir(), "lbkit"), filepath.Join(t.TempDir(), "a", "b")} {
		_, err := New(Options{PinPath: dir})
		if err == nil || !strings.Contains(err.Error(), mountHint) {
			t.Errorf("New with PinPath %s (not a bpffs): %v, want an error naming %q", dir, err, mountHint)
		}
		if _, serr := os.Stat(dir); serr == nil {
			t.Errorf("New created %s", dir)
		}
	}
}

// TestPinPathInMountNamespaceWithoutBPFFS runs in a private mount
// namespace (unshare) where /sys/fs/bpf is no bpffs, as under `ip netns
// exec`: the default pin path is refused with the mount command; once a
// bpffs is mounted there, the same options are accepted, and so is a pin
// path whose parent does not exist yet on a bpffs.
func TestPinPathInMountNamespaceWithoutBPFFS(t *testing.T) {
	requireBPF(t)
	if os.Getenv(pinPathChildEnv) == "" {
		netns.Require(t)
		if _, err := exec.LookPath("unshare"); err != nil {
			t.Skipf("no unshare command for a private mount namespace (util-linux): %v", err)
		}
		cmd := exec.Command("unshare", "--mount", "--propagation", "private",
			os.Args[0], "-test.run", "^TestPinPathInMountNamespaceWithoutBPFFS$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), pinPathChildEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("the test in a private mount namespace failed: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "--- PASS: TestPinPathInMountNamespaceWithoutBPFFS") {
			t.Fatalf("the child did not run the test:\n%s", out)
		}
		return
	}
	// Whatever the host has at /sys/fs/bpf, hide it (this mount
	// namespace is private).
	if err := unix.Mount("tmpfs", "/sys/fs/bpf", "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount a tmpfs over /sys/fs/bpf: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount("/sys/fs/bpf", 0) })
	opts := Options{PinPath: "/sys/fs/bpf/lbkit"}
	if _, err := New(opts); err == nil || !strings.Contains(err.Error(), mountHint) {
		t.Fatalf("New without a bpffs at /sys/fs/bpf: %v, want an error naming %q", err, mountHint)
	}
	if err := unix.Mount("bpffs", "/sys/fs/bpf", "bpf", 0, ""); err != nil {
		t.Fatalf("mount a bpffs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount("/sys/fs/bpf", 0) })
	if _, err := New(opts); err != nil {
		t.Fatalf("New with a bpffs at /sys/fs/bpf: %v", err)
	}
	if _, err := New(Options{PinPath: "/sys/fs/bpf/not/yet/there"}); err != nil {
		t.Fatalf("New with a pin path to be created on a bpffs: %v", err)
	}
}
