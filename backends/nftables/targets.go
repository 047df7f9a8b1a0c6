package nftables

import (
	"strconv"
	"strings"

	"github.com/google/nftables/expr"

	"github.com/lbkit/lbkit/internal/nftutil"
	"github.com/lbkit/lbkit/lb"
)

// masqMode says when a frontend's connections are masqueraded.
type masqMode uint8

const (
	masqNone           masqMode = iota
	masqAlways                  // MasqueradeAll, or an external frontend with Cluster policy
	masqOutsideCluster          // ClusterIP: sources outside ClusterCIDRs
	masqLocalSource             // external frontend with Local policy: only the node's own traffic
)

// tag is the mode's part of a chain name.
var masqTags = [...]string{masqNone: "", masqAlways: "m", masqOutsideCluster: "mc", masqLocalSource: "ml"}

// target identifies the chain a frontend's verdict map element jumps to.
// Frontends that need the same treatment share one chain: the chains depend
// on the number of slots and a few flags, not on the service, so there are
// few of them.
type target struct {
	v6       bool
	wildcard bool     // NodePort on every node address
	masq     masqMode //
	slots    int      // numgen modulus
}

// name renders the target as a chain name, e.g. "svc-3", "svc-np-m-3",
// "svc-mc-2".
func (t target) name() string {
	b := make([]byte, 0, 16)
	b = append(b, "svc"...)
	if t.wildcard {
		b = append(b, "-np"...)
	}
	if t.masq != masqNone {
		b = append(append(b, '-'), masqTags[t.masq]...)
	}
	b = strconv.AppendInt(append(b, '-'), int64(t.slots), 10)
	return string(b)
}

// parseTarget is the inverse of name, for a chain of the v6 table.
func parseTarget(name string, v6 bool) (target, bool) {
	t := target{v6: v6}
	parts := strings.Split(name, "-")
	if len(parts) < 2 || parts[0] != "svc" {
		return t, false
	}
	n, err := strconv.Atoi(parts[len(parts)-1])
	if err != nil || n < 1 || n > 1<<16 {
		return t, false
	}
	t.slots = n
	for _, p := range parts[1 : len(parts)-1] {
		switch p {
		case "np":
			t.wildcard = true
		default:
			found := false
			for m, tag := range masqTags {
				if tag != "" && tag == p {
					t.masq, found = masqMode(m), true
				}
			}
			if !found {
				return t, false
			}
		}
	}
	return t, t.name() == name
}

// masqFor returns when connections to the frontend are masqueraded.
func (c *config) masqFor(svc *lb.Service, fe lb.Frontend) masqMode {
	switch {
	case c.masqAll:
		return masqAlways
	case fe.Kind == lb.ClusterIP:
		if len(c.cluster[fam(fe.Addr.Is6())]) > 0 {
			return masqOutsideCluster
		}
		return masqNone
	case svc.ExternalPolicy == lb.PolicyLocal:
		return masqLocalSource
	}
	return masqAlways
}

// chain returns the target chain with its rules: build the endpoints key
// addr . proto . port . (numgen random mod N) and DNAT to the element's
// backend.
func (t target) chain() chainDef {
	w := nftutil.Words(t.v6)
	var rules [][]expr.Any
	if mark := markChain(t.masq); mark != "" {
		rules = append(rules, []expr.Any{jump(mark)})
	}
	rules = append(rules, []expr.Any{
		loadFrontendAddr(t.v6, t.wildcard, nftutil.Reg(0)), nftutil.LoadProto(nftutil.Reg(w)), loadDport(nftutil.Reg(w + 1)), numgen(nftutil.Reg(w+2), t.slots),
		lookupData(setFor(setEndpoints, t.v6), nftutil.Reg(0), nftutil.Reg(0)), dnat(t.v6, nftutil.Reg(0), nftutil.Reg(w)),
	})
	return chainDef{name: t.name(), rules: rules}
}

// markChain is the helper chain that marks connections for masquerading
// in mode m, or "".
func markChain(m masqMode) string {
	switch m {
	case masqAlways:
		return chainMarkMasq
	case masqLocalSource:
		return chainMarkLocalSource
	case masqOutsideCluster:
		return chainMarkOutside
	}
	return ""
}
