// Package conntrack removes stale connection-tracking entries over netlink,
// in the process's own network namespace or another one.
//
// A kernel load balancer NATs a UDP "flow" once, when conntrack creates its
// entry; later datagrams of the flow follow the entry, not the rules. When a
// backend goes away the entry keeps sending the flow to it (a black hole),
// and when a UDP service goes from no endpoints to some, entries created while
// it rejected traffic keep the flow from being NATed. kube-proxy deletes both
// kinds of entries after a sync; ClearUDPBackend and ClearUDPFrontend do the
// same, and ClearUDP does several at once with a single dump of the table.
package conntrack

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/lbkit/lbkit/internal/nsutil"
)

// Filter selects UDP conntrack entries. An entry matches when it matches any
// listed backend or frontend.
type Filter struct {
	// Backends: entries whose reply comes from the backend address and port
	// while the original destination was something else, i.e. flows that
	// were DNATed to the backend. Flows sent to the backend directly stay.
	Backends []netip.AddrPort
	// Frontends: entries whose original destination is the frontend
	// address and port. An unspecified address (0.0.0.0 or ::, a NodePort
	// on every node address) matches any destination of that family on the
	// port.
	Frontends []netip.AddrPort
	// Flows: entries of flows to Frontend that were DNATed to Backend,
	// i.e. one frontend's flows to one of its backends. A frontend with an
	// unspecified address matches any destination of its family on its
	// port.
	Flows []Flow
	// Serving: entries of flows to Serving.Frontend whose reply does not
	// come from one of Serving.Backends, i.e. flows that were not DNATed
	// or were DNATed to a backend the frontend no longer has. Unlike
	// Backends and Frontends this keeps every flow that is still right,
	// so it is safe to apply to every frontend after a restart. A frontend
	// with an unspecified address matches any destination of its family on
	// its port that no other listed frontend matches exactly.
	Serving []Serving
}

// Serving names the backends a frontend's flows may be DNATed to.
type Serving struct {
	Frontend netip.AddrPort
	Backends []netip.AddrPort
}

// Flow names the flows from one frontend to one backend.
type Flow struct {
	Frontend netip.AddrPort
	Backend  netip.AddrPort
}

// ClearUDPBackend deletes the UDP entries in the namespace at netns ("" =
// the process's own) of flows DNATed to backend, and returns how many it
// deleted.
func ClearUDPBackend(netns string, backend netip.AddrPort) (int, error) {
	return ClearUDP(netns, Filter{Backends: []netip.AddrPort{backend}})
}

// ClearUDPFrontend deletes the UDP entries in the namespace at netns ("" =
// the process's own) whose original destination is frontend, and returns how
// many it deleted.
func ClearUDPFrontend(netns string, frontend netip.AddrPort) (int, error) {
	return ClearUDP(netns, Filter{Frontends: []netip.AddrPort{frontend}})
}

// ClearUDP deletes the UDP entries f selects in the namespace at netns ("" =
// the process's own), with one dump of the table per address family f uses,
// and returns how many it deleted. An empty filter deletes nothing.
func ClearUDP(netns string, f Filter) (int, error) {
	m, err := newMatcher(f)
	if err != nil {
		return 0, err
	}
	if m.empty() {
		return 0, nil
	}
	h, err := openHandle(netns)
	if err != nil {
		return 0, err
	}
	defer h.Close()
	total := 0
	var errs []error
	for _, fam := range m.families() {
		n, err := h.ConntrackDeleteFilters(netlink.ConntrackTable, fam, m)
		total += int(n)
		if err != nil {
			errs = append(errs, fmt.Errorf("conntrack: delete %s UDP entries in %s: %w", familyName(fam), nsName(netns), withModuleHint(err)))
		}
	}
	return total, errors.Join(errs...)
}

// withModuleHint names the likely cause when the table dump fails with
// EINVAL or EOPNOTSUPP: the kernel has no conntrack netlink subsystem
// (nf_conntrack_netlink). nfnetlink answers a request for a subsystem that
// is not registered with EINVAL after trying to autoload its module, which
// fails where modprobe or the module files are missing (a minimal
// initramfs such as the vmtest guest's, a container without
// /lib/modules). The dump carries no attributes, so a malformed request
// is not the cause. Failed deletes carry no errno and pass unchanged.
func withModuleHint(err error) error {
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
		return fmt.Errorf("%w (the kernel probably lacks conntrack netlink: load it with modprobe nf_conntrack_netlink)", err)
	}
	return err
}

// openHandle opens a netfilter netlink handle whose socket lives in the
// namespace at path.
func openHandle(path string) (*netlink.Handle, error) {
	var h *netlink.Handle
	err := nsutil.Do(path, func() error {
		var err error
		h, err = netlink.NewHandle(unix.NETLINK_NETFILTER)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("conntrack: open netlink handle in %s: %w", nsName(path), err)
	}
	return h, nil
}

func nsName(path string) string {
	if path == "" {
		return "the current namespace"
	}
	return path
}

func familyName(f netlink.InetFamily) string {
	if f == unix.AF_INET6 {
		return "IPv6"
	}
	return "IPv4"
}

// addrOf converts a tuple address as netlink parsed it.
func addrOf(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}
