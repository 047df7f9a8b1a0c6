package userspace

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/lbkit/lbkit/lb"
)

// ListenError says why a frontend could not be opened, in plain words. It
// unwraps to the system error, so errors.Is(err, syscall.EADDRINUSE) works.
type ListenError struct {
	Frontend lb.Frontend
	Err      error
}

// Error reads e.g. "listen 198.18.100.5:80/tcp: address not local to this
// host (cannot assign requested address)".
func (e *ListenError) Error() string {
	return fmt.Sprintf("listen %s: %s", e.Frontend, explainListen(e.Err))
}

// Unwrap returns the underlying error.
func (e *ListenError) Unwrap() error { return e.Err }

// explainListen turns the usual bind failures into sentences, keeping the
// system's wording in parentheses.
func explainListen(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.EADDRNOTAVAIL:
			return "address not local to this host (" + errno.Error() + ")"
		case syscall.EADDRINUSE:
			return "port already in use by another socket (" + errno.Error() + ")"
		case syscall.EACCES:
			return "permission denied: ports below 1024 need CAP_NET_BIND_SERVICE (" + errno.Error() + ")"
		}
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	return err.Error()
}

// unsupported returns the error for a field the userspace datapath cannot
// express.
func unsupported(key lb.ServiceKey, field, value string) error {
	return &lb.UnsupportedError{Service: key, Field: field, Value: value, Datapath: name}
}

// joinErrors joins errs on one line ("a; b"), unlike errors.Join, so that
// lb.ServiceErrors stays readable; errors.Is and errors.As see every error.
func joinErrors(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return multiError(errs)
}

// multiError is a list of errors shown on one line.
type multiError []error

func (m multiError) Error() string {
	s := make([]string, len(m))
	for i, err := range m {
		s[i] = err.Error()
	}
	return strings.Join(s, "; ")
}

// Unwrap returns the errors, for errors.Is and errors.As.
func (m multiError) Unwrap() []error { return m }
