//go:build unix

package netns

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// reuseAddr is a net.Dialer Control that sets SO_REUSEADDR before bind.
func reuseAddr(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("set SO_REUSEADDR: %w", serr)
	}
	return nil
}
