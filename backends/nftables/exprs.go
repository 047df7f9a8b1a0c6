package nftables

import (
	"net/netip"
	"time"

	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/lbkit/lbkit/internal/nftutil"
)

// Registers. The kernel has sixteen 32-bit data registers, NFT_REG32_00 to
// NFT_REG32_15 (netlink numbers 8 to 23); a concatenation occupies
// consecutive ones, one per 4-byte field (an IPv6 address takes four).
// Register 1 (the first 16 bytes, same storage as 8..11) holds scratch
// values for comparisons; register 0 is the verdict.
const (
	regScratch = unix.NFT_REG_1
	regVerdict = unix.NFT_REG_VERDICT
)

// nfproto returns the IP family's NFPROTO number.
func nfproto(v6 bool) uint32 {
	if v6 {
		return unix.NFPROTO_IPV6
	}
	return unix.NFPROTO_IPV4
}

// loadDport loads th dport (TCP, UDP and SCTP alike) into r.
func loadDport(r uint32) expr.Any {
	return &expr.Payload{
		OperationType: expr.PayloadLoad, DestRegister: r,
		Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2,
	}
}

// loadZeroAddr puts the unspecified address of the family into r: the
// address field of a wildcard NodePort's keys.
func loadZeroAddr(v6 bool, r uint32) expr.Any {
	return &expr.Immediate{Register: r, Data: make([]byte, nftutil.AddrLen(v6))}
}

// loadFrontendAddr loads the frontend address field: the packet's
// destination, or the unspecified address for a wildcard NodePort.
func loadFrontendAddr(v6, wild bool, r uint32) expr.Any {
	if wild {
		return loadZeroAddr(v6, r)
	}
	return nftutil.LoadAddr(v6, false, r)
}

// lookup matches when the key in sreg is in set (or, with a dreg, loads the
// element's data there; dreg 0 applies a verdict map's verdict).
func lookup(d setDef, sreg uint32) *expr.Lookup {
	return &expr.Lookup{SourceRegister: sreg, SetName: d.name, SetID: d.batchID()}
}

func lookupData(d setDef, sreg, dreg uint32) *expr.Lookup {
	l := lookup(d, sreg)
	l.DestRegister, l.IsDestRegSet = dreg, true
	return l
}

// fibLocal: fib daddr (or saddr) type local.
func fibLocal(src bool) []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: regScratch, ResultADDRTYPE: true, FlagDADDR: !src, FlagSADDR: src},
		&expr.Cmp{Op: expr.CmpOpEq, Register: regScratch, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
	}
}

// notLoopback: ip daddr != 127.0.0.0/8, ip6 daddr != ::1.
func notLoopback(v6 bool) []expr.Any {
	if v6 {
		return []expr.Any{
			nftutil.LoadAddr(true, false, regScratch),
			&expr.Cmp{Op: expr.CmpOpNeq, Register: regScratch, Data: netip.IPv6Loopback().AsSlice()},
		}
	}
	return []expr.Any{
		&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: regScratch, Base: expr.PayloadBaseNetworkHeader, Offset: nftutil.DaddrOffset(false), Len: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: regScratch, Data: []byte{127}},
	}
}

// inPrefix: ip saddr|daddr within p (op Eq) or not (op Neq).
func inPrefix(p netip.Prefix, src bool, op expr.CmpOp) []expr.Any {
	v6 := p.Addr().Is6()
	n := nftutil.AddrLen(v6)
	mask := make([]byte, n)
	for i := range p.Bits() {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	return []expr.Any{
		nftutil.LoadAddr(v6, src, regScratch),
		&expr.Bitwise{SourceRegister: regScratch, DestRegister: regScratch, Len: uint32(n), Mask: mask, Xor: make([]byte, n)},
		&expr.Cmp{Op: op, Register: regScratch, Data: p.Masked().Addr().AsSlice()},
	}
}

// ctStateNew: ct state new.
func ctStateNew() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: regScratch, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: regScratch, DestRegister: regScratch, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitNEW), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: regScratch, Data: make([]byte, 4)},
	}
}

// ctStatusDstNAT is IPS_DST_NAT (linux/netfilter/nf_conntrack_common.h).
const ctStatusDstNAT = 1 << 5

// ctStatusDNAT: ct status dnat.
func ctStatusDNAT() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: regScratch, Key: expr.CtKeySTATUS},
		&expr.Bitwise{SourceRegister: regScratch, DestRegister: regScratch, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(ctStatusDstNAT), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: regScratch, Data: make([]byte, 4)},
	}
}

// markHas: meta mark & bit != 0.
func markHas(bit uint32) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: regScratch},
		&expr.Bitwise{SourceRegister: regScratch, DestRegister: regScratch, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(bit), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: regScratch, Data: make([]byte, 4)},
	}
}

// markSet: meta mark set meta mark | bit.
func markSet(bit uint32) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: regScratch},
		&expr.Bitwise{SourceRegister: regScratch, DestRegister: regScratch, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(^bit), Xor: binaryutil.NativeEndian.PutUint32(bit)},
		&expr.Meta{Key: expr.MetaKeyMARK, Register: regScratch, SourceRegister: true},
	}
}

// markClear: meta mark set meta mark ^ bit (after markHas: clears it).
func markClear(bit uint32) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: regScratch},
		&expr.Bitwise{SourceRegister: regScratch, DestRegister: regScratch, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(^uint32(0)), Xor: binaryutil.NativeEndian.PutUint32(bit)},
		&expr.Meta{Key: expr.MetaKeyMARK, Register: regScratch, SourceRegister: true},
	}
}

// ICMP codes of a port unreachable (linux/icmp.h, linux/icmpv6.h).
const (
	icmpPortUnreach   = 3
	icmpv6PortUnreach = 4
)

// reject answers with an ICMP(v6) port unreachable, which a TCP client sees
// as "connection refused" at once.
func reject(v6 bool) expr.Any {
	code := uint8(icmpPortUnreach)
	if v6 {
		code = icmpv6PortUnreach
	}
	return &expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: code}
}

func jump(chain string) expr.Any { return &expr.Verdict{Kind: expr.VerdictJump, Chain: chain} }

func ret() expr.Any { return &expr.Verdict{Kind: expr.VerdictReturn} }

// dnat: dnat to the address in addr and the port in port.
func dnat(v6 bool, addr, port uint32) expr.Any {
	return &expr.NAT{Type: expr.NATTypeDestNAT, Family: nfproto(v6), RegAddrMin: addr, RegProtoMin: port}
}

func numgen(r uint32, n int) expr.Any {
	return &expr.Numgen{Register: r, Modulus: uint32(n), Type: unix.NFT_NG_RANDOM}
}

// dynsetUpdate adds the key in sreg to set d, or refreshes its timeout.
func dynsetUpdate(d setDef, sreg uint32, timeout time.Duration) expr.Any {
	return &expr.Dynset{SrcRegKey: sreg, SetName: d.name, SetID: d.batchID(), Operation: unix.NFT_DYNSET_OP_UPDATE, Timeout: timeout}
}

// immediate puts b (padded to whole registers) into the registers from r.
func immediate(r uint32, b []byte) expr.Any { return &expr.Immediate{Register: r, Data: b} }

func secondsDuration(s uint32) time.Duration { return time.Duration(s) * time.Second }
