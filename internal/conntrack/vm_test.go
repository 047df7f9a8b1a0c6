//go:build !vmtest

package conntrack_test

import (
	"testing"

	"github.com/lbkit/lbkit/internal/vmtest"
)

// TestInGuest runs this package's tests again inside a QEMU guest booted
// from the distribution's kernel (Debian's 6.1, where conntrack netlink is
// a module the node must load), so that stale UDP entries are shown to be
// deleted on that kernel too. It is skipped when QEMU is not installed or
// LBKIT_VMTEST=0.
func TestInGuest(t *testing.T) {
	vmtest.Run(t, vmtest.Options{
		Packages: []string{"./internal/conntrack"},
		Args:     []string{"-test.count", "1", "-test.timeout", "5m"},
	})
}
