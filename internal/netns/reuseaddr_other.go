//go:build !unix

package netns

import "syscall"

// reuseAddr does nothing where there are no network namespaces to build
// (this package's tests skip there); it exists so that test packages that
// import this kit still compile for every GOOS.
func reuseAddr(_, _ string, _ syscall.RawConn) error { return nil }
