//go:build !linux

package nsutil

import (
	"errors"
	"fmt"
	"runtime"
)

// Do runs fn when path is empty (the caller's own namespace). Any other path
// is an error wrapping errors.ErrUnsupported: network namespaces exist only
// on Linux.
func Do(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	return fmt.Errorf("netns %s: network namespaces are only supported on Linux, not %s: %w",
		path, runtime.GOOS, errors.ErrUnsupported)
}
