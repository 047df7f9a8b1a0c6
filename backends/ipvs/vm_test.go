//go:build !vmtest

package ipvs_test

import (
	"os"
	"testing"

	"github.com/lbkit/lbkit/internal/vmtest"
)

// TestInGuest runs this package's guest tests (build tag vmtest: the
// conformance suite, schedulers, graceful termination, adoption) inside a
// QEMU guest booted from the distribution's kernel, which has IPVS. It is
// skipped when QEMU is not installed or LBKIT_VMTEST=0. LBKIT_VMTEST_RUN
// narrows the guest tests (-test.run).
func TestInGuest(t *testing.T) {
	args := []string{"-test.count", "1", "-test.timeout", "14m"}
	if run := os.Getenv("LBKIT_VMTEST_RUN"); run != "" {
		args = append(args, "-test.run", run)
	}
	vmtest.Run(t, vmtest.Options{
		Packages: []string{"./backends/ipvs"},
		Args:     args,
	})
}
