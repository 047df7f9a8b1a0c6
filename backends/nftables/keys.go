package nftables

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"

	"github.com/lbkit/lbkit/internal/nftutil"
	"github.com/lbkit/lbkit/lb"
)

// Set keys and map data are concatenations whose fields the kernel pads to
// 4 bytes each (registers are 32 bits wide): an address (4 or 16 bytes), a
// protocol (1 byte + 3 padding), a port (2 bytes big endian + 2 padding),
// a slot (the numgen result: a native-endian uint32).

// protoOf maps an IP protocol number back to lb's protocol (0 if unknown).
func protoOf(n byte) lb.Protocol {
	switch n {
	case 6:
		return lb.TCP
	case 17:
		return lb.UDP
	case 132:
		return lb.SCTP
	}
	return 0
}

// wildcard reports whether the frontend is a NodePort on every node address.
func wildcard(fe lb.Frontend) bool { return fe.Kind == lb.NodePort && fe.Addr.IsUnspecified() }

// frontendKey is the key of the services map: addr . proto . port, the
// address being the VIP, or the unspecified address of the family for a
// wildcard NodePort.
func frontendKey(fe lb.Frontend) []byte { return nftutil.FrontendKey(fe.Addr, fe.Protocol, fe.Port) }

// nodePortKey is the key of the nodeports map: proto . port.
func nodePortKey(fe lb.Frontend) []byte {
	return nftutil.AppendProtoPort(make([]byte, 0, 8), fe.Protocol, fe.Port)
}

// endpointKey is the key of the endpoints map: addr . proto . port . slot.
func endpointKey(fe lb.Frontend, slot int) []byte {
	b := frontendKey(fe)
	return binary.NativeEndian.AppendUint32(b, uint32(slot))
}

// backendValue is the data of the endpoints and affinity maps: addr . port.
func backendValue(ap netip.AddrPort) []byte {
	a := ap.Addr().Unmap()
	b := make([]byte, 0, a.BitLen()/8+4)
	b = append(b, a.AsSlice()...)
	return append(b, byte(ap.Port()>>8), byte(ap.Port()), 0, 0)
}

// hairpinKey is the key of the hairpin set: addr . addr.
func hairpinKey(a netip.Addr) []byte {
	s := a.Unmap().AsSlice()
	return append(append(make([]byte, 0, 2*len(s)), s...), s...)
}

// parseFrontendKey decodes addr . proto . port (the address is 4 or 16
// bytes, from the key's length).
func parseFrontendKey(k []byte) (netip.Addr, lb.Protocol, uint16, error) {
	var alen int
	switch len(k) {
	case 12:
		alen = 4
	case 24:
		alen = 16
	default:
		return netip.Addr{}, 0, 0, fmt.Errorf("frontend key of %d bytes, want 12 or 24", len(k))
	}
	a, _ := netip.AddrFromSlice(k[:alen])
	return a, protoOf(k[alen]), binary.BigEndian.Uint16(k[alen+4:]), nil
}

// parseBackendValue decodes addr . port data (8 or 20 bytes).
func parseBackendValue(v []byte) (netip.AddrPort, error) {
	if len(v) != 8 && len(v) != 20 {
		return netip.AddrPort{}, fmt.Errorf("backend value of %d bytes, want 8 or 20", len(v))
	}
	a, _ := netip.AddrFromSlice(v[:len(v)-4])
	return netip.AddrPortFrom(a, binary.BigEndian.Uint16(v[len(v)-4:])), nil
}

// formatKey renders a key or value of set s for humans, field by field, as
// nft would: "198.18.100.1 . tcp . 80 . 2".
func formatKey(fields []field, b []byte) string {
	var parts []string
	for _, f := range fields {
		n := f.size()
		if len(b) < n {
			parts = append(parts, fmt.Sprintf("<short %x>", b))
			break
		}
		v := b[:n]
		b = b[n:]
		switch f {
		case fieldAddr4, fieldAddr6:
			a, _ := netip.AddrFromSlice(v)
			parts = append(parts, a.String())
		case fieldProto:
			if p := protoOf(v[0]); p != 0 {
				parts = append(parts, p.String())
			} else {
				parts = append(parts, fmt.Sprint(v[0]))
			}
		case fieldPort:
			parts = append(parts, fmt.Sprint(binary.BigEndian.Uint16(v)))
		case fieldSlot:
			parts = append(parts, fmt.Sprint(binary.NativeEndian.Uint32(v)))
		}
	}
	if len(b) > 0 {
		parts = append(parts, fmt.Sprintf("<extra %x>", b))
	}
	return strings.Join(parts, " . ")
}
