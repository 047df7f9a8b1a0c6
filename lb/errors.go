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

// ServiceErrors is returned by a Datapath's Sync when some services could not
// be programmed while everything else was. The engine retries those services
// on the next sync without forcing a full one.
type ServiceErrors map[ServiceKey]error

func (e ServiceErrors) Error() string {
	keys := make([]string, 0, len(e))
	for k := range e {
		keys = append(keys, string(k))
	}
	slices.Sort(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "%d service(s) failed:", len(keys))
	for _, k := range keys {
		fmt.Fprintf(&b, " %s: %v;", k, e[ServiceKey(k)])
	}
	return strings.TrimSuffix(b.String(), ";")
}
