package iptables

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/lbkit/lbkit/lb"
)

// oddKeys are service keys with every character iptables-restore, the shell
// or a comment could interpret.
var oddKeys = []lb.ServiceKey{
	"default/web/http",
	`a"b`, `a\b`, `a\"b`, `"`, `\`, `'quoted'`,
	`x"-j ACCEPT`, `$(reboot)`, "`id`", `50%`, `%41`, `%*`, `#comment`, `a;b|c&d`,
	"ünïcödé/サービス", "tab\there", "new\nline -A INPUT -j DROP", "\x00nul",
	lb.ServiceKey(strings.Repeat("long/", 60)), lb.ServiceKey(strings.Repeat(`"`, 300)),
}

func TestEscapeKeyIsSafeAndReversible(t *testing.T) {
	for _, k := range oddKeys {
		esc := escapeKey(k)
		if len(esc) > maxCommentKey {
			t.Errorf("escapeKey(%q) is %d bytes, want at most %d", k, len(esc), maxCommentKey)
		}
		for i := 0; i < len(esc); i++ {
			if c := esc[i]; !safeCommentByte(c) && c != '%' && c != '*' {
				t.Errorf("escapeKey(%q) = %q holds %q", k, esc, c)
			}
		}
		got, truncated, ok := unescapeKey(esc)
		switch {
		case !ok:
			t.Errorf("unescapeKey(escapeKey(%q) = %q) failed", k, esc)
		case truncated && !strings.HasPrefix(string(k), string(got)):
			t.Errorf("truncated key %q does not start the key %q", got, k)
		case !truncated && got != k:
			t.Errorf("round trip of %q gave %q", k, got)
		}
	}
	// Distinct long keys sharing a prefix get distinct comments.
	a, b := escapeKey(lb.ServiceKey(strings.Repeat("x", 300)+"a")), escapeKey(lb.ServiceKey(strings.Repeat("x", 300)+"b"))
	if a == b {
		t.Errorf("two long keys share the comment %q", a)
	}
}

func TestUnescapeKeyRejectsForeignComments(t *testing.T) {
	for _, c := range []string{"has space", `quote"`, "%4", "%zz", "tab\t"} {
		if k, _, ok := unescapeKey(c); ok {
			t.Errorf("unescapeKey(%q) = %q, want failure", c, k)
		}
	}
}

func TestChainNames(t *testing.T) {
	fixed := []string{chainServices, chainNodePorts, chainPostrouting, chainNonCluster, chainNoEndpoints, shardChain(0), shardChain(255)}
	var svc []string
	for _, k := range oddKeys {
		for _, p := range []lb.Protocol{lb.TCP, lb.UDP, lb.SCTP} {
			for _, ext := range []bool{false, true} {
				svc = append(svc, serviceChain(k, p, ext, 0), serviceChain(k, p, ext, 1))
			}
		}
		svc = append(svc, recentName(k, lb.TCP, netip.MustParseAddrPort("198.18.2.1:80")))
	}
	for _, n := range slices.Concat(fixed, svc) {
		// iptables chain names hold at most 28 characters.
		if len(n) > 28 || !isOurChain(n) || strings.ContainsAny(n, " \"'\\") {
			t.Errorf("bad name %q", n)
		}
	}
	if s := slices.Clone(svc); len(slices.Compact(slices.Sorted(slices.Values(s)))) != len(svc) {
		t.Error("two service chains or recent lists share a name")
	}
	// Every fixed chain sorts before every service chain (the restore
	// order relies on it).
	for _, f := range fixed {
		if f >= serviceChainPrefix {
			t.Errorf("fixed chain %q sorts after the service chains", f)
		}
	}
}

