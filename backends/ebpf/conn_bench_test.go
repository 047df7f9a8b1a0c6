package ebpf

import (
	"bufio"
	"context"
	"net"
	"net/netip"
	"testing"

	"github.com/lbkit/lbkit/internal/netns"
	"github.com/lbkit/lbkit/lb"
)

// BenchmarkConnections measures TCP connections per second from the client
// namespace (connect, read the backend's identity line, close), directly
// to a backend ("plain": routed by the node, no program attached) and
// through a frontend balanced by the TC or the XDP programs. The
// difference is the datapath's per-connection cost.
func BenchmarkConnections(b *testing.B) {
	requireBPF(b)
	for _, mode := range []string{"plain", AttachTC, AttachXDP} {
		b.Run(mode, func(b *testing.B) {
			topo := netns.New(b, netns.Options{})
			target := netip.AddrPortFrom(topo.Backends[0].IPv4, netns.DefaultPort)
			if mode != "plain" {
				d, err := New(Options{Netns: topo.Node.Path, Attach: mode})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = d.Cleanup(context.Background()) })
				fe := lb.Frontend{Addr: netip.MustParseAddr("198.18.100.1"), Port: 80, Protocol: lb.TCP, Kind: lb.LoadBalancer}
				svc := &lb.Service{Key: "bench", Frontends: []lb.Frontend{fe}, ExternalPolicy: lb.PolicyLocal}
				st := &lb.ServiceState{Service: svc, Frontends: []lb.FrontendState{{Frontend: fe}}}
				for _, be := range topo.Backends {
					st.Frontends[0].Backends = append(st.Frontends[0].Backends,
						lb.Backend{Addr: netip.AddrPortFrom(be.IPv4, netns.DefaultPort), Weight: 1})
				}
				if err := d.Sync(b.Context(), (*lb.Snapshot)(nil).With(st), lb.ChangeSet{Full: true}); err != nil {
					b.Fatal(err)
				}
				target = netip.AddrPortFrom(fe.Addr, fe.Port)
			}
			err := topo.Client.Do(func() error {
				for b.Loop() {
					c, err := net.Dial("tcp", target.String())
					if err != nil {
						return err
					}
					if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
						c.Close()
						return err
					}
					c.Close()
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "conns/s")
		})
	}
}
