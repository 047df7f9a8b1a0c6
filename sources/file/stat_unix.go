//go:build unix

package file

import (
	"os"
	"syscall"
)

// inode returns the device and inode numbers of a file.
func inode(fi os.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), uint64(st.Ino) //nolint:unconvert // int32 on some systems
	}
	return 0, 0
}
