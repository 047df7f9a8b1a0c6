package bench

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/lbkit/lbkit/lb"
)

var sizes = []int{1000, 5000, 10000}

func loadedEngine(tb testing.TB, n int) *lb.Engine {
	tb.Helper()
	items, err := Generate(n, 3)
	if err != nil {
		tb.Fatal(err)
	}
	e, err := lb.NewEngine(Discard{}, lb.Config{NodeName: "node-a"})
	if err != nil {
		tb.Fatal(err)
	}
	if err := Load(e, items); err != nil {
		tb.Fatal(err)
	}
	return e
}

// BenchmarkSnapshot measures a full snapshot of N services x 3 endpoints:
// endpoint selection for every service and building the persistent map.
func BenchmarkSnapshot(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				e := loadedEngine(b, n)
				b.StartTimer()
				if err := e.Flush(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOneEndpointChange measures the engine's CPU for one endpoint
// change in a steady state of N services: SetEndpoints plus the sync that
// carries it (selection, snapshot update, ChangeSet).
func BenchmarkOneEndpointChange(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			ctx := context.Background()
			e := loadedEngine(b, n)
			if err := e.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				// Every op is a real change: service i%n gets its
				// (i/n+1)-th endpoint generation.
				svc := i % n
				if err := e.SetEndpoints(ServiceKey(svc), Endpoints(svc, 3, i/n+1)); err != nil {
					b.Fatal(err)
				}
				if err := e.Flush(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestGenerateIsDeterministicAndInRange(t *testing.T) {
	a, err := Generate(10000, 3)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Generate(10000, 3)
	bench := netip.MustParsePrefix("198.18.0.0/15")
	seen := map[netip.Addr]bool{}
	for i := range a {
		if a[i].Service.Frontends[0] != b[i].Service.Frontends[0] || a[i].Endpoints[2] != b[i].Endpoints[2] {
			t.Fatalf("item %d differs between runs", i)
		}
		if err := a[i].Service.Validate(); err != nil {
			t.Fatal(err)
		}
		for _, ip := range []netip.Addr{a[i].Service.Frontends[0].Addr, a[i].Endpoints[0].Addr.Addr(), a[i].Endpoints[2].Addr.Addr()} {
			if !bench.Contains(ip) || seen[ip] {
				t.Fatalf("address %s outside the benchmarking range or reused", ip)
			}
			seen[ip] = true
		}
	}
	if _, err := Generate(40000, 3); err == nil {
		t.Fatal("Generate accepted more services than it can address")
	}
	e := loadedEngine(t, 1000)
	if err := e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := e.Snapshot(); s.Len() != 1000 || s.Backends() != 3000 {
		t.Fatalf("snapshot has %d services / %d backends, want 1000 / 3000", s.Len(), s.Backends())
	}
}
