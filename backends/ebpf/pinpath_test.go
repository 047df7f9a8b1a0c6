package ebpf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lbkit/lbkit/internal/netns"
	"github.com/lbkit/lbkit/internal/testenv"
)

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
	netns.Require(t)
	if !testenv.InPrivateMountNamespace(t) {
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
