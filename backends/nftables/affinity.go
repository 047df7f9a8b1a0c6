package nftables

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"net/netip"
	"strings"
	"time"

	"github.com/google/nftables/expr"

	"github.com/lbkit/lbkit/internal/nftutil"
	"github.com/lbkit/lbkit/lb"
)

// ClientIP affinity, kube-proxy style but with the flat maps: the dynamic
// set "affinity" holds client . service . backend, with the affinity
// timeout. A frontend with affinity gets its own chain: one rule per backend
// DNATs to it when the client's entry exists (refreshing its timeout), and
// a last rule picks a slot (numgen) in the affinity-slots verdict map, whose
// elements jump to a per-backend chain that records the entry and DNATs.
//
// Entries name the backend itself, so a backend that goes away simply stops
// matching (its rule is gone) and its clients are balanced anew; the others
// keep theirs. The service, not the frontend, is in the key: a client stays
// with its backend across the service's frontends, as in kube-proxy. Every
// key is built from packet fields and constants, so nft can list the rules.

// serviceID is the 64-bit FNV-1a hash of a service key. Chain names carry
// it in hex; the affinity keys its low 32 bits (a collision could only make
// two services share a client's entry for a backend both use).
func serviceID(key lb.ServiceKey) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	return h.Sum64()
}

// affinitySeconds rounds a ClientIP timeout up to whole seconds (as
// Kubernetes expresses it).
func affinitySeconds(d time.Duration) uint32 {
	if d <= 0 {
		return 0
	}
	return uint32((d + time.Second - 1) / time.Second)
}

// addrTag renders an address for a chain name (IPv6 colons become dots).
func addrTag(a netip.Addr) string { return strings.ReplaceAll(a.Unmap().String(), ":", ".") }

// frontendTag renders a frontend for a chain name: "198.18.100.1-tcp-80",
// "np-udp-30053" (a NodePort on every address).
func frontendTag(fe lb.Frontend) string {
	if wildcard(fe) {
		return fmt.Sprintf("np-%s-%d", fe.Protocol, fe.Port)
	}
	return fmt.Sprintf("%s-%s-%d", addrTag(fe.Addr), fe.Protocol, fe.Port)
}

// affinityFrontendName and affinityBackendName name the chains of one
// service's frontend and of one of its backends.
func affinityFrontendName(svc uint64, fe lb.Frontend) string {
	return fmt.Sprintf("aff-%016x-%s", svc, frontendTag(fe))
}

func affinityBackendName(svc uint64, be netip.AddrPort) string {
	return fmt.Sprintf("aff-%016x-to-%s-%d", svc, addrTag(be.Addr()), be.Port())
}

// affinityKey loads saddr . service . backend address . backend port into
// the registers from 0 (2w+2 of them) and returns the registers of the
// backend address and port (for the DNAT).
func affinityKey(v6 bool, svc uint64, be netip.AddrPort) ([]expr.Any, uint32, uint32) {
	w := nftutil.Words(v6)
	v := backendValue(be)
	return []expr.Any{
		nftutil.LoadAddr(v6, true, nftutil.Reg(0)),
		immediate(nftutil.Reg(w), binary.NativeEndian.AppendUint32(nil, uint32(svc))),
		immediate(nftutil.Reg(w+1), v[:len(v)-4]),
		immediate(nftutil.Reg(2*w+1), v[len(v)-4:len(v)-2]), // 2 bytes: the kernel zeroes the padding

	}, nftutil.Reg(w + 1), nftutil.Reg(2*w + 1)
}

// buildAffinityFrontendChain returns the chain of a frontend with affinity over
// the distinct backends bes, with n slots.
func buildAffinityFrontendChain(v6 bool, svc uint64, fe lb.Frontend, masq masqMode, timeout uint32, bes []netip.AddrPort, n int) chainDef {
	w := nftutil.Words(v6)
	aff := setFor(setAffinity, v6)
	var rules [][]expr.Any
	if mark := markChain(masq); mark != "" {
		rules = append(rules, []expr.Any{jump(mark)})
	}
	for _, be := range bes {
		key, addr, port := affinityKey(v6, svc, be)
		rules = append(rules, cat(key, []expr.Any{
			lookup(aff, nftutil.Reg(0)), dynsetUpdate(aff, nftutil.Reg(0), secondsDuration(timeout)), dnat(v6, addr, port),
		}))
	}
	rules = append(rules, []expr.Any{
		loadFrontendAddr(v6, wildcard(fe), nftutil.Reg(0)), nftutil.LoadProto(nftutil.Reg(w)), loadDport(nftutil.Reg(w + 1)), numgen(nftutil.Reg(w+2), n),
		lookupData(setFor(setAffinitySlots, v6), nftutil.Reg(0), regVerdict),
	})
	return chainDef{name: affinityFrontendName(svc, fe), rules: rules}
}

// buildAffinityBackendChain records the client's entry for backend be and
// DNATs to it.
func buildAffinityBackendChain(v6 bool, svc uint64, be netip.AddrPort, timeout uint32) chainDef {
	aff := setFor(setAffinity, v6)
	key, addr, port := affinityKey(v6, svc, be)
	return chainDef{name: affinityBackendName(svc, be), rules: [][]expr.Any{cat(key, []expr.Any{
		dynsetUpdate(aff, nftutil.Reg(0), secondsDuration(timeout)), dnat(v6, addr, port),
	})}}
}

// parseAffinityBackendName returns the backend of a chain named by
// affinityBackendName.
func parseAffinityBackendName(name string) (netip.AddrPort, error) {
	_, rest, ok := strings.Cut(name, "-to-")
	i := strings.LastIndexByte(rest, '-')
	if !ok || i < 0 {
		return netip.AddrPort{}, fmt.Errorf("chain %q is not an affinity backend chain", name)
	}
	addr := rest[:i]
	if strings.Count(addr, ".") != 3 {
		addr = strings.ReplaceAll(addr, ".", ":")
	}
	return netip.ParseAddrPort(joinHostPort(addr, rest[i+1:]))
}

func joinHostPort(host, port string) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + port
	}
	return host + ":" + port
}
