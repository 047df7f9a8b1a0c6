package nftables_test

import (
	"os"
	"strings"
	"testing"

	"github.com/lbkit/lbkit/backends/conformance"
	"github.com/lbkit/lbkit/backends/nftables"
	"github.com/lbkit/lbkit/internal/testenv"
	"github.com/lbkit/lbkit/lb"
)

// TestConformance runs the datapath conformance suite in network
// namespaces (root only; skipped otherwise). The nft command inspects and
// disturbs the ruleset.
func TestConformance(t *testing.T) {
	if os.Geteuid() == 0 {
		testenv.RequireTool(t, "nft", "nftables")
	}
	conformance.Run(t, func(t *testing.T, env *conformance.Env) lb.Datapath {
		dp, err := nftables.New(nftables.Options{
			Netns: env.Netns, Logger: env.Logger,
			MasqueradeAll: env.MasqueradeAll, ClusterCIDRs: env.ClusterCIDRs, NodePortAddresses: env.NodePortAddresses,
		})
		if err != nil {
			t.Fatal(err)
		}
		return dp
	}, conformance.Options{
		KeepsEstablished:        true,
		PreservesClientIP:       true,
		Masquerades:             true,
		RejectsWithoutEndpoints: true,
		ClearsStaleUDP:          true,
		Disrupt: func(t *testing.T, env *conformance.Env) {
			for _, fam := range []string{"ip", "ip6"} {
				nft(t, env, "delete", "table", fam, nftables.DefaultTable)
			}
		},
		Leftovers: func(t *testing.T, env *conformance.Env) []string {
			return ownTables(nft(t, env, "list", "tables"))
		},
		Foreign: installForeign,
	})
}

// ownTables returns the lines of `nft list tables` that are the datapath's.
func ownTables(list string) []string {
	var own []string
	for _, line := range strings.Split(list, "\n") {
		if l := strings.TrimSpace(line); l == "table ip "+nftables.DefaultTable || l == "table ip6 "+nftables.DefaultTable {
			own = append(own, l)
		}
	}
	return own
}

// foreignRuleset is someone else's nftables state in the node namespace:
// tables of every family the datapath uses, one of them named like the
// datapath's own in another family, with hooked chains, rules, sets and
// elements.
const foreignRuleset = `
table inet lbkit {
	chain input {
		type filter hook input priority 0; policy accept;
		tcp dport 9 counter accept
	}
}
table ip foreign {
	set blocked {
		type ipv4_addr
		elements = { 198.18.9.9 }
	}
	chain prerouting {
		type nat hook prerouting priority -150; policy accept;
		ip daddr 198.18.9.8 tcp dport 7 dnat to 198.18.9.9
	}
	chain forward {
		type filter hook forward priority 0; policy accept;
		ip saddr @blocked drop
	}
}
table ip6 foreign {
	chain output {
		type filter hook output priority 10; policy accept;
		ip6 daddr 2001:2:9::9 counter
	}
}
`

// installForeign loads foreignRuleset and returns a check that it is still
// there, unchanged.
func installForeign(t *testing.T, env *conformance.Env) func(t *testing.T, after string) {
	t.Helper()
	load(t, env, foreignRuleset)
	want := foreignState(t, env)
	return func(t *testing.T, after string) {
		t.Helper()
		if got := foreignState(t, env); got != want {
			t.Errorf("after %s the foreign tables changed:\n%s\nwant:\n%s", after, got, want)
		}
	}
}

// foreignState lists the foreign tables.
func foreignState(t *testing.T, env *conformance.Env) string {
	t.Helper()
	var b strings.Builder
	for _, tbl := range [][]string{{"inet", "lbkit"}, {"ip", "foreign"}, {"ip6", "foreign"}} {
		b.WriteString(nft(t, env, "list", "table", tbl[0], tbl[1]))
	}
	return b.String()
}

// nft runs the nft command in the scenario's node namespace.
func nft(t *testing.T, env *conformance.Env, args ...string) string {
	t.Helper()
	out, err := env.Topo.Node.Exec(t.Context(), "nft", args...)
	if err != nil {
		t.Fatalf("nft %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

// load loads a ruleset with nft -f in the node namespace.
func load(t *testing.T, env *conformance.Env, ruleset string) {
	t.Helper()
	out, err := env.Topo.Node.Exec(t.Context(), "sh", "-c", "nft -f - <<'EOF'\n"+ruleset+"\nEOF")
	if err != nil {
		t.Fatalf("nft -f: %v: %s", err, out)
	}
}
