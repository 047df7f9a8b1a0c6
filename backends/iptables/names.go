package iptables

import (
	"crypto/sha256"
	"encoding/base32"
	"net/netip"
	"strconv"
	"strings"

	"github.com/lbkit/lbkit/lb"
)

// Chain names. Every chain lbkit creates starts with chainPrefix, so that it
// never collides with kube-proxy's KUBE- chains or anyone else's.
//
// The names are chosen so that every fixed chain sorts before every service
// chain ("LBKIT-SERVICES" < "LBKIT-SVC-..."): iptables-nft-restore --noflush
// keeps the chains a batch names in a sorted list searched from the front, so
// a batch that declares service chains in descending order and references
// the fixed chains only after them stays linear (see README.md).
const (
	chainPrefix = "LBKIT-"
	// chainServices (nat) is jumped to from PREROUTING and OUTPUT; it
	// dispatches to the frontend shards and, last, to chainNodePorts.
	chainServices = "LBKIT-SERVICES"
	// chainNodePorts (nat) holds one rule per NodePort frontend on every
	// node address.
	chainNodePorts = "LBKIT-NODEPORTS"
	// chainPostrouting (nat) masquerades packets carrying the mark.
	chainPostrouting = "LBKIT-POSTROUTING"
	// chainNonCluster (nat) marks packets from outside every cluster CIDR.
	chainNonCluster = "LBKIT-MARK-NONCLUSTER"
	// chainNoEndpoints (filter) rejects (or drops) traffic to frontends
	// without backends.
	chainNoEndpoints = "LBKIT-NOENDPOINTS"
	// shardPrefix + two hex digits names the frontend shard (nat) holding
	// the frontends whose address ends in that byte.
	shardPrefix = "LBKIT-FE-"
	// serviceChainPrefix + 16 base32 characters names a service chain (nat):
	// the endpoint choice for one group of a service's frontends.
	serviceChainPrefix = "LBKIT-SVC-"
	// shards is the number of frontend shards per address family.
	shards = 256
)

// hashLen is the number of base32 characters of a hash in a name (80 bits).
const hashLen = 16

// b32 encodes hashes for chain and recent-list names: A-Z and 2-7 only.
var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// hashName returns prefix followed by hashLen base32 characters of the
// SHA-256 of parts joined by NUL bytes.
func hashName(prefix string, parts ...string) string {
	var buf [256]byte
	in := buf[:0]
	for i, p := range parts {
		if i > 0 {
			in = append(in, 0)
		}
		in = append(in, p...)
	}
	sum := sha256.Sum256(in)
	// 10 bytes are exactly hashLen base32 characters.
	var enc [hashLen]byte
	b32.Encode(enc[:], sum[:hashLen*5/8])
	return prefix + string(enc[:])
}

// serviceChain names the chain of one frontend group of a service: the
// group's protocol, whether it serves external frontends, and its ordinal
// among groups with the same protocol and kind.
func serviceChain(key lb.ServiceKey, proto lb.Protocol, external bool, ordinal int) string {
	ext := "internal"
	if external {
		ext = "external"
	}
	return hashName(serviceChainPrefix, string(key), proto.String(), ext, strconv.Itoa(ordinal))
}

// recentName names the xt_recent list of ClientIP affinity for one backend
// of a service. Frontend groups of a service share it, so a client sticks to
// its backend whichever frontend it uses (as with kube-proxy).
func recentName(key lb.ServiceKey, proto lb.Protocol, backend netip.AddrPort) string {
	return hashName(chainPrefix, string(key), proto.String(), backend.String())
}

// shardOf returns the shard of a frontend address: its last byte.
func shardOf(a netip.Addr) int {
	s := a.AsSlice()
	return int(s[len(s)-1])
}

// shardChain names shard i.
func shardChain(i int) string { return string(appendShardChain(nil, i)) }

// appendShardChain appends the name of shard i.
func appendShardChain(b []byte, i int) []byte {
	const hex = "0123456789abcdef"
	b = append(b, shardPrefix...)
	return append(b, hex[i>>4], hex[i&15])
}

// shardMatch returns the -d match selecting the addresses of shard i:
// "0.0.0.i/0.0.0.255" or "::i/::ff".
func shardMatch(i int, v6 bool) string {
	if v6 {
		return "::" + strconv.FormatInt(int64(i), 16) + "/::ff"
	}
	return "0.0.0." + strconv.Itoa(i) + "/0.0.0.255"
}

// isOurChain reports whether a chain name is one lbkit creates.
func isOurChain(name string) bool { return strings.HasPrefix(name, chainPrefix) }

// Comments name the service a rule belongs to. A service key may hold any
// printable character except space, including quotes and backslashes, which
// iptables-restore would interpret, so keys are percent-encoded: the comment
// holds only characters that are literal in restore input, iptables-save
// output and shell. Keys too long for a comment (iptables allows 255 bytes)
// are cut and marked with truncMark and a hash of the whole key.
const (
	maxCommentKey = 200
	truncMark     = "%*"
)

// safeCommentByte reports whether b may appear unescaped in a comment.
func safeCommentByte(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	return strings.IndexByte("/._:-@+=,~", b) >= 0
}

// escapeKey returns the comment form of a service key.
func escapeKey(key lb.ServiceKey) string {
	const hex = "0123456789ABCDEF"
	if len(key) <= maxCommentKey && !strings.ContainsFunc(string(key), func(r rune) bool {
		return r >= 0x80 || !safeCommentByte(byte(r))
	}) {
		return string(key)
	}
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		if safeCommentByte(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	s := b.String()
	if len(s) <= maxCommentKey {
		return s
	}
	cut := maxCommentKey - len(truncMark) - hashLen
	// Do not split a %XX escape.
	if i := strings.LastIndexByte(s[:cut], '%'); i >= cut-2 {
		cut = i
	}
	return hashName(s[:cut]+truncMark, string(key))
}

// unescapeKey decodes a comment written by escapeKey. truncated reports a
// key that was cut; the result is then only the key's beginning.
func unescapeKey(s string) (key lb.ServiceKey, truncated bool, ok bool) {
	if i := strings.Index(s, truncMark); i >= 0 {
		s, truncated = s[:i], true
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			if !safeCommentByte(c) {
				return "", false, false
			}
			b.WriteByte(c)
			continue
		}
		if i+3 > len(s) {
			return "", false, false
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", false, false
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return lb.ServiceKey(b.String()), truncated, true
}
