package iptables

import (
	"context"
	"testing"

	"github.com/lbkit/lbkit/backends/conformance"
	"github.com/lbkit/lbkit/lb"
)

// TestConformance runs the datapath conformance suite in network namespaces
// on both flavours (skipped unless root).
func TestConformance(t *testing.T) {
	for _, f := range flavours {
		t.Run(string(f), func(t *testing.T) {
			requireRoot(t)
			conformance.Run(t, func(t *testing.T, env *conformance.Env) lb.Datapath {
				d, err := New(Options{
					Netns: env.Netns, Logger: env.Logger, Flavour: f, NodeName: env.NodeName,
					MasqueradeAll: env.MasqueradeAll, ClusterCIDRs: env.ClusterCIDRs,
					NodePortAddresses: env.NodePortAddresses,
				})
				if err != nil {
					t.Fatal(err)
				}
				return d
			}, conformance.Options{
				// The node routes the VIPs locally, as a real node routes
				// the service range somewhere: traffic to a frontend
				// without endpoints then reaches the filter table's
				// REJECT instead of failing in routing (no default route
				// in the test namespaces). DNAT happens before routing.
				LocalVIPs:               true,
				KeepsEstablished:        true,
				PreservesClientIP:       true,
				Masquerades:             true,
				RejectsWithoutEndpoints: true,
				ClearsStaleUDP:          true,
				Disrupt:                 func(t *testing.T, env *conformance.Env) { flushOurChains(t, f, env.Netns) },
				Leftovers: func(t *testing.T, env *conformance.Env) []string {
					return ourLines(saveAll(t, f, env.Netns))
				},
				Foreign: func(t *testing.T, env *conformance.Env) func(*testing.T, string) {
					check := installForeign(t, f, env.Netns)
					return func(t *testing.T, after string) { check(t, after) }
				},
			})
		})
	}
}

// flushOurChains empties every chain of ours in both families' nat tables,
// as an outsider wiping lbkit's rules would.
func flushOurChains(t testing.TB, f Flavour, netns string) {
	t.Helper()
	r := runner{netns: netns}
	for _, v6 := range []bool{false, true} {
		tl, err := lookTools(f, v6)
		if err != nil {
			t.Fatal(err)
		}
		out, err := r.save(context.Background(), tl, "nat")
		if err != nil {
			t.Fatal(err)
		}
		chains, _ := ourChains(out)
		if len(chains) == 0 {
			continue
		}
		in := "*nat\n"
		for _, c := range chains {
			in += ":" + c + " - [0:0]\n"
		}
		restoreIn(t, f, netns, v6, in+"COMMIT\n")
	}
}
