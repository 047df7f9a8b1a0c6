package ebpf

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/lbkit/lbkit/bpf"
	"github.com/lbkit/lbkit/lb"
)

// Values shared with bpf/lb.h.
const (
	familyV4 = 4
	familyV6 = 6

	protoTCP = 6
	protoUDP = 17

	svcMaglev   = 0x01
	svcAffinity = 0x02
	svcMasq     = 0x04
	svcExternal = 0x08

	cfgMasqAll = 0x01

	// maglevSize is LB_MAGLEV_SIZE: the slots of every Maglev table.
	maglevSize = len(bpf.LBMaglevTable{}.BackendIds)
	// inlineSlots is LB_INLINE_SLOTS: slots kept in the service entry.
	inlineSlots = len(bpf.LBSvcValue{}.InlineIds)
)

// addrWords returns a as the four 32-bit words of the BPF structs: the
// address bytes in network order in memory, IPv4 in the first word.
func addrWords(a netip.Addr) [4]uint32 {
	var w [4]uint32
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		w[0] = binary.NativeEndian.Uint32(b[:])
		return w
	}
	b := a.As16()
	for i := range w {
		w[i] = binary.NativeEndian.Uint32(b[4*i:])
	}
	return w
}

// wordsAddr is the inverse of addrWords.
func wordsAddr(w [4]uint32, family uint8) netip.Addr {
	var b [16]byte
	for i := range w {
		binary.NativeEndian.PutUint32(b[4*i:], w[i])
	}
	if family == familyV4 {
		return netip.AddrFrom4([4]byte(b[:4]))
	}
	return netip.AddrFrom16(b)
}

// netPort returns p as stored in the BPF structs: network byte order in
// memory.
func netPort(p uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], p)
	return binary.NativeEndian.Uint16(b[:])
}

// hostPort is the inverse of netPort.
func hostPort(p uint16) uint16 { return netPort(p) }

// familyOf returns the family byte of an address.
func familyOf(a netip.Addr) uint8 {
	if a.Unmap().Is4() {
		return familyV4
	}
	return familyV6
}

// protoNumber returns the IP protocol number of p.
func protoNumber(p lb.Protocol) (uint8, error) {
	switch p {
	case lb.TCP:
		return protoTCP, nil
	case lb.UDP:
		return protoUDP, nil
	}
	return 0, fmt.Errorf("protocol %s", p)
}

// svcKey returns the lb_services key of a frontend's slot.
func svcKey(id lb.FrontendID, slot uint16) (bpf.LBSvcKey, error) {
	proto, err := protoNumber(id.Protocol)
	if err != nil {
		return bpf.LBSvcKey{}, err
	}
	addr := id.Addr.Unmap()
	k := bpf.LBSvcKey{Port: netPort(id.Port), Proto: proto, Family: familyOf(addr), Slot: slot}
	if !addr.IsUnspecified() {
		k.Addr = addrWords(addr)
	}
	return k, nil
}

// frontendOf is the inverse of svcKey for slot 0 keys.
func frontendOf(k bpf.LBSvcKey) lb.FrontendID {
	p := lb.TCP
	if k.Proto == protoUDP {
		p = lb.UDP
	}
	return lb.FrontendID{Addr: wordsAddr(k.Addr, k.Family), Port: hostPort(k.Port), Protocol: p}
}

// backendValue returns the lb_backends entry of a backend of frontend feID.
func backendValue(addr netip.AddrPort, feID uint32) bpf.LBBackend {
	a := addr.Addr().Unmap()
	return bpf.LBBackend{Addr: addrWords(a), Port: netPort(addr.Port()), Family: familyOf(a), FeId: feID}
}

// frontendFlags returns the flags of a frontend's service entry.
func frontendFlags(st *lb.ServiceState, fe lb.Frontend) uint8 {
	var f uint8
	if st.Scheduler() == lb.Maglev {
		f |= svcMaglev
	}
	if st.AffinityTimeout() > 0 {
		f |= svcAffinity
	}
	if fe.Kind.External() {
		f |= svcExternal
		if st.Service.ExternalPolicy == lb.PolicyCluster {
			f |= svcMasq
		}
	}
	return f
}
