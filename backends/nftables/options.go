package nftables

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
)

// Defaults for Options.
const (
	// DefaultTable is the name of the ip and ip6 tables the datapath owns.
	DefaultTable = "lbkit"
	// DefaultMasqueradeBit is kube-proxy's default: mark 0x4000.
	DefaultMasqueradeBit = 14
)

// Options configures a Datapath. The zero value is usable.
type Options struct {
	// Netns, when set (e.g. /var/run/netns/NAME or /proc/PID/ns/net), is the
	// network namespace to program; empty means the process's own.
	Netns string
	// Logger receives one line per sync and warnings; nil logs nothing.
	Logger *slog.Logger
	// Table is the name of the ip and ip6 tables the datapath owns and
	// replaces at will; DefaultTable when empty. Nothing outside it is touched.
	Table string
	// MasqueradeBit is the bit of the packet mark that asks for
	// masquerading (kube-proxy's masqueradeBit), 1 to 31; zero means
	// DefaultMasqueradeBit (so bit 0 cannot be chosen).
	MasqueradeBit int
	// MasqueradeAll masquerades all traffic to every frontend.
	MasqueradeAll bool
	// ClusterCIDRs are the cluster's pod ranges: traffic to a ClusterIP
	// from outside them is masqueraded. Without a range of a family,
	// ClusterIP traffic of that family is not masqueraded (unless
	// MasqueradeAll), as in kube-proxy without a local-traffic detector.
	ClusterCIDRs []netip.Prefix
	// NodePortAddresses limits NodePort frontends on every address
	// (0.0.0.0 or ::) to the node's local addresses within these ranges;
	// a family without a range gets no such NodePorts. Empty means every
	// local address (loopback excepted), as does a /0 range.
	NodePortAddresses []netip.Prefix
}

// config is Options checked and resolved.
type config struct {
	netns    string
	log      *slog.Logger
	table    string
	markBit  uint32 // the mark value, 1 << MasqueradeBit
	masqAll  bool
	cluster  [2][]netip.Prefix // by family: [0] IPv4, [1] IPv6
	nodePort [2][]netip.Prefix // nil for a family: every local address; empty: none
	allNP    [2]bool           // every local address of the family
}

// fam indexes per-family arrays.
func fam(v6 bool) int {
	if v6 {
		return 1
	}
	return 0
}

func (o Options) resolve() (*config, error) {
	c := &config{netns: o.Netns, log: o.Logger, table: o.Table, masqAll: o.MasqueradeAll}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.table == "" {
		c.table = DefaultTable
	}
	if len(c.table) > 255 || strings.ContainsFunc(c.table, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return nil, fmt.Errorf("nftables: Options.Table %q: want a name of at most 255 characters without spaces or control characters", c.table)
	}
	bit := o.MasqueradeBit
	if bit == 0 {
		bit = DefaultMasqueradeBit
	}
	if bit < 0 || bit > 31 {
		return nil, fmt.Errorf("nftables: Options.MasqueradeBit %d: want 1-31 (0 means %d)", o.MasqueradeBit, DefaultMasqueradeBit)
	}
	c.markBit = 1 << bit
	for i, p := range o.ClusterCIDRs {
		if !p.IsValid() {
			return nil, fmt.Errorf("nftables: Options.ClusterCIDRs[%d] %q: not a valid prefix", i, p)
		}
		p = p.Masked()
		c.cluster[fam(p.Addr().Is6())] = append(c.cluster[fam(p.Addr().Is6())], p)
	}
	if len(o.NodePortAddresses) == 0 {
		c.allNP = [2]bool{true, true}
	}
	for i, p := range o.NodePortAddresses {
		if !p.IsValid() {
			return nil, fmt.Errorf("nftables: Options.NodePortAddresses[%d] %q: not a valid prefix", i, p)
		}
		p = p.Masked()
		f := fam(p.Addr().Is6())
		if p.Bits() == 0 {
			c.allNP[f] = true
			continue
		}
		c.nodePort[f] = append(c.nodePort[f], p)
	}
	return c, nil
}
