package iptables

import (
	"flag"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lbkit/lbkit/internal/golden"
	"github.com/lbkit/lbkit/lb"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenServices is a small world covering every kind of rule: kinds,
// protocols, affinity, weights, both families, Local policy without local
// endpoints, no endpoints at all, and a key full of characters iptables
// would otherwise interpret.
func goldenServices() []*lb.ServiceState {
	web := svcState("default/web/http", []lb.Frontend{
		clusterIP("198.18.100.1", 80, lb.TCP),
		{Addr: netip.IPv4Unspecified(), Port: 30080, Protocol: lb.TCP, Kind: lb.NodePort},
		{Addr: netip.MustParseAddr("198.18.100.201"), Port: 80, Protocol: lb.TCP, Kind: lb.ExternalIP},
	}, "198.18.2.10:8080", "198.18.2.11:8080", "198.18.2.12:8080")
	web.Service.Affinity = lb.SessionAffinity{Type: lb.AffinityClientIP, Timeout: time.Hour}
	for i := range web.Frontends {
		bs := slices.Clone(web.Frontends[i].Backends)
		bs[1].NodeName = "node-a"
		web.Frontends[i].Backends = bs
	}

	dns := svcState("kube-system/dns/dns", []lb.Frontend{
		clusterIP("198.18.100.10", 53, lb.UDP), clusterIP("198.18.100.10", 53, lb.TCP),
	}, "198.18.2.20:53", "198.18.2.21:53")
	for i := range dns.Frontends {
		dns.Frontends[i].Backends = []lb.Backend{
			{Addr: netip.MustParseAddrPort("198.18.2.20:53"), Weight: 2},
			{Addr: netip.MustParseAddrPort("198.18.2.21:53"), Weight: 6},
		}
	}

	api := svcState("dual/api/https", []lb.Frontend{
		clusterIP("198.18.100.20", 443, lb.TCP), clusterIP("2001:2:0:100::20", 443, lb.TCP),
	}, "198.18.2.30:8443", "[2001:2:0:2::30]:8443", "[2001:2:0:2::31]:8443")

	lbLocal := svcState("local/lb/sctp", []lb.Frontend{
		{Addr: netip.MustParseAddr("198.18.100.50"), Port: 9999, Protocol: lb.SCTP, Kind: lb.LoadBalancer},
	}, "198.18.2.40:9999")
	lbLocal.Service.ExternalPolicy = lb.PolicyLocal
	lbLocal.Frontends[0].Backends = nil // its only endpoint is on another node

	empty := svcState("empty/svc/http", []lb.Frontend{
		clusterIP("198.18.100.60", 8080, lb.TCP),
		{Addr: netip.IPv4Unspecified(), Port: 30060, Protocol: lb.UDP, Kind: lb.NodePort},
	})

	odd := svcState(`odd/"quoted"\back'slash$(x)%;#-j/ACCEPT`, []lb.Frontend{clusterIP("198.18.100.70", 80, lb.TCP)}, "198.18.2.50:80")
	return []*lb.ServiceState{web, dns, api, lbLocal, empty, odd}
}

// goldenConfig returns the rule settings of a golden case for one family.
func goldenConfig(v6 bool, opts Options) *genConfig {
	bit := opts.MasqueradeBit
	if bit == 0 {
		bit = DefaultMasqueradeBit
	}
	return &genConfig{v6: v6, mark: markOf(bit), masqAll: opts.MasqueradeAll, nodeName: opts.NodeName,
		clusterCIDRs: ofFamily(opts.ClusterCIDRs, v6), nodePortAddrs: ofFamily(opts.NodePortAddresses, v6)}
}

// checkGolden compares got with testdata/name.golden (or rewrites it with
// -update).
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", name+".golden"), got, *update)
}

// bothFamilies renders what a plan function returns for each family.
func bothFamilies(plan func(v6 bool) *famPlan) string {
	var b strings.Builder
	for _, v6 := range []bool{false, true} {
		b.WriteString("# " + familyName(v6) + "\n")
		b.Write(plan(v6).input())
	}
	return b.String()
}

