package ebpf

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/lbkit/lbkit/internal/netns"
	"github.com/lbkit/lbkit/internal/nsutil"
	"github.com/lbkit/lbkit/lb"
)

// TestHotplugTC: an interface created after the first Sync gets the TC
// programs (TCX, or clsact with LegacyTC) without a restart or another
// Sync: a new client behind it reaches the backends through the VIP (DNAT
// on its ingress, reverse NAT on its egress). Deleting it drops its
// bookkeeping, and Close leaves nothing attached.
func TestHotplugTC(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		name := "tcx"
		if legacy {
			name = "clsact"
		}
		t.Run(name, func(t *testing.T) {
			log, logs := observed()
			h := newHookEnv(t, Options{LegacyTC: legacy, Logger: log}, lb.ClusterIP, lb.PolicyCluster)
			vip := netip.AddrPortFrom(h.fe.Addr, h.fe.Port)
			s := h.d.AttachStatus()
			if !s.Watching || programCount(s, netns.NodeClientLink) != 2 {
				t.Fatalf("after the first Sync: %+v, want watching and 2 programs on %s", s, netns.NodeClientLink)
			}
			before := h.stats(t)

			c2 := newClientNS(t, "client2")
			plugClient(t, h.topo.Node, c2, "lbhot0", 3)
			waitStatus(t, h.d, "attached to lbhot0", func(s AttachStatus) bool { return programCount(s, "lbhot0") == 2 })
			if got := programsOn(t, h.topo.Node.Path, "lbhot0"); len(got) == 0 {
				t.Errorf("AttachStatus lists programs on lbhot0 but the kernel shows none")
			}
			backends := make(map[string]int)
			for i := range 20 {
				r, err := c2.Request(t.Context(), "tcp", vip)
				if err != nil {
					t.Fatalf("request %d from the hotplugged client to %s: %v", i, vip, err)
				}
				if r.Client.Addr() != c2.IPv4 {
					t.Errorf("backend %s saw client %s, want %s (no masquerade)", r.Backend, r.Client.Addr(), c2.IPv4)
				}
				backends[r.Backend]++
			}
			if len(backends) < 2 {
				t.Errorf("20 requests reached only %v, want the service's backends", backends)
			}
			after := h.stats(t)
			if after.TCForward-before.TCForward < 20 || after.TCReverse-before.TCReverse < 20 {
				t.Errorf("stats before %+v, after %+v: want at least 20 more packets translated each way", before, after)
			}
			in, err := h.d.Inspect(t.Context(), h.fe.ID())
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(strings.Join(in.Details, "\n"), "lbhot0 (2 programs)") {
				t.Errorf("Inspect details do not show lbhot0 attached: %q", in.Details)
			}
			if !logged(logs, "attached", "lbhot0") {
				t.Errorf("no \"attached\" log entry for lbhot0: %v", logs.All())
			}

			ipCmd(t, "-n", h.topo.Node.NS, "link", "del", "lbhot0")
			s = waitStatus(t, h.d, "forgot lbhot0", func(s AttachStatus) bool { return programCount(s, "lbhot0") < 0 })
			checkConsistent(t, s, 2)
			if !logged(logs, "interface gone: dropped its attachments", "lbhot0") {
				t.Errorf("no log entry for lbhot0 going away: %v", logs.All())
			}
			if _, err := h.topo.Client.Request(t.Context(), "tcp", vip); err != nil {
				t.Errorf("the first client after lbhot0 went away: %v", err)
			}

			if err := h.d.Cleanup(context.Background()); err != nil {
				t.Fatalf("Cleanup: %v", err)
			}
			if s := h.d.AttachStatus(); s.Watching || len(s.Interfaces) > 0 {
				t.Errorf("after Close: %+v, want no watcher and no interfaces", s)
			}
			left, err := leftovers(h.topo.Node.Path)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range left {
				t.Errorf("after Close: %s", l)
			}
		})
	}
}

