package ipvs

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// routeMsg queues an RTM_NEWROUTE (add) or RTM_DELROUTE request for a's
// local route through the dummy device (the route vipRoute describes).
func (l *links) routeMsg(b *batch, add bool, a netip.Addr) {
	typ, flags := uint16(unix.RTM_DELROUTE), uint16(0)
	if add {
		typ, flags = unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_EXCL
	}
	b.begin(typ, flags)
	b.buf = append(b.buf,
		byte(family(a)), byte(a.BitLen()), 0, 0, // family, dst_len, src_len, tos
		unix.RT_TABLE_LOCAL, rtProto, unix.RT_SCOPE_HOST, unix.RTN_LOCAL,
		0, 0, 0, 0) // flags
	b.buf = attr(b.buf, unix.RTA_DST, a.AsSlice()...)
	b.buf = attrU32(b.buf, unix.RTA_OIF, uint32(l.dev.Attrs().Index))
	b.end()
}

// syncRoutes adds the local routes of add and deletes those of del, in
// batches on the route socket. It returns the addresses whose route is now
// in place (added, or already there) and those whose route is gone, and
// one error per failed address.
func (l *links) syncRoutes(add, del []netip.Addr) (added, deleted []netip.Addr, err error) {
	var b batch
	for _, a := range del {
		l.routeMsg(&b, false, a)
	}
	for _, a := range add {
		l.routeMsg(&b, true, a)
	}
	l.c.addrCalls.Add(uint64(b.len()))
	errs := l.routes.send(&b)
	var fail []error
	for i, e := range errs {
		if i < len(del) {
			a := del[i]
			if e != nil && !errors.Is(e, syscall.ESRCH) && !errors.Is(e, syscall.ENOENT) {
				fail = append(fail, fmt.Errorf("ipvs: remove local route for %s: %w", a, e))
				continue
			}
			deleted = append(deleted, a)
			continue
		}
		a := add[i-len(del)]
		if e != nil && !errors.Is(e, syscall.EEXIST) {
			fail = append(fail, fmt.Errorf("ipvs: local route for %s via %s: %w", a, l.name, e))
			continue
		}
		added = append(added, a)
	}
	return added, deleted, errors.Join(fail...)
}
