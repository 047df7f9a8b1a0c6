package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/lbkit/lbkit/internal/netns"
	"github.com/lbkit/lbkit/lb"
)

// connClients is how many clients connect at once in BenchmarkConnections.
const connClients = 8

// BenchmarkConnections compares the per-connection cost of the kernel
// datapaths on one topology: connClients clients in the client namespace
// open TCP connections (connect, read the backend's identity line, close)
// through a VIP balanced over 3 backends, or straight to a backend
// ("plain", routed by the node with no datapath). It reports connections
// per second; the gap to plain is the datapath's cost.
func BenchmarkConnections(b *testing.B) {
	netns.Require(b)
	vip := netip.AddrPortFrom(netip.MustParseAddr("198.18.100.1"), 80)
	for _, f := range datapaths() {
		b.Run(f.name, func(b *testing.B) {
			f.requireTools(b)
			topo := netns.New(b, netns.Options{})
			target := netip.AddrPortFrom(topo.Backends[0].IPv4, netns.DefaultPort)
			if f.new != nil {
				dp, err := f.new(topo.Node.Path)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = dp.Cleanup(context.Background()) })
				programVIP(b, dp, topo, vip)
				target = vip
			}
			b.ResetTimer()
			if err := connect(topo.Client, target, b.N); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "conns/s")
		})
	}
}

// programVIP installs one service at vip over every backend of topo.
func programVIP(b *testing.B, dp lb.Datapath, topo *netns.Topology, vip netip.AddrPort) {
	b.Helper()
	e, err := lb.NewEngine(dp, lb.Config{NodeName: "node-a"})
	if err != nil {
		b.Fatal(err)
	}
	svc := &lb.Service{Key: "bench/conns", Frontends: []lb.Frontend{{Addr: vip.Addr(), Port: vip.Port(), Protocol: lb.TCP, Kind: lb.ClusterIP}}}
	var eps []lb.Endpoint
	for _, be := range topo.Backends {
		eps = append(eps, lb.ReadyEndpoint(netip.AddrPortFrom(be.IPv4, netns.DefaultPort)))
	}
	if err := e.Upsert(svc); err != nil {
		b.Fatal(err)
	}
	if err := e.SetEndpoints(svc.Key, eps); err != nil {
		b.Fatal(err)
	}
	if err := e.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// connect opens n connections to target from host, connClients at a time.
func connect(host *netns.Host, target netip.AddrPort, n int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, connClients)
	for w := range connClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = host.Do(func() error {
				for next.Add(1) <= int64(n) {
					c, err := net.Dial("tcp", target.String())
					if err != nil {
						return err
					}
					_, err = bufio.NewReader(c).ReadString('\n')
					c.Close()
					if err != nil {
						return fmt.Errorf("read from %s: %w", target, err)
					}
				}
				return nil
			})
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
