package ipvs

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/moby/ipvs"
	"golang.org/x/sys/unix"
)

// IPVS generic netlink commands and attributes (include/uapi/linux/ip_vs.h),
// encoded here with the same attributes moby/ipvs sends, so that many of
// them can go in one sendmsg.
const (
	ipvsGenlVersion = 1
	genlHdrLen      = 4 // struct genlmsghdr: cmd, version, reserved
	// nlaTypeMask strips NLA_F_NESTED and NLA_F_NET_BYTEORDER.
	nlaTypeMask = 0x3fff

	cmdNewService = 1
	cmdSetService = 2
	cmdDelService = 3
	cmdNewDest    = 5
	cmdSetDest    = 6
	cmdDelDest    = 7

	attrCmdService = 1
	attrCmdDest    = 2

	attrSvcAF        = 1
	attrSvcProtocol  = 2
	attrSvcAddr      = 3
	attrSvcPort      = 4
	attrSvcSchedName = 6
	attrSvcFlags     = 7
	attrSvcTimeout   = 8
	attrSvcNetmask   = 9

	attrDestAddr       = 1
	attrDestPort       = 2
	attrDestFwdMethod  = 3
	attrDestWeight     = 4
	attrDestUpperThres = 5
	attrDestLowerThres = 6
)

// svcSpec is what an IPVS service attribute carries: the virtual server's
// identity, and for creates and updates its scheduler, flags and
// persistence timeout.
type svcSpec struct {
	key            vsKey
	sched          string
	flags, timeout uint32
}

// specOf returns the full service attribute of a wanted virtual server.
func specOf(v *virtualServer) svcSpec {
	return svcSpec{key: v.key, sched: v.sched, flags: v.flags, timeout: v.timeout}
}

// ipvsGenl writes IPVS requests in batches over its own generic netlink
// socket (moby/ipvs sends one request per round trip).
type ipvsGenl struct {
	sock   *batchSock
	family uint16 // the IPVS generic netlink family id
}

// openIPVSGenl opens the socket in the namespace and resolves the IPVS
// family id.
func openIPVSGenl(path string, sends func()) (*ipvsGenl, error) {
	s, err := openBatchSock(path, unix.NETLINK_GENERIC, sends)
	if err != nil {
		return nil, err
	}
	fam, err := genlFamily(s, "IPVS")
	if err != nil {
		s.close()
		return nil, err
	}
	return &ipvsGenl{sock: s, family: fam}, nil
}

// genlFamily asks the generic netlink controller for a family's id.
func genlFamily(s *batchSock, name string) (uint16, error) {
	var b batch
	b.begin(unix.GENL_ID_CTRL, 0)
	b.buf = append(b.buf, unix.CTRL_CMD_GETFAMILY, 1, 0, 0)
	b.buf = attr(b.buf, unix.CTRL_ATTR_FAMILY_NAME, append([]byte(name), 0)...)
	b.end()
	replies, err := s.request(&b, unix.GENL_ID_CTRL)
	if err != nil {
		return 0, fmt.Errorf("generic netlink family %s: %w", name, err)
	}
	for _, r := range replies {
		if len(r) < genlHdrLen {
			continue
		}
		for typ, v := range attrs(r[genlHdrLen:]) {
			if typ == unix.CTRL_ATTR_FAMILY_ID && len(v) >= 2 {
				return binary.NativeEndian.Uint16(v), nil
			}
		}
	}
	return 0, fmt.Errorf("generic netlink family %s: no id in the controller's reply", name)
}

// attrs iterates over the netlink attributes in buf (type without the
// nested and byte-order flags).
func attrs(buf []byte) func(yield func(uint16, []byte) bool) {
	return func(yield func(uint16, []byte) bool) {
		for len(buf) >= unix.SizeofRtAttr {
			l := int(binary.NativeEndian.Uint16(buf))
			if l < unix.SizeofRtAttr || l > len(buf) {
				return
			}
			if !yield(binary.NativeEndian.Uint16(buf[2:])&nlaTypeMask, buf[unix.SizeofRtAttr:l]) {
				return
			}
			buf = buf[min((l+3)&^3, len(buf)):]
		}
	}
}

func (g *ipvsGenl) close() { g.sock.close() }

// header starts an IPVS message with command cmd.
func (g *ipvsGenl) header(b *batch, cmd uint8) {
	flags := uint16(0)
	if cmd == cmdNewService || cmd == cmdNewDest {
		flags = unix.NLM_F_CREATE | unix.NLM_F_EXCL
	}
	b.begin(g.family, flags)
	b.buf = append(b.buf, cmd, ipvsGenlVersion, 0, 0)
}

// service queues a NEW_SERVICE, SET_SERVICE or DEL_SERVICE request.
func (g *ipvsGenl) service(b *batch, cmd uint8, s svcSpec) {
	g.header(b, cmd)
	b.buf = appendService(b.buf, s)
	b.end()
}

// dest queues a NEW_DEST, SET_DEST or DEL_DEST request for real server d
// of virtual server s, in masquerading (NAT) mode.
func (g *ipvsGenl) dest(b *batch, cmd uint8, s svcSpec, d netip.AddrPort, weight int) {
	g.header(b, cmd)
	b.buf = appendService(b.buf, s)
	var start int
	b.buf, start = nest(b.buf, attrCmdDest)
	b.buf = attr(b.buf, attrDestAddr, d.Addr().AsSlice()...)
	b.buf = attr(b.buf, attrDestPort, byte(d.Port()>>8), byte(d.Port()))
	b.buf = attrU32(b.buf, attrDestFwdMethod, uint32(ipvs.ConnFwdMasq&ipvs.ConnectionFlagFwdMask))
	b.buf = attrU32(b.buf, attrDestWeight, uint32(weight))
	b.buf = attrU32(b.buf, attrDestUpperThres, 0)
	b.buf = attrU32(b.buf, attrDestLowerThres, 0)
	b.buf = endNest(b.buf, start)
	b.end()
}

// appendService appends the service attribute moby/ipvs sends: family,
// protocol, address, port (network order), scheduler, flags with a full
// mask, timeout and netmask.
func appendService(buf []byte, s svcSpec) []byte {
	buf, start := nest(buf, attrCmdService)
	buf = attrU16(buf, attrSvcAF, family(s.key.Addr))
	buf = attrU16(buf, attrSvcProtocol, ipProto(s.key.Protocol))
	buf = attr(buf, attrSvcAddr, s.key.Addr.AsSlice()...)
	buf = attr(buf, attrSvcPort, byte(s.key.Port>>8), byte(s.key.Port))
	buf = attr(buf, attrSvcSchedName, append([]byte(s.sched), 0)...)
	flags := binary.NativeEndian.AppendUint32(nil, s.flags)
	buf = attr(buf, attrSvcFlags, binary.NativeEndian.AppendUint32(flags, 0xffffffff)...)
	buf = attrU32(buf, attrSvcTimeout, s.timeout)
	buf = attrU32(buf, attrSvcNetmask, netmask(s.key.Addr))
	return endNest(buf, start)
}
