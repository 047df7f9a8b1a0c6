//go:build vmtest

package vmtest

import (
	"os"
	"os/exec"
	"testing"
)

// These tests run inside the guest (see selftest_test.go): they check that
// the guest has what the recipe promises.

// TestGuestKernel: IPVS is loaded, the dummy link type exists, and
// iproute2's ip can manage network namespaces.
func TestGuestKernel(t *testing.T) {
	if os.Getenv("LBKIT_VMTEST_GUEST") != "1" {
		t.Skip("not inside a vmtest guest")
	}
	if _, err := os.Stat("/proc/net/ip_vs"); err != nil {
		t.Errorf("IPVS is not loaded: %v", err)
	}
	for _, args := range [][]string{
		{"link", "add", "name", "vmtest0", "type", "dummy"},
		{"link", "del", "vmtest0"},
		{"netns", "add", "vmtest-probe"},
		{"-n", "vmtest-probe", "link", "add", "name", "v0", "type", "veth", "peer", "name", "v1"},
		{"netns", "del", "vmtest-probe"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Errorf("ip %v: %v: %s", args, err, out)
		}
	}
}

// TestGuestFailsOnRequest fails when LBKIT_VMTEST_SELFTEST_FAIL=1, so that
// the host can check a failing guest test fails the run.
func TestGuestFailsOnRequest(t *testing.T) {
	if os.Getenv("LBKIT_VMTEST_SELFTEST_FAIL") != "1" {
		t.Skip("LBKIT_VMTEST_SELFTEST_FAIL is not set")
	}
	t.Error("failing on request (LBKIT_VMTEST_SELFTEST_FAIL=1)")
}
