package iptables

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// foreignInput are rules of someone else (kube-proxy's chain name included)
// in the tables lbkit writes to, per family: rules in the built-in chains
// lbkit jumps from, and chains of their own.
var foreignInput = map[bool]string{
	false: `*nat
:KUBE-SERVICES - [0:0]
:FOREIGN-NAT - [0:0]
-A PREROUTING -m comment --comment "foreign portal" -j KUBE-SERVICES
-A OUTPUT -d 198.18.99.1/32 -j FOREIGN-NAT
-A POSTROUTING -s 198.18.99.0/24 -j MASQUERADE
-A KUBE-SERVICES -d 198.18.99.2/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 198.18.99.3:80
-A FOREIGN-NAT -p udp -j RETURN
COMMIT
*filter
:FOREIGN-FILTER - [0:0]
-A INPUT -s 198.18.99.0/24 -j FOREIGN-FILTER
-A FORWARD -m conntrack --ctstate NEW -j FOREIGN-FILTER
-A OUTPUT -p tcp -m tcp --dport 9 -j REJECT --reject-with tcp-reset
-A FOREIGN-FILTER -p tcp -m tcp --dport 9 -j DROP
COMMIT
`,
	true: `*nat
:KUBE-SERVICES - [0:0]
-A PREROUTING -j KUBE-SERVICES
-A KUBE-SERVICES -d 2001:2:0:99::2/128 -p tcp -m tcp --dport 80 -j DNAT --to-destination [2001:2:0:99::3]:80
COMMIT
*filter
:FOREIGN-FILTER - [0:0]
-A INPUT -s 2001:2:0:99::/64 -j FOREIGN-FILTER
-A FOREIGN-FILTER -j RETURN
COMMIT
`,
}

// installForeign installs foreignInput with flavour f in netns and returns a
// check that fails the test unless the foreign rules are all still there,
// in the same order.
func installForeign(t testing.TB, f Flavour, netns string) func(t testing.TB, after string) {
	t.Helper()
	for _, v6 := range []bool{false, true} {
		restoreIn(t, f, netns, v6, foreignInput[v6])
	}
	want := foreignLines(saveAll(t, f, netns))
	if len(want) < 12 {
		t.Fatalf("foreign rules not installed: %q", want)
	}
	return func(t testing.TB, after string) {
		t.Helper()
		if got := foreignLines(saveAll(t, f, netns)); !slices.Equal(got, want) {
			t.Errorf("after %s, the foreign rules changed:\n got %q\nwant %q", after, got, want)
		}
	}
}

var counters = regexp.MustCompile(`\[\d+:\d+\]`)

// foreignLines returns the lines of iptables-save output that are not ours
// and not comments, with chain counters removed.
func foreignLines(save string) []string {
	var out []string
	for _, l := range strings.Split(save, "\n") {
		if l == "" || strings.HasPrefix(l, "#") || strings.Contains(l, chainPrefix) {
			continue
		}
		out = append(out, counters.ReplaceAllString(l, "[]"))
	}
	return out
}
