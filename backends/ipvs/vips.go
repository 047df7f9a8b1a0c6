package ipvs

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// links manages the dummy device that holds the virtual IPs, and reads the
// node's addresses for NodePorts, over one rtnetlink handle.
type links struct {
	h *netlink.Handle
	// routes sends the virtual IPs' routes in batches.
	routes *batchSock
	name   string
	c      *counters
	dev    netlink.Link // nil until ensured
}

// device returns the dummy device, or nil when it does not exist.
func (l *links) device() (netlink.Link, error) {
	l.c.addrCalls.Add(1)
	dev, err := l.h.LinkByName(l.name)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ipvs: look up device %s: %w", l.name, err)
	}
	return dev, nil
}

// ensure creates the dummy device if it is missing and sets it up. An
// existing link of that name that is not a dummy is an error: it is not
// ours.
func (l *links) ensure() error {
	dev, err := l.device()
	if err != nil {
		return err
	}
	if dev != nil && dev.Type() != "dummy" {
		return fmt.Errorf("ipvs: device %s exists but is a %s link, not a dummy: not touching it", l.name, dev.Type())
	}
	if dev == nil {
		l.c.addrCalls.Add(1)
		if err := l.h.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: l.name}}); err != nil && !errors.Is(err, syscall.EEXIST) {
			return fmt.Errorf("ipvs: create dummy device %s: %w", l.name, err)
		}
		if dev, err = l.device(); err != nil {
			return err
		}
		if dev == nil {
			return fmt.Errorf("ipvs: dummy device %s vanished right after it was created", l.name)
		}
	}
	if dev.Attrs().Flags&net.FlagUp == 0 {
		l.c.addrCalls.Add(1)
		if err := l.h.LinkSetUp(dev); err != nil {
			return fmt.Errorf("ipvs: set %s up: %w", l.name, err)
		}
	}
	l.dev = dev
	return nil
}

// remove deletes the dummy device and with it every virtual IP.
func (l *links) remove() error {
	dev, err := l.device()
	if err != nil || dev == nil {
		l.dev = nil
		return err
	}
	if dev.Type() != "dummy" {
		return fmt.Errorf("ipvs: device %s is a %s link, not our dummy: not deleting it", l.name, dev.Type())
	}
	l.c.addrCalls.Add(1)
	if err := l.h.LinkDel(dev); err != nil && !errors.Is(err, syscall.ENODEV) {
		return fmt.Errorf("ipvs: delete device %s: %w", l.name, err)
	}
	l.dev = nil
	return nil
}

// addrList lists addresses (of link, or of every link when nil), retrying
// a dump the kernel interrupted.
func (l *links) addrList(link netlink.Link, fam int) ([]netlink.Addr, error) {
	for range 5 {
		l.c.addrCalls.Add(1)
		as, err := l.h.AddrList(link, fam)
		if errors.Is(err, netlink.ErrDumpInterrupted) {
			continue
		}
		return as, err
	}
	return nil, errors.New("address dump interrupted five times in a row")
}

// rtProto marks the routes the datapath adds (RTPROT value 76, unused by
// the kernel and by iproute2's list of routing daemons).
const rtProto = 76

// bound returns the virtual IPs routed locally through the dummy device:
// our /32 and /128 routes in the local table (one dump per family).
func (l *links) bound() (map[netip.Addr]bool, error) {
	out := map[netip.Addr]bool{}
	filter := &netlink.Route{Table: unix.RT_TABLE_LOCAL, LinkIndex: l.dev.Attrs().Index}
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		l.c.addrCalls.Add(1)
		rs, err := l.h.RouteListFiltered(fam, filter, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_OIF)
		if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
			return nil, fmt.Errorf("ipvs: list local routes of %s: %w", l.name, err)
		}
		for _, r := range rs {
			if r.Dst == nil || r.Protocol != rtProto || r.Type != unix.RTN_LOCAL {
				continue
			}
			ones, bits := r.Dst.Mask.Size()
			if ip, ok := netip.AddrFromSlice(r.Dst.IP); ok && ones == bits {
				out[ip.Unmap()] = true
			}
		}
	}
	return out, nil
}

// hostPrefix returns a as a single-address prefix for netlink.
func hostPrefix(a netip.Addr) *net.IPNet {
	bits := a.BitLen()
	return &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(bits, bits)}
}

// vipRoute is the local route that makes a virtual IP local: the kernel
// delivers its packets to the INPUT path, where IPVS takes them. A route,
// not an address: the kernel keeps a device's IPv4 addresses in a list that
// every new address walks, so 10,000 addresses cost seconds (quadratic),
// while routes go into the FIB trie.
func (l *links) vipRoute(a netip.Addr) *netlink.Route {
	return &netlink.Route{
		LinkIndex: l.dev.Attrs().Index, Dst: hostPrefix(a), Table: unix.RT_TABLE_LOCAL,
		Type: unix.RTN_LOCAL, Scope: netlink.SCOPE_HOST, Protocol: rtProto,
	}
}

// bind makes a local through the dummy device.
func (l *links) bind(a netip.Addr) error {
	l.c.addrCalls.Add(1)
	if err := l.h.RouteAdd(l.vipRoute(a)); err != nil && !errors.Is(err, syscall.EEXIST) {
		return fmt.Errorf("ipvs: local route for %s via %s: %w", a, l.name, err)
	}
	return nil
}

// unbind removes a's local route; a missing route is fine.
func (l *links) unbind(a netip.Addr) error {
	l.c.addrCalls.Add(1)
	err := l.h.RouteDel(l.vipRoute(a))
	if err != nil && !errors.Is(err, syscall.ESRCH) && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("ipvs: remove local route for %s: %w", a, err)
	}
	return nil
}

// nodeAddrs returns the node's addresses of one family that may serve
// NodePorts: not on the dummy device, not loopback or link-local, and
// inside allowed when it is not empty.
func (l *links) nodeAddrs(v6 bool, allowed []netip.Prefix) ([]netip.Addr, error) {
	fam := netlink.FAMILY_V4
	if v6 {
		fam = netlink.FAMILY_V6
	}
	as, err := l.addrList(nil, fam)
	if err != nil {
		return nil, fmt.Errorf("ipvs: list node addresses: %w", err)
	}
	devIndex := -1
	if l.dev != nil {
		devIndex = l.dev.Attrs().Index
	}
	var out []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, a := range as {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || a.LinkIndex == devIndex {
			continue
		}
		ip = ip.Unmap()
		if ip.Is6() != v6 || ip.IsLoopback() || ip.IsLinkLocalUnicast() || seen[ip] {
			continue
		}
		if len(allowed) > 0 && !inAny(allowed, ip) {
			continue
		}
		seen[ip] = true
		out = append(out, ip)
	}
	return out, nil
}