// TestHotplugExcluded: with Options.Interfaces, an interface the list does
// not name stays unattached when it appears, while a listed one that goes
// away and comes back is attached again.
func TestHotplugExcluded(t *testing.T) {
	c3 := (*netns.Host)(nil)
	h := newHookEnvWith(t, Options{Interfaces: []string{netns.NodeClientLink, netns.BridgeName, "lbsel"}},
		lb.ClusterIP, lb.PolicyCluster, hookSetup{prepare: func(topo *netns.Topology) {
			c3 = newClientNS(t, "client3")
			plugClient(t, topo.Node, c3, "lbsel", 4)
		}})
	vip := netip.AddrPortFrom(h.fe.Addr, h.fe.Port)
	if n := programCount(h.d.AttachStatus(), "lbsel"); n != 2 {
		t.Fatalf("lbsel (listed, present at the first Sync) has %d programs, want 2", n)
	}

	c2 := newClientNS(t, "client2")
	plugClient(t, h.topo.Node, c2, "lbhot1", 3)
	// Events are applied in order: once the re-created lbsel is attached,
	// lbhot1's creation has been seen.
	ipCmd(t, "-n", h.topo.Node.NS, "link", "del", "lbsel")
	waitStatus(t, h.d, "forgot lbsel", func(s AttachStatus) bool { return programCount(s, "lbsel") < 0 })
	plugClient(t, h.topo.Node, c3, "lbsel", 4)
	s := waitStatus(t, h.d, "attached to the re-created lbsel", func(s AttachStatus) bool { return programCount(s, "lbsel") == 2 })
	checkConsistent(t, s, 2)
	if n := programCount(s, "lbhot1"); n >= 0 {
		t.Errorf("lbhot1 (not listed) is in the status with %d programs", n)
	}
	if got := programsOn(t, h.topo.Node.Path, "lbhot1"); len(got) > 0 {
		t.Errorf("lbhot1 (not listed) has %v", got)
	}
	if _, err := c3.Request(t.Context(), "tcp", vip); err != nil {
		t.Errorf("from behind the re-created lbsel: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	if r, err := c2.Request(ctx, "tcp", vip); err == nil {
		t.Errorf("from behind lbhot1 (not listed) the VIP answered as %s: nothing should translate there", r.Backend)
	}
}

// TestHotplugXDP: in XDP mode a new interface gets XDP (generic here) and
// TC; a new bridge port gets TC only, and XDP follows when it leaves the
// bridge.
func TestHotplugXDP(t *testing.T) {
	h := newHookEnv(t, Options{Attach: AttachXDP, XDPMode: XDPGeneric}, lb.LoadBalancer, lb.PolicyLocal)
	vip := netip.AddrPortFrom(h.fe.Addr, h.fe.Port)
	before := h.stats(t)

	c2 := newClientNS(t, "client2")
	plugClient(t, h.topo.Node, c2, "lbhot0", 3)
	waitStatus(t, h.d, "attached xdp and tc to lbhot0", func(s AttachStatus) bool { return programCount(s, "lbhot0") == 3 })
	for i := range 20 {
		r, err := c2.Request(t.Context(), "tcp", vip)
		if err != nil {
			t.Fatalf("request %d from the hotplugged client: %v", i, err)
		}
		if r.Client.Addr() != c2.IPv4 {
			t.Errorf("backend saw %s, want %s", r.Client.Addr(), c2.IPv4)
		}
	}
	after := h.stats(t)
	if after.XDPForward-before.XDPForward < 20 || after.TCForward != 0 || after.TCReverse-before.TCReverse < 20 {
		t.Errorf("stats before %+v, after %+v: want the new client's packets translated by XDP, replies by TC egress", before, after)
	}

	node := h.topo.Node.NS
	ipCmd(t, "-n", node, "link", "add", "name", "lbhot2", "type", "veth", "peer", "name", "lbhot2p")
	ipCmd(t, "-n", node, "link", "set", "lbhot2", "master", netns.BridgeName, "up")
	s := waitStatus(t, h.d, "lbhot2 bridged with tc only", func(s AttachStatus) bool {
		return programCount(s, "lbhot2") == 2 && programCount(s, "lbhot2p") == 3
	})
	if xdpAttached(t, h.topo.Node.Path, "lbhot2") {
		t.Errorf("the bridge port lbhot2 has an XDP program (status %+v)", s)
	}
	if !xdpAttached(t, h.topo.Node.Path, "lbhot2p") {
		t.Errorf("lbhot2p has no XDP program (status %+v)", s)
	}
	ipCmd(t, "-n", node, "link", "set", "lbhot2", "nomaster")
	s = waitStatus(t, h.d, "xdp on lbhot2 once out of the bridge", func(s AttachStatus) bool { return programCount(s, "lbhot2") == 3 })
	if !xdpAttached(t, h.topo.Node.Path, "lbhot2") {
		t.Errorf("lbhot2 out of the bridge has no XDP program (status %+v)", s)
	}
	if s.Errors != 0 {
		t.Errorf("status %+v: want no attach errors", s)
	}

	if err := h.d.Cleanup(context.Background()); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	left, err := leftovers(h.topo.Node.Path)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range left {
		t.Errorf("after Close: %s", l)
	}
}

// xdpAttached reports whether ifname in the namespace has an XDP program.
func xdpAttached(t *testing.T, nsPath, ifname string) bool {
	t.Helper()
	var on bool
	err := nsutil.Do(nsPath, func() error {
		l, err := netlink.LinkByName(ifname)
		if err != nil {
			return err
		}
		on = l.Attrs().Xdp != nil && l.Attrs().Xdp.Attached
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return on
}
