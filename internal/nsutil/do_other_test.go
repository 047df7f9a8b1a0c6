//go:build !linux

package nsutil

import (
	"errors"
	"strings"
	"testing"
)

func TestDoNamespaceUnsupported(t *testing.T) {
	ran := false
	err := Do("/var/run/netns/x", func() error { ran = true; return nil })
	if ran {
		t.Error("Do ran fn for a namespace it cannot enter")
	}
	if !errors.Is(err, errors.ErrUnsupported) || !strings.Contains(err.Error(), "only supported on Linux") {
		t.Fatalf("Do = %v, want an ErrUnsupported saying namespaces are Linux-only", err)
	}
}
