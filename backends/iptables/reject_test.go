package iptables

import (
	"context"
	"errors"
	"net/netip"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/lbkit/lbkit/internal/netns"
	"github.com/lbkit/lbkit/lb"
)

// TestNoEndpointsRejectOrDrop: on a node that routes the VIP range (here to
// a backend, as a node with a default route would send it on), a
// connection to a frontend without endpoints is refused at once by the
// filter table's REJECT (without it, the packet would be forwarded and
// time out); one to a Local-policy frontend whose endpoints are all on
// other nodes is dropped (no answer), as kube-proxy does.
func TestNoEndpointsRejectOrDrop(t *testing.T) {
	for _, f := range flavours {
		t.Run(string(f), func(t *testing.T) {
			requireRoot(t)
			topo := netns.New(t, netns.Options{})
			// Not back toward the client: the redirect the node would send
			// then uses up the per-host ICMP rate limit, and the REJECT's
			// ICMP error would not be sent.
			if out, err := exec.Command("ip", "-n", topo.Node.NS, "route", "add", topo.VIPRange4.String(),
				"via", topo.Backends[0].IPv4.String()).CombinedOutput(); err != nil {
				t.Fatalf("route the VIP range on the node: %v: %s", err, out)
			}
			d := newTest(t, f, topo.Node.Path, Options{NodeName: "node-a"})
			ctx := context.Background()
			empty := svcState("empty", []lb.Frontend{clusterIP("198.18.100.1", 80, lb.TCP), clusterIP("198.18.100.1", 53, lb.UDP)})
			local := svcState("local", []lb.Frontend{{Addr: netip.MustParseAddr("198.18.100.2"), Port: 80, Protocol: lb.TCP, Kind: lb.LoadBalancer}},
				netip.AddrPortFrom(topo.Backends[0].IPv4, netns.DefaultPort).String())
			local.Service.ExternalPolicy = lb.PolicyLocal
			local.Frontends[0].Backends = nil // the endpoint is on another node
			s := (*lb.Snapshot)(nil).With(empty).With(local)
			if err := d.Sync(ctx, s, full(s)); err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				network string
				addr    string
			}{{"tcp", "198.18.100.1:80"}, {"udp", "198.18.100.1:53"}} {
				rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				_, err := topo.Client.Request(rctx, tc.network, netip.MustParseAddrPort(tc.addr))
				cancel()
				if !errors.Is(err, syscall.ECONNREFUSED) {
					t.Errorf("%s %s without endpoints: %v, want the connection refused", tc.network, tc.addr, err)
				}
			}
			rctx, cancel := context.WithTimeout(ctx, time.Second)
			_, err := topo.Client.Request(rctx, "tcp", netip.MustParseAddrPort("198.18.100.2:80"))
			cancel()
			if err == nil || errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("Local frontend without local endpoints: %v, want no answer (dropped)", err)
			}
		})
	}
}
