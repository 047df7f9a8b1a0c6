//go:build !amd64

package vmtest

// hostTSCkHz is unknown off amd64: the guest calibrates its clock itself.
func hostTSCkHz() uint64 { return 0 }
