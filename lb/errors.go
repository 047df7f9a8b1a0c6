package lb

import (
	"fmt"
	"slices"
	"strings"
)

// ValidationError says precisely which field of which service is wrong.
type ValidationError struct {
	Service ServiceKey
	Field   string // e.g. "frontends[1].port"
	Value   string
	Reason  string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("service %q: invalid %s %s: %s", e.Service, e.Field, e.Value, e.Reason)
}

// UnsupportedError says that a datapath cannot express a field of a service.
type UnsupportedError struct {
	Service  ServiceKey
	Field    string
	Value    string
	Datapath string
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("service %q: %s %s is not supported by the %s datapath", e.Service, e.Field, e.Value, e.Datapath)
}

// ConflictError says that a frontend a service asks for belongs to another
// service. The engine keeps the request: when the owner releases the
// frontend, the oldest waiting service gets it.
type ConflictError struct {
	Service  ServiceKey
	Field    string // e.g. "frontends[0]"
	Frontend FrontendID
	Owner    ServiceKey
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("service %q: %s %s is already used by service %q (it passes to this service when released)",
		e.Service, e.Field, e.Frontend, e.Owner)
}

// ServiceErrors is returned by a Datapath's Sync when some services could not
// be programmed while everything else was. The engine retries those services
// on the next sync without forcing a full one.
type ServiceErrors map[ServiceKey]error

func (e ServiceErrors) Error() string {
	keys := e.keys()
	var b strings.Builder
	fmt.Fprintf(&b, "%d service(s) failed:", len(keys))
	for _, k := range keys {
		fmt.Fprintf(&b, " %s: %v;", k, e[k])
	}
	return strings.TrimSuffix(b.String(), ";")
}

// Unwrap returns the services' errors, in key order, for errors.Is and
// errors.As.
func (e ServiceErrors) Unwrap() []error {
	keys := e.keys()
	out := make([]error, len(keys))
	for i, k := range keys {
		out[i] = e[k]
	}
	return out
}

func (e ServiceErrors) keys() []ServiceKey {
	keys := make([]ServiceKey, 0, len(e))
	for k := range e {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
