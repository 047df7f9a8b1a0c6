package conntrack

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestModuleHint: a dump refused with EINVAL (no nf_conntrack_netlink, as
// in a guest that did not load it) names the module; other errors pass
// unchanged.
func TestModuleHint(t *testing.T) {
	err := withModuleHint(unix.EINVAL)
	if !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), "modprobe nf_conntrack_netlink") {
		t.Errorf("withModuleHint(EINVAL) = %v; want EINVAL naming modprobe nf_conntrack_netlink", err)
	}
	other := errors.New("failed to delete 1 conntrack flows with 1 filters")
	if got := withModuleHint(other); got != other {
		t.Errorf("withModuleHint(%v) = %v; want it unchanged", other, got)
	}
}
