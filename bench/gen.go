// Package bench generates the deterministic service sets that every lbkit
// benchmark shares (Generate), and holds the benchmarks that span more
// than one package: the engine's (BenchmarkSnapshot,
// BenchmarkOneEndpointChange) and the datapaths compared side by side on
// real traffic (BenchmarkConnections, BenchmarkDatapathCost). The sync
// benchmarks of iptables, nftables and eBPF live in their packages'
// bench_test.go and use the same generator, so their numbers compare.
package bench

import (
	"fmt"
	"net/netip"

	"github.com/lbkit/lbkit/lb"
)

// Address ranges the generator uses, both inside 198.18.0.0/15 (the
// benchmarking range) and clear of the ranges internal/netns uses.
var (
	// VIPBase: virtual IPs are VIPBase + i (up to 32768 services).
	VIPBase = netip.MustParseAddr("198.18.128.0")
	// EndpointBase: endpoint IPs are EndpointBase + j (up to 65536).
	EndpointBase = netip.MustParseAddr("198.19.0.0")
)

// MaxServices and MaxEndpoints bound what Generate can address.
const (
	MaxServices  = 32768
	MaxEndpoints = 65536
)

// Item is one generated service with its endpoints.
type Item struct {
	Service   *lb.Service
	Endpoints []lb.Endpoint
}

// Generate returns n services with m ready endpoints each: service i is
// "bench/svc-i/http" at VIPBase+i:80/tcp, its endpoints EndpointBase+(i*m+k)
// on port 8080. The result depends only on n and m.
func Generate(n, m int) ([]Item, error) {
	if n < 0 || m < 0 || n > MaxServices || n*m > MaxEndpoints {
		return nil, fmt.Errorf("bench: %d services x %d endpoints is outside the generator's range (%d services, %d endpoints)", n, m, MaxServices, MaxEndpoints)
	}
	items := make([]Item, n)
	for i := range n {
		items[i] = Item{
			Service: &lb.Service{
				Key: ServiceKey(i),
				Frontends: []lb.Frontend{{
					Addr: offset(VIPBase, i), Port: 80, Protocol: lb.TCP, Kind: lb.ClusterIP,
				}},
			},
			Endpoints: Endpoints(i, m, 0),
		}
	}
	return items, nil
}

// ServiceKey is the key of generated service i.
func ServiceKey(i int) lb.ServiceKey { return lb.ServiceKey(fmt.Sprintf("bench/svc-%d/http", i)) }

// Endpoints returns the m endpoints of service i; a non-zero generation
// shifts their port, to produce a changed but equally sized set.
func Endpoints(i, m, generation int) []lb.Endpoint {
	eps := make([]lb.Endpoint, m)
	for k := range m {
		eps[k] = lb.ReadyEndpoint(netip.AddrPortFrom(offset(EndpointBase, i*m+k), uint16(8080+generation%1000)))
	}
	return eps
}

func offset(base netip.Addr, n int) netip.Addr {
	b := base.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += uint32(n)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// Load upserts items into an engine.
func Load(e *lb.Engine, items []Item) error {
	for _, it := range items {
		if err := e.Upsert(it.Service); err != nil {
			return err
		}
		if err := e.SetEndpoints(it.Service.Key, it.Endpoints); err != nil {
			return err
		}
	}
	return nil
}
