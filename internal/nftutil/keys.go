package nftutil

import (
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/lbkit/lbkit/lb"
)

// Set keys and map data are concatenations whose fields the kernel pads to
// 4 bytes each (registers are 32 bits wide): an address (4 or 16 bytes), a
// protocol (1 byte + 3 padding), a port (2 bytes big endian + 2 padding).

// ProtoNum returns the IP protocol number of p (0 for none).
func ProtoNum(p lb.Protocol) byte {
	switch p {
	case lb.TCP:
		return unix.IPPROTO_TCP
	case lb.UDP:
		return unix.IPPROTO_UDP
	case lb.SCTP:
		return unix.IPPROTO_SCTP
	}
	return 0
}

// AppendProtoPort appends the padded protocol and port fields.
func AppendProtoPort(b []byte, p lb.Protocol, port uint16) []byte {
	b = append(b, ProtoNum(p), 0, 0, 0)
	return append(b, byte(port>>8), byte(port), 0, 0)
}

// FrontendKey is the "addr . proto . port" key of a frontend; an
// IPv4-mapped address is encoded as IPv4.
func FrontendKey(a netip.Addr, p lb.Protocol, port uint16) []byte {
	a = a.Unmap()
	b := make([]byte, 0, a.BitLen()/8+12) // room for one more field
	b = append(b, a.AsSlice()...)
	return AppendProtoPort(b, p, port)
}
