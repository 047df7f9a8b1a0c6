package maglev

import (
	"encoding/binary"
	"math/bits"
)

// The SipHash-2-4 keys that derive a backend's permutation from its Name.
// They are fixed forever: changing them changes every table. Word 0 is the
// ASCII "lbkit/ma" and word 1 "glev/off" (offset) or "glev/skp" (skip), each
// read as a little-endian uint64.
const (
	keyWord0       = 0x616d2f74696b626c // "lbkit/ma"
	offsetKeyWord1 = 0x66666f2f76656c67 // "glev/off"
	skipKeyWord1   = 0x706b732f76656c67 // "glev/skp"
)

// permutation returns where a backend's preference list starts and its
// stride, for a table of size m (m prime, m >= 2).
func permutation(name string, m uint64) (offset, skip uint64) {
	b := []byte(name)
	offset = sipHash24([2]uint64{keyWord0, offsetKeyWord1}, b) % m
	skip = sipHash24([2]uint64{keyWord0, skipKeyWord1}, b)%(m-1) + 1
	return offset, skip
}

// sipHash24 computes SipHash-2-4 (Aumasson and Bernstein, 2012) of msg under
// the 128-bit key k (k[0] holds key bytes 0..7, k[1] bytes 8..15, both
// little-endian). The result depends only on k and msg, never on the machine.
func sipHash24(k [2]uint64, msg []byte) uint64 {
	s := sipState{
		v0: k[0] ^ 0x736f6d6570736575,
		v1: k[1] ^ 0x646f72616e646f6d,
		v2: k[0] ^ 0x6c7967656e657261,
		v3: k[1] ^ 0x7465646279746573,
	}
	n := len(msg)
	for len(msg) >= 8 {
		s.compress(binary.LittleEndian.Uint64(msg))
		msg = msg[8:]
	}
	// Last block: the remaining bytes, zero padded, with len mod 256 on top.
	last := uint64(n) << 56
	for i, c := range msg {
		last |= uint64(c) << (8 * i)
	}
	s.compress(last)
	s.v2 ^= 0xff
	s.round()
	s.round()
	s.round()
	s.round()
	return s.v0 ^ s.v1 ^ s.v2 ^ s.v3
}

// sipState is the four-word internal state of SipHash.
type sipState struct{ v0, v1, v2, v3 uint64 }

// compress absorbs one 64-bit message word with two SipRounds.
func (s *sipState) compress(m uint64) {
	s.v3 ^= m
	s.round()
	s.round()
	s.v0 ^= m
}

// round is one SipRound.
func (s *sipState) round() {
	s.v0 += s.v1
	s.v1 = bits.RotateLeft64(s.v1, 13)
	s.v1 ^= s.v0
	s.v0 = bits.RotateLeft64(s.v0, 32)
	s.v2 += s.v3
	s.v3 = bits.RotateLeft64(s.v3, 16)
	s.v3 ^= s.v2
	s.v0 += s.v3
	s.v3 = bits.RotateLeft64(s.v3, 21)
	s.v3 ^= s.v0
	s.v2 += s.v1
	s.v1 = bits.RotateLeft64(s.v1, 17)
	s.v1 ^= s.v2
	s.v2 = bits.RotateLeft64(s.v2, 32)
}
