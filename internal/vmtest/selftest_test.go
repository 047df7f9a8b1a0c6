//go:build !vmtest

package vmtest

import (
	"strings"
	"testing"
)

// TestBootGuest boots a real guest that runs this package's guest tests
// (guest_test.go): the kernel has IPVS, dummy links and network namespaces.
func TestBootGuest(t *testing.T) {
	res := Run(t, Options{Packages: []string{"./internal/vmtest"}, Args: []string{"-test.run", "^TestGuest"}})
	if res == nil {
		return
	}
	if len(res.Tests) != 1 || res.Tests[0].Binary != "vmtest.test" || !res.Completed {
		t.Errorf("result = %+v, want one completed binary vmtest.test", res)
	}
	if !strings.HasPrefix(res.Release, "6.") && !strings.HasPrefix(res.Release, "5.") {
		t.Errorf("guest release %q does not look like a kernel release", res.Release)
	}
}

// TestBootGuestFailure: a failing test inside the guest makes the run fail
// (Result.Err names the binary) rather than pass silently.
func TestBootGuestFailure(t *testing.T) {
	if err := Check(); err != nil {
		skipUnavailable(t, err)
	}
	res, err := Boot(t.Context(), Options{
		Packages: []string{"./internal/vmtest"},
		Args:     []string{"-test.run", "^TestGuestFailsOnRequest$"},
		Env:      []string{"LBKIT_VMTEST_SELFTEST_FAIL=1"},
		Output:   &logWriter{t: t},
		Logf:     t.Logf,
	})
	if err != nil {
		skipUnavailable(t, err)
		t.Fatal(err)
	}
	rerr := res.Err()
	if rerr == nil || !strings.Contains(rerr.Error(), "vmtest.test exited with 1") {
		t.Errorf("Result.Err() = %v, want vmtest.test exited with 1", rerr)
	}
	if !res.Completed {
		t.Errorf("the guest did not complete: %+v", res)
	}
}
