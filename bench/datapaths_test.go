package bench

import (
	"strings"
	"testing"

	"github.com/lbkit/lbkit/backends/ebpf"
	"github.com/lbkit/lbkit/backends/iptables"
	"github.com/lbkit/lbkit/backends/nftables"
	"github.com/lbkit/lbkit/internal/testenv"
	"github.com/lbkit/lbkit/lb"
)

// datapath is one way the node of a netns topology forwards the benchmark's
// traffic.
type datapath struct {
	name string
	// new programs the namespace at path; nil means plain routing: no
	// datapath, the client addresses the backends directly.
	new func(path string) (lb.Datapath, error)
}

// plain reports whether d is plain routing, the baseline without a datapath.
func (d datapath) plain() bool { return d.new == nil }

// requireTools ends tb as testenv.RequireTool does when a program d runs is
// missing (the iptables flavours run iptables-FLAVOUR-restore and -save).
func (d datapath) requireTools(tb testing.TB) {
	tb.Helper()
	flavour, ok := strings.CutPrefix(d.name, "iptables-")
	if !ok {
		return
	}
	for _, fam := range []string{"iptables", "ip6tables"} {
		for _, suffix := range []string{"", "-restore", "-save"} {
			testenv.RequireTool(tb, fam+"-"+flavour+suffix, "iptables")
		}
	}
}

// datapaths lists the baseline and every kernel datapath the connection
// benchmarks compare, each with its default options.
func datapaths() []datapath {
	return []datapath{
		{"plain", nil},
		{"iptables-legacy", func(p string) (lb.Datapath, error) {
			return iptables.New(iptables.Options{Netns: p, Flavour: iptables.FlavourLegacy})
		}},
		{"iptables-nft", func(p string) (lb.Datapath, error) {
			return iptables.New(iptables.Options{Netns: p, Flavour: iptables.FlavourNFT})
		}},
		{"nftables", func(p string) (lb.Datapath, error) { return nftables.New(nftables.Options{Netns: p}) }},
		{"ebpf-tc", func(p string) (lb.Datapath, error) {
			return ebpf.New(ebpf.Options{Netns: p, Attach: ebpf.AttachTC})
		}},
		{"ebpf-xdp", func(p string) (lb.Datapath, error) {
			return ebpf.New(ebpf.Options{Netns: p, Attach: ebpf.AttachXDP})
		}},
	}
}