func TestShards(t *testing.T) {
	for _, tc := range []struct {
		addr  string
		shard int
		match string
	}{
		{"198.18.100.1", 1, "0.0.0.1/0.0.0.255"},
		{"198.18.100.255", 255, "0.0.0.255/0.0.0.255"},
		{"2001:2::1:ab", 0xab, "::ab/::ff"},
	} {
		a := netip.MustParseAddr(tc.addr)
		if got := shardOf(a); got != tc.shard {
			t.Errorf("shardOf(%s) = %d, want %d", a, got, tc.shard)
		}
		if got := shardMatch(tc.shard, a.Is6()); got != tc.match {
			t.Errorf("shardMatch(%d) = %q, want %q", tc.shard, got, tc.match)
		}
	}
	if shardChain(10) != "LBKIT-FE-0a" {
		t.Errorf("shardChain(10) = %q", shardChain(10))
	}
}

func TestSplitRule(t *testing.T) {
	line := `-A LBKIT-FE-01 -d 198.18.100.1/32 -p tcp -m comment --comment "a b \"c\" \\d" -j LBKIT-SVC-X`
	got := splitRule(line)
	want := []string{"-A", "LBKIT-FE-01", "-d", "198.18.100.1/32", "-p", "tcp", "-m", "comment", "--comment", `a b "c" \d`, "-j", "LBKIT-SVC-X"}
	if !slices.Equal(got, want) {
		t.Errorf("splitRule:\n got %q\nwant %q", got, want)
	}
	r := parseRules([]byte(line + "\n"))[0]
	if r.chain != "LBKIT-FE-01" || r.target() != "LBKIT-SVC-X" {
		t.Errorf("rule chain %q target %q", r.chain, r.target())
	}
	// A comment that reads like a flag is not taken for one.
	r = parseRules([]byte(`-A X -m comment --comment -j -j RETURN` + "\n"))[0]
	if r.target() != "RETURN" {
		t.Errorf("target %q, want RETURN", r.target())
	}
}

func TestOurChains(t *testing.T) {
	save := `*nat
:PREROUTING ACCEPT [3:180]
:KUBE-SERVICES - [0:0]
:LBKIT-SERVICES - [0:0]
:LBKIT-SVC-AAAA - [0:0]
-A PREROUTING -j KUBE-SERVICES
-A PREROUTING -m comment --comment "lbkit service frontends" -j LBKIT-SERVICES
-A KUBE-SERVICES -j LBKIT-SVC-AAAA
-A LBKIT-SERVICES -j LBKIT-SVC-AAAA
COMMIT
`
	chains, in := ourChains([]byte(save))
	if !slices.Equal(chains, []string{"LBKIT-SERVICES", "LBKIT-SVC-AAAA"}) {
		t.Errorf("chains %q", chains)
	}
	if len(in) != 2 || in[0].chain != "PREROUTING" || in[1].chain != "KUBE-SERVICES" {
		t.Errorf("jumps into our chains: %+v", in)
	}
}

func TestFlavour(t *testing.T) {
	if f := flavourOfVersion("iptables v1.8.9 (nf_tables)\n"); f != FlavourNFT {
		t.Errorf("nf_tables: %q", f)
	}
	if f := flavourOfVersion("iptables v1.8.9 (legacy)\n"); f != FlavourLegacy {
		t.Errorf("legacy: %q", f)
	}
	if f := flavourOfVersion("iptables v1.6.1\n"); f != FlavourLegacy {
		t.Errorf("old: %q", f)
	}
	if _, err := ParseFlavour("nftables"); err == nil || !strings.Contains(err.Error(), "legacy, nft") {
		t.Errorf("ParseFlavour(nftables) = %v", err)
	}
	if tl := toolNames(FlavourNFT, true); tl.restore != "ip6tables-nft-restore" {
		t.Errorf("tools %+v", tl)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{Flavour: FlavourLegacy, MasqueradeBit: 32}, "MasqueradeBit 32"},
		{Options{Flavour: FlavourLegacy, MasqueradeBit: -1}, "MasqueradeBit -1"},
		{Options{Flavour: "xt"}, `unknown flavour "xt"`},
		{Options{Flavour: FlavourLegacy, ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/8")}}, "ClusterCIDRs[0]: 10.0.0.1/8 has host bits set"},
		{Options{Flavour: FlavourLegacy, NodePortAddresses: []netip.Prefix{{}}}, "NodePortAddresses[0]: invalid prefix"},
	} {
		if _, err := New(tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error with %q", tc.opts, err, tc.want)
		}
	}
}
