package userspace

import (
	"bufio"
	"net"
	"net/netip"
	"testing"

	"github.com/lbkit/lbkit/lb"
)

// BenchmarkTCPConnect measures a connection's setup through the proxy (dial,
// backend greeting, close) against the same connection made directly.
func BenchmarkTCPConnect(b *testing.B) {
	be := startTCPBackend(b, "b0")
	fe := loopFrontend(b, lb.TCP)
	d := newTestDatapath(b, Options{})
	fullSync(b, d, (*lb.Snapshot)(nil).With(simpleState("web", lb.RR, fe, backendsOf(be))))
	for _, tc := range []struct {
		name string
		addr netip.AddrPort
	}{{"direct", be}, {"proxy", feAddr(fe)}} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				c, err := net.Dial("tcp", tc.addr.String())
				if err != nil {
					b.Fatal(err)
				}
				if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
		})
	}
}
