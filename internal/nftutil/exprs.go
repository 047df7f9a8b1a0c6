package nftutil

import (
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Reg returns the netlink number of 32-bit data register i (0..15). The
// kernel has sixteen, NFT_REG32_00 to NFT_REG32_15; a concatenation
// occupies consecutive ones, one per 4-byte field (an IPv6 address takes
// four).
func Reg(i int) uint32 { return uint32(unix.NFT_REG32_00 + i) }

// AddrLen is the length in bytes of an address of the family.
func AddrLen(v6 bool) int {
	if v6 {
		return 16
	}
	return 4
}

// Words is the number of 32-bit registers an address of the family takes.
func Words(v6 bool) int { return AddrLen(v6) / 4 }

// SaddrOffset is the offset of the source address in the network header.
func SaddrOffset(v6 bool) uint32 {
	if v6 {
		return 8
	}
	return 12
}

// DaddrOffset is the offset of the destination address in the network
// header.
func DaddrOffset(v6 bool) uint32 {
	if v6 {
		return 24
	}
	return 16
}

// LoadAddr loads the packet's source (src) or destination address into r.
func LoadAddr(v6, src bool, r uint32) expr.Any {
	off := DaddrOffset(v6)
	if src {
		off = SaddrOffset(v6)
	}
	return &expr.Payload{
		OperationType: expr.PayloadLoad, DestRegister: r,
		Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: uint32(AddrLen(v6)),
	}
}

// LoadProto loads meta l4proto into r.
func LoadProto(r uint32) expr.Any { return &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: r} }

// Masquerade is the source NAT of every lbkit datapath: masquerade
// fully-random (random source ports avoid the port clashes of many
// clients behind one address).
func Masquerade() expr.Any { return &expr.Masq{FullyRandom: true} }
