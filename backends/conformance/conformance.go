// Package conformance is the scenario suite every lbkit datapath must pass,
// with real TCP and UDP traffic.
//
// A datapath's test calls Run with a Factory that builds the datapath for one
// scenario. Each scenario is a subtest with its own fresh topology and its own
// lb.Engine (MinSyncPeriod 0, changes applied with Engine.Flush), so scenarios
// never see each other's state:
//
//   - as root, in a hermetic netns.Topology: a client namespace sends traffic
//     to virtual IPs from 198.18.100.0/24 (and 2001:2:0:100::/64) through the
//     node namespace the datapath programs, to three backend namespaces;
//   - otherwise, when Options.Loopback is set, on 127.0.0.1: three backend
//     servers on ephemeral ports and frontends on free ports of 127.0.0.1,
//     with requests from the test process. Scenarios that need IPv6 or a
//     namespace are skipped there, with the reason.
//
// Scenarios that need something the datapath does not declare in its
// Capabilities, or a behaviour its Options do not claim (kernel NAT keeping
// the client's address, masquerading, rejects, stale UDP cleanup, foreign
// state), are skipped with the reason, never failed. Scenarios about NodePorts,
// masquerading and hairpin traffic run in namespace mode only; a scenario
// may set Env's masquerade and NodePort fields before the Factory runs. Statistical checks
// use bounds wide enough never to flake; checks are exact where the scheduler
// is (rr order, sh and maglev stickiness).
package conformance

import (
	"log/slog"
	"net/netip"
	"os"
	"testing"

	"github.com/lbkit/lbkit/internal/netns"
	"github.com/lbkit/lbkit/internal/testenv"
	"github.com/lbkit/lbkit/lb"
)

// NodeName is the node the engine runs as (lb.Config.NodeName). Endpoints on
// other nodes use OtherNodeName.
const (
	NodeName      = "node-a"
	OtherNodeName = "node-b"
)

// Env is what a Factory, and the Disrupt and Leftovers hooks, get to know
// about the scenario they run in.
type Env struct {
	// Netns is the path of the node namespace the datapath must program
	// (/var/run/netns/NAME); "" in loopback mode, where the datapath works
	// in the test's own namespace and only on 127.0.0.1.
	Netns string
	// NodeName is the engine's node name ("node-a").
	NodeName string
	// Topo is the scenario's topology; nil in loopback mode.
	Topo *netns.Topology
	// Logger is a test logger for the datapath.
	Logger *slog.Logger
	// MasqueradeAll, ClusterCIDRs and NodePortAddresses are what the
	// scenario expects of a kernel datapath's masquerading and NodePort
	// settings (kube-proxy's masqueradeAll, clusterCIDR and
	// nodePortAddresses); the Factory passes them on when it can. The
	// client range (198.18.1.0/24) is inside ClusterCIDRs or not as the
	// scenario needs. Zero values: no masquerading beyond what the frontend
	// kind needs, every node address serves NodePorts.
	MasqueradeAll     bool
	ClusterCIDRs      []netip.Prefix
	NodePortAddresses []netip.Prefix
}

// Loopback reports whether the scenario runs on 127.0.0.1 without namespaces.
func (e *Env) Loopback() bool { return e.Topo == nil }

// Factory builds the datapath under test for one scenario. It may register
// t.Cleanup functions; the suite itself calls the engine's Cleanup at the end
// of every scenario.
type Factory func(t *testing.T, env *Env) lb.Datapath

