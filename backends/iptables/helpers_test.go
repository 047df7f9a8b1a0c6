package iptables

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/lbkit/lbkit/internal/testenv"
	"github.com/lbkit/lbkit/lb"
)

// flavours are the flavours the privileged tests run on.
var flavours = []Flavour{FlavourLegacy, FlavourNFT}

// requireRoot skips unless the test can create namespaces and both
// flavours' programs are installed.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("iptables: programming a network namespace needs root")
	}
	testenv.RequireTool(t, "ip", "iproute2")
	for _, f := range flavours {
		for _, v6 := range []bool{false, true} {
			n := toolNames(f, v6)
			for _, name := range []string{n.iptables, n.restore, n.save} {
				testenv.RequireTool(t, name, "iptables")
			}
		}
	}
}

// testNetns creates an empty named network namespace with lo up, deleted
// when the test ends, and returns its path. It skips unless root.
func testNetns(t testing.TB) string {
	t.Helper()
	requireRoot(t)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "lbipt-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip -n %s link set lo up: %v: %s", name, err, out)
	}
	return "/var/run/netns/" + name
}

// newTest returns a datapath of flavour f in netns, cleaned up when the
// test ends.
func newTest(t testing.TB, f Flavour, netns string, opts Options) *Datapath {
	t.Helper()
	opts.Flavour, opts.Netns = f, netns
	if opts.Logger == nil {
		opts.Logger = testenv.Logger(t)
	}
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Cleanup(context.Background()); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
	})
	return d
}

// saveAll returns iptables-save output of both tables and both families of
// flavour f in netns.
func saveAll(t testing.TB, f Flavour, netns string) string {
	t.Helper()
	var b strings.Builder
	r := runner{netns: netns}
	for _, v6 := range []bool{false, true} {
		tl, err := lookTools(f, v6)
		if err != nil {
			t.Fatal(err)
		}
		for _, table := range tables {
			out, err := r.save(context.Background(), tl, table)
			if err != nil {
				t.Fatal(err)
			}
			b.Write(out)
		}
	}
	return b.String()
}

// ourLines returns the lines of iptables-save output that mention our
// chains.
func ourLines(save string) []string {
	var out []string
	for _, l := range strings.Split(save, "\n") {
		if strings.Contains(l, chainPrefix) {
			out = append(out, l)
		}
	}
	return out
}

// restoreIn feeds restore input to flavour f's iptables-restore (v4 or v6)
// in netns, as an outsider would.
func restoreIn(t testing.TB, f Flavour, netns string, v6 bool, input string) {
	t.Helper()
	tl, err := lookTools(f, v6)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (runner{netns: netns}).restore(context.Background(), tl, []byte(input)); err != nil {
		t.Fatal(err)
	}
}

// svcState builds a service state by hand: frontends all use backends.
func svcState(key string, fes []lb.Frontend, backends ...string) *lb.ServiceState {
	svc := &lb.Service{Key: lb.ServiceKey(key), Frontends: fes}
	st := &lb.ServiceState{Service: svc}
	var bs []lb.Backend
	for _, b := range backends {
		ap := netip.MustParseAddrPort(b)
		bs = append(bs, lb.Backend{Addr: ap, Weight: 1})
		st.Endpoints = append(st.Endpoints, lb.ReadyEndpoint(ap))
	}
	for _, fe := range fes {
		var own []lb.Backend
		for _, b := range bs {
			if b.Addr.Addr().Is6() == fe.Addr.Is6() {
				own = append(own, b)
			}
		}
		st.Frontends = append(st.Frontends, lb.FrontendState{Frontend: fe, Backends: own})
	}
	return st
}

// clusterIP returns a ClusterIP frontend.
func clusterIP(addr string, port uint16, p lb.Protocol) lb.Frontend {
	return lb.Frontend{Addr: netip.MustParseAddr(addr), Port: port, Protocol: p, Kind: lb.ClusterIP}
}

// full returns a full ChangeSet naming every service of s.
func full(s *lb.Snapshot) lb.ChangeSet {
	cs := lb.ChangeSet{Full: true, Changed: map[lb.ServiceKey]struct{}{}}
	s.Range(func(st *lb.ServiceState) bool { cs.Changed[st.Key()] = struct{}{}; return true })
	return cs
}

// partial returns a partial ChangeSet of keys.
func partial(keys ...string) lb.ChangeSet {
	cs := lb.ChangeSet{Changed: map[lb.ServiceKey]struct{}{}}
	for _, k := range keys {
		cs.Changed[lb.ServiceKey(k)] = struct{}{}
	}
	return cs
}
