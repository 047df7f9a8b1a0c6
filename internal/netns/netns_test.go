package netns

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
)

// These tests build real topologies; they need root and skip otherwise.

func TestTopologyReachesBackends(t *testing.T) {
	t.Parallel()
	tp := New(t, Options{IPv6: true, TCPPorts: []uint16{8080, 9090}, UDPPorts: []uint16{8080, 5353}})
	if len(tp.Backends) != 3 {
		t.Fatalf("%d backends, want the default 3", len(tp.Backends))
	}
	for i, h := range tp.Hosts() {
		if !strings.HasPrefix(h.NS, NamePrefix) || !strings.HasSuffix(h.NS, "-"+h.Name) {
			t.Errorf("host %d: namespace %q, want %s<id>-%s", i, h.NS, NamePrefix, h.Name)
		}
		if _, err := os.Stat(h.Path); err != nil {
			t.Errorf("%s: %v", h.Name, err)
		}
	}
	for i, b := range tp.Backends {
		if b.Name != fmt.Sprintf("backend%d", i) {
			t.Errorf("backend %d named %q", i, b.Name)
		}
		for _, v6 := range []bool{false, true} {
			for _, tc := range []struct {
				network string
				ports   []uint16
			}{{"tcp", tp.Options.TCPPorts}, {"udp", tp.Options.UDPPorts}} {
				for _, port := range tc.ports {
					dst := netip.AddrPortFrom(b.Addr(v6), port)
					r, err := tp.Client.Request(t.Context(), tc.network, dst)
					if err != nil {
						t.Errorf("client -> %s %s: %v", tc.network, dst, err)
						continue
					}
					if r.Backend != b.Name || r.Client.Addr() != tp.Client.Addr(v6) {
						t.Errorf("client -> %s %s: reply %v, want %s <client %v>", tc.network, dst, r, b.Name, tp.Client.Addr(v6))
					}
				}
			}
		}
	}
	// The backends' UDP servers bound their own addresses: nothing answers
	// on a port that was not asked for.
	if _, err := tp.Client.Request(t.Context(), "tcp", netip.AddrPortFrom(tp.Backends[0].IPv4, 5353)); err == nil {
		t.Error("TCP on port 5353 answered; only UDP was asked for")
	}
}

func TestRequestFromFixedSource(t *testing.T) {
	t.Parallel()
	tp := New(t, Options{Backends: 1, IPv6: true})
	b := tp.Backends[0]
	for _, v6 := range []bool{false, true} {
		for _, network := range []string{"tcp", "udp"} {
			local := netip.AddrPortFrom(tp.Client.Addr(v6), 40001)
			dst := netip.AddrPortFrom(b.Addr(v6), DefaultPort)
			for i := range 3 { // the same source again at once
				r, err := tp.Client.RequestFrom(t.Context(), network, local, dst)
				if err != nil {
					t.Fatalf("%s %s -> %s, try %d: %v", network, local, dst, i, err)
				}
				if r.Client != local || r.Backend != b.Name {
					t.Errorf("%s %s -> %s, try %d: reply %v, want %s %v", network, local, dst, i, r, b.Name, local)
				}
			}
		}
	}
	if _, err := tp.Client.RequestFrom(t.Context(), "tcp", netip.AddrPort{}, netip.AddrPortFrom(b.IPv4, DefaultPort)); err == nil {
		t.Error("RequestFrom with an invalid local address succeeded")
	}
}

func TestCleanupRemovesNamespaces(t *testing.T) {
	Require(t)
	t.Parallel()
	var names []string
	t.Run("build", func(t *testing.T) {
		tp := New(t, Options{Backends: 2, IPv6: true})
		for _, h := range tp.Hosts() {
			names = append(names, h.NS)
		}
		left, err := Leftovers()
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if !slices.Contains(left, n) {
				t.Errorf("Leftovers() = %v lacks live namespace %s", left, n)
			}
		}
	})
	if len(names) != 4 {
		t.Fatalf("sub-test built %d namespaces, want 4", len(names))
	}
	left, err := Leftovers()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if slices.Contains(left, n) {
			t.Errorf("namespace %s left after cleanup", n)
		}
		if _, err := os.Stat(nsPath(n)); !os.IsNotExist(err) {
			t.Errorf("%s still exists after cleanup (stat: %v)", nsPath(n), err)
		}
	}
}