// TestGoldenFull checks the full-sync restore input under several option
// sets.
func TestGoldenFull(t *testing.T) {
	var s *lb.Snapshot
	for _, st := range goldenServices() {
		s = s.With(st)
	}
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"full_default", Options{}},
		{"full_clustercidr", Options{
			ClusterCIDRs:      []netip.Prefix{netip.MustParsePrefix("198.18.2.0/25"), netip.MustParsePrefix("2001:2:0:2::/64")},
			NodePortAddresses: []netip.Prefix{netip.MustParsePrefix("198.18.1.0/24"), netip.MustParsePrefix("198.18.3.0/24")},
		}},
		{"full_masqall_bit5", Options{MasqueradeAll: true, MasqueradeBit: 5}},
		// Only web's backend 198.18.2.11 is on this node: only it gets
		// hairpin rules.
		{"full_nodename", Options{NodeName: "node-a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkGolden(t, tc.name, bothFamilies(func(v6 bool) *famPlan {
				return fullPlan(newFamState(), goldenConfig(v6, tc.opts), s)
			}))
		})
	}
}

// TestGoldenPartial checks partial-sync inputs from the full state: an
// endpoint change rewrites one service chain and nothing else; adding and
// deleting services rewrites their shards; emptying a shard deletes it.
func TestGoldenPartial(t *testing.T) {
	var s *lb.Snapshot
	for _, st := range goldenServices() {
		s = s.With(st)
	}
	states := map[bool]*famState{}
	for _, v6 := range []bool{false, true} {
		fs := newFamState()
		states[v6] = fs.apply(fs.planFull(goldenConfig(v6, Options{}), s, nil))
	}
	steps := []struct {
		name   string
		change func(s *lb.Snapshot) (*lb.Snapshot, []lb.ServiceKey)
	}{
		{"partial_endpoint_change", func(s *lb.Snapshot) (*lb.Snapshot, []lb.ServiceKey) {
			st := svcState("default/web/http", nil)
			old, _ := s.Service("default/web/http")
			*st = *old
			st.Frontends = nil
			for _, fs := range old.Frontends {
				fs.Backends = fs.Backends[:2]
				st.Frontends = append(st.Frontends, fs)
			}
			return s.With(st), []lb.ServiceKey{"default/web/http"}
		}},
		{"partial_add_delete", func(s *lb.Snapshot) (*lb.Snapshot, []lb.ServiceKey) {
			added := svcState("new/svc/http", []lb.Frontend{clusterIP("198.18.100.99", 80, lb.TCP)}, "198.18.2.60:80")
			return s.With(added).Without("dual/api/https").Without("odd/\"quoted\"\\back'slash$(x)%;#-j/ACCEPT"),
				[]lb.ServiceKey{"new/svc/http", "dual/api/https", "odd/\"quoted\"\\back'slash$(x)%;#-j/ACCEPT"}
		}},
		{"partial_endpoints_gone", func(s *lb.Snapshot) (*lb.Snapshot, []lb.ServiceKey) {
			old, _ := s.Service("kube-system/dns/dns")
			st := *old
			st.Frontends = nil
			for _, fs := range old.Frontends {
				fs.Backends = nil
				st.Frontends = append(st.Frontends, fs)
			}
			return s.With(&st), []lb.ServiceKey{"kube-system/dns/dns"}
		}},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			var keys []lb.ServiceKey
			s, keys = step.change(s)
			checkGolden(t, step.name, bothFamilies(func(v6 bool) *famPlan {
				p := states[v6].planPartial(goldenConfig(v6, Options{}), s, keys, nil)
				if p != nil {
					states[v6] = states[v6].apply(p)
				}
				return p
			}))
		})
	}
	// After the steps, a full plan from the partial state equals one from
	// scratch: partial syncs kept the recorded state right.
	for _, v6 := range []bool{false, true} {
		fromPartial := fullPlan(states[v6], goldenConfig(v6, Options{}), s)
		scratch := newFamState()
		scratch.ready = states[v6].ready
		fromScratch := fullPlan(scratch, goldenConfig(v6, Options{}), s)
		if string(fromPartial.input()) != string(fromScratch.input()) {
			t.Errorf("%s: full plan after partial syncs differs from one from scratch:\n%s", familyName(v6),
				golden.Diff(string(fromScratch.input()), string(fromPartial.input())))
		}
	}
}

// fullPlan returns the full plan of s from fs with its restore input
// rendered (without jump checks); nil when there is nothing to write.
func fullPlan(fs *famState, g *genConfig, s *lb.Snapshot) *famPlan {
	p := fs.planFull(g, s, nil)
	if p != nil {
		p.render(g, nil, jumpTail{})
	}
	return p
}