// Options describe what the suite needs to know about a datapath beyond its
// Capabilities.
type Options struct {
	// LocalVIPs: the datapath needs VIPs to be local addresses of the node
	// (a userspace proxy binds them), so the topology adds local routes for
	// the VIP ranges on the node.
	LocalVIPs bool
	// Loopback: when namespaces are unavailable (not root), run on 127.0.0.1
	// instead of skipping the whole suite.
	Loopback bool
	// KeepsEstablished: an established TCP connection to an endpoint that is
	// removed keeps working (as with kube-proxy's conntrack-based datapaths
	// and a proxy that does not cut connections). When false only new
	// connections are checked after a removal.
	KeepsEstablished bool
	// Disrupt simulates an outsider wiping the datapath's kernel state (e.g.
	// flushing its table) so that traffic to the services fails; nil skips
	// the full-resync scenario, with the reason.
	Disrupt func(t *testing.T, env *Env)
	// Leftovers lists kernel state the datapath left behind after Cleanup
	// (empty = clean); nil means only the traffic check is done.
	Leftovers func(t *testing.T, env *Env) []string
	// PreservesClientIP: backends see the client's own address when no
	// masquerading applies (kernel NAT); a proxy that opens its own
	// connections does not. Scenarios that check source addresses need it.
	PreservesClientIP bool
	// Masquerades: the datapath honours Env.MasqueradeAll and
	// Env.ClusterCIDRs, and masquerades external traffic (NodePort,
	// ExternalIP, LoadBalancer) under the Cluster policy, to the node's
	// bridge address (198.18.2.1), as kube-proxy does.
	Masquerades bool
	// RejectsWithoutEndpoints: a new connection to a frontend without
	// endpoints is refused at once (TCP ECONNREFUSED, an ICMP port
	// unreachable for UDP) rather than left to time out.
	RejectsWithoutEndpoints bool
	// ClearsStaleUDP: a UDP flow (one client address and port) whose
	// backend is removed reaches a live backend with its next datagram
	// (kernel datapaths delete the flow's conntrack entry).
	ClearsStaleUDP bool
	// Foreign installs, in the node namespace, state that belongs to
	// someone else (e.g. another nftables table) and returns a check that
	// fails the test if that state changed; the suite calls it after
	// syncs of every kind and after Cleanup. nil skips the scenario.
	Foreign func(t *testing.T, env *Env) (check func(t *testing.T, after string))
}

// scenario is one subtest of the suite.
type scenario struct {
	name string
	// ipv6 gives the topology IPv6 addresses; such scenarios are skipped in
	// loopback mode.
	ipv6 bool
	// env, when set, adjusts the Env before the Factory builds the
	// datapath (masquerade and NodePort settings).
	env func(*Env)
	// skip, when set, returns why the scenario does not apply to a
	// datapath with these Options ("" when it does), so that it is skipped
	// before a topology is built.
	skip func(Options) string
	run  func(h *harness)
}

// scenarios lists the suite, grouped by theme (scenarios_*.go).
func scenarios() []scenario {
	var all []scenario
	all = append(all, spreadScenarios()...)
	all = append(all, endpointScenarios()...)
	all = append(all, schedulerScenarios()...)
	all = append(all, policyScenarios()...)
	all = append(all, lifecycleScenarios()...)
	all = append(all, nodeScenarios()...)
	all = append(all, masqueradeScenarios()...)
	return all
}

// Run runs every scenario against datapaths built by f. Without network
// namespaces (not root) the suite runs on 127.0.0.1 when opts.Loopback is
// set, and is skipped with the reason otherwise.
func Run(t *testing.T, f Factory, opts Options) {
	t.Helper()
	if f == nil {
		t.Fatal("conformance.Run: nil Factory")
	}
	if os.Geteuid() == 0 {
		testenv.RequireTool(t, "ip", "iproute2")
	}
	nsOK, reason := netns.Available()
	if !nsOK {
		if !opts.Loopback {
			t.Skipf("conformance: %s (and Options.Loopback is off)", reason)
		}
		t.Logf("conformance: loopback mode on 127.0.0.1: %s", reason)
	}
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			if sc.skip != nil {
				if why := sc.skip(opts); why != "" {
					t.Skip("conformance: " + why)
				}
			}
			if sc.ipv6 && !nsOK {
				t.Skip("conformance: IPv6 scenarios need network namespaces (loopback mode has only 127.0.0.1)")
			}
			h := newHarness(t, f, opts, !nsOK, sc.ipv6, sc.env)
			sc.run(h)
		})
	}
}
