// Package nsutil runs code inside another network namespace, so that a
// datapath or a test can create sockets and netlink handles in a namespace the
// process does not live in.
//
// Network namespaces exist only on Linux. Elsewhere Do runs fn for the
// caller's own namespace (an empty path) and returns an error wrapping
// errors.ErrUnsupported for any other path, so that portable packages (the
// userspace datapath) build and explain what is missing.
package nsutil