func TestNoRouteLeavesTheTest(t *testing.T) {
	t.Parallel()
	tp := New(t, Options{Backends: 1, IPv6: true})
	for _, h := range tp.Hosts() {
		if out, err := h.Exec(t.Context(), "ip", "route", "get", "8.8.8.8"); err == nil {
			t.Errorf("%s: a route covers 8.8.8.8: %s", h.Name, out)
		}
		if out, err := h.Exec(t.Context(), "ip", "-6", "route", "get", "2001:4860:4860::8888"); err == nil {
			t.Errorf("%s: a route covers 2001:4860:4860::8888: %s", h.Name, out)
		}
	}
	out, err := tp.Client.Exec(t.Context(), "ip", "route", "get", "198.18.100.1")
	if err != nil || !strings.Contains(string(out), "via 198.18.1.1") {
		t.Errorf("client route to a VIP: %s (%v), want via 198.18.1.1", out, err)
	}
}

func TestNodeSettings(t *testing.T) {
	t.Parallel()
	tp := New(t, Options{Backends: 1, IPv6: true})
	want := map[string]string{
		"net/ipv4/ip_forward":                            "1",
		"net/ipv6/conf/all/forwarding":                   "1",
		"net/ipv4/conf/all/rp_filter":                    "0",
		"net/ipv4/conf/default/rp_filter":                "0",
		"net/ipv4/conf/" + NodeClientLink + "/rp_filter": "0",
		"net/ipv4/conf/" + BridgeName + "/rp_filter":     "0",
	}
	err := tp.Node.Do(func() error {
		for key, v := range want {
			b, err := os.ReadFile("/proc/sys/" + key)
			if err != nil {
				return err
			}
			if got := strings.TrimSpace(string(b)); got != v {
				t.Errorf("node %s = %s, want %s", key, got, v)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestLocalVIPs(t *testing.T) {
	t.Parallel()
	vip4 := netip.MustParseAddrPort("198.18.100.7:80")
	vip6 := netip.MustParseAddrPort("[2001:2:0:100::7]:80")
	with := New(t, Options{Backends: 1, IPv6: true, LocalVIPs: true, TCPPorts: []uint16{}, UDPPorts: []uint16{}})
	for _, vip := range []netip.AddrPort{vip4, vip6} {
		ln, err := with.Node.Listen("tcp", vip.String())
		if err != nil {
			t.Errorf("LocalVIPs: %v", err)
			continue
		}
		// A server on the VIP in the node answers the client.
		ServeTCP(t, "vip", ln)
		r, err := with.Client.Request(t.Context(), "tcp", vip)
		if err != nil {
			t.Errorf("client -> %s: %v", vip, err)
			continue
		}
		if want := with.Client.Addr(vip.Addr().Is6()); r.Backend != "vip" || r.Client.Addr() != want {
			t.Errorf("client -> %s: reply %v, want vip <%v>", vip, r, want)
		}
	}
	without := New(t, Options{Backends: 1, IPv6: true, TCPPorts: []uint16{}, UDPPorts: []uint16{}})
	for _, vip := range []netip.AddrPort{vip4, vip6} {
		if ln, err := without.Node.Listen("tcp", vip.String()); err == nil {
			ln.Close()
			t.Errorf("without LocalVIPs the node could bind %s", vip)
		}
	}
	// No ports asked for: nothing listens on the backend.
	if _, err := without.Client.Request(t.Context(), "tcp", netip.AddrPortFrom(without.Backends[0].IPv4, DefaultPort)); err == nil {
		t.Error("a backend without ports answered")
	}
}

func TestHostDialAndExec(t *testing.T) {
	t.Parallel()
	tp := New(t, Options{Backends: 1})
	if tp.Client.IPv6.IsValid() || tp.BridgeIPv6.IsValid() {
		t.Errorf("IPv6 addresses set without Options.IPv6: %v %v", tp.Client.IPv6, tp.BridgeIPv6)
	}
	b := tp.Backends[0]
	c, err := tp.Client.Dial(t.Context(), "tcp", netip.AddrPortFrom(b.IPv4, DefaultPort).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if want := b.Name + " " + c.LocalAddr().String() + "\n"; line != want {
		t.Errorf("identity line %q, want %q", line, want)
	}
	out, err := tp.Client.Exec(t.Context(), "ip", "-br", "addr", "show", "dev", HostLink)
	if err != nil || !strings.Contains(string(out), "198.18.1.2/24") {
		t.Errorf("client %s: %s (%v), want 198.18.1.2/24", HostLink, out, err)
	}
	if _, err := tp.Client.Exec(t.Context(), "false"); err == nil {
		t.Error("Exec of a failing command returned no error")
	}
}

func TestNothingInRootNamespace(t *testing.T) {
	t.Parallel()
	New(t, Options{Backends: 2, IPv6: true})
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range ifs {
		if i.Name == BridgeName || i.Name == NodeClientLink || strings.HasPrefix(i.Name, "lbback") {
			t.Errorf("interface %s appeared in the root namespace", i.Name)
		}
	}
}
