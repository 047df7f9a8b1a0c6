package ipvs

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"

	"github.com/moby/ipvs"

	"github.com/lbkit/lbkit/lb"
)

// Stats counts the netlink requests a Datapath made since New: IPVS
// requests (reads are dumps and gets, writes create, update or delete),
// route, address and link requests for the dummy device, and nftables
// transactions. Every netlink request message counts, also when many went
// in one sendmsg; SendBatches counts those sendmsg calls (IPVS writes and
// routes of full syncs) and is not part of Total.
type Stats struct {
	IPVSReads, IPVSWrites uint64
	AddrCalls             uint64
	NATBatches            uint64
	SendBatches           uint64
}

// Total is the number of netlink requests.
func (s Stats) Total() uint64 { return s.IPVSReads + s.IPVSWrites + s.AddrCalls + s.NATBatches }

// counters is the live form of Stats.
type counters struct {
	ipvsReads, ipvsWrites, addrCalls, natBatches, sendBatches atomic.Uint64
}

// sent counts one sendmsg of a batch.
func (c *counters) sent() { c.sendBatches.Add(1) }

func (c *counters) stats() Stats {
	return Stats{
		IPVSReads: c.ipvsReads.Load(), IPVSWrites: c.ipvsWrites.Load(),
		AddrCalls: c.addrCalls.Load(), NATBatches: c.natBatches.Load(),
		SendBatches: c.sendBatches.Load(),
	}
}

// ipvsConn is the IPVS netlink handle of the datapath's namespace, counting
// every request.
type ipvsConn struct {
	h *ipvs.Handle
	// g writes batches (full syncs).
	g *ipvsGenl
	c *counters
}

func (k *ipvsConn) services() ([]*ipvs.Service, error) {
	k.c.ipvsReads.Add(1)
	return k.h.GetServices()
}

func (k *ipvsConn) service(s *ipvs.Service) (*ipvs.Service, error) {
	k.c.ipvsReads.Add(1)
	return k.h.GetService(s)
}

func (k *ipvsConn) dests(s *ipvs.Service) ([]*ipvs.Destination, error) {
	k.c.ipvsReads.Add(1)
	return k.h.GetDestinations(s)
}

func (k *ipvsConn) newService(s *ipvs.Service) error {
	k.c.ipvsWrites.Add(1)
	return k.h.NewService(s)
}

func (k *ipvsConn) updateService(s *ipvs.Service) error {
	k.c.ipvsWrites.Add(1)
	return k.h.UpdateService(s)
}

func (k *ipvsConn) delService(s *ipvs.Service) error {
	k.c.ipvsWrites.Add(1)
	return k.h.DelService(s)
}

func (k *ipvsConn) newDest(s *ipvs.Service, d *ipvs.Destination) error {
	k.c.ipvsWrites.Add(1)
	return k.h.NewDestination(s, d)
}

func (k *ipvsConn) updateDest(s *ipvs.Service, d *ipvs.Destination) error {
	k.c.ipvsWrites.Add(1)
	return k.h.UpdateDestination(s, d)
}

func (k *ipvsConn) delDest(s *ipvs.Service, d *ipvs.Destination) error {
	k.c.ipvsWrites.Add(1)
	return k.h.DelDestination(s, d)
}

func (k *ipvsConn) setConfig(c *ipvs.Config) error {
	k.c.ipvsWrites.Add(1)
	return k.h.SetConfig(c)
}

// notFound reports whether err is the kernel's answer for a missing virtual
// server or real server.
func notFound(err error) bool {
	return errors.Is(err, syscall.ESRCH) || errors.Is(err, syscall.ENOENT)
}

// exists reports whether err says the object is already there.
func exists(err error) bool { return errors.Is(err, syscall.EEXIST) }

// Protocol numbers.
const (
	protoTCP  = syscall.IPPROTO_TCP
	protoUDP  = syscall.IPPROTO_UDP
	protoSCTP = 132
)

func ipProto(p lb.Protocol) uint16 {
	switch p {
	case lb.UDP:
		return protoUDP
	case lb.SCTP:
		return protoSCTP
	}
	return protoTCP
}

func lbProto(p uint16) (lb.Protocol, bool) {
	switch p {
	case protoTCP:
		return lb.TCP, true
	case protoUDP:
		return lb.UDP, true
	case protoSCTP:
		return lb.SCTP, true
	}
	return 0, false
}

func family(a netip.Addr) uint16 {
	if a.Is4() {
		return syscall.AF_INET
	}
	return syscall.AF_INET6
}

// svcID returns the netlink identity of a virtual server (enough for gets,
// deletes and real server requests).
func svcID(k vsKey) *ipvs.Service {
	return &ipvs.Service{
		Address: net.IP(k.Addr.AsSlice()), Port: k.Port, Protocol: ipProto(k.Protocol),
		AddressFamily: family(k.Addr), Netmask: netmask(k.Addr),
	}
}

// netmask is the persistence granularity: one client address.
func netmask(a netip.Addr) uint32 {
	if a.Is4() {
		return 0xffffffff
	}
	return 128
}

// toService returns the netlink form of a wanted virtual server.
func toService(v *virtualServer) *ipvs.Service {
	s := svcID(v.key)
	s.SchedName, s.Flags, s.Timeout = v.sched, v.flags, v.timeout
	return s
}

// toDest returns the netlink form of a real server in NAT mode.
func toDest(d netip.AddrPort, weight int) *ipvs.Destination {
	return &ipvs.Destination{
		Address: net.IP(d.Addr().AsSlice()), Port: d.Port(), Weight: weight,
		ConnectionFlags: ipvs.ConnFwdMasq, AddressFamily: family(d.Addr()),
	}
}

// fromService returns the key and kernel view of a virtual server read
// back (dests still empty); ok is false for virtual servers lbkit never
// makes (firewall marks, unknown protocols).
func fromService(s *ipvs.Service) (*virtualServer, bool) {
	if s.FWMark != 0 {
		return nil, false
	}
	p, ok := lbProto(s.Protocol)
	if !ok {
		return nil, false
	}
	a, ok := netip.AddrFromSlice(s.Address)
	if !ok {
		return nil, false
	}
	if s.AddressFamily == syscall.AF_INET {
		a = a.Unmap()
		if !a.Is4() {
			return nil, false
		}
	}
	return &virtualServer{
		key:   vsKey{Addr: a, Port: s.Port, Protocol: p},
		sched: s.SchedName, flags: s.Flags &^ kernelFlags, timeout: s.Timeout,
		dests: map[netip.AddrPort]int{},
	}, true
}

// destAddr returns a real server's address and port as read back.
func destAddr(d *ipvs.Destination) (netip.AddrPort, error) {
	a, ok := netip.AddrFromSlice(d.Address)
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("real server with a malformed address %v", d.Address)
	}
	if d.AddressFamily == syscall.AF_INET {
		a = a.Unmap()
	}
	return netip.AddrPortFrom(a, d.Port), nil
}
