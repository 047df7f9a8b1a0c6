package conformance

import (
	"net"
	"net/netip"
	"testing"
)

func TestNthAddr(t *testing.T) {
	for _, tc := range []struct {
		prefix string
		n      int
		want   string
	}{
		{"198.18.100.0/24", 1, "198.18.100.1"},
		{"198.18.100.0/24", 7, "198.18.100.7"},
		{"2001:2:0:100::/64", 1, "2001:2:0:100::1"},
		{"2001:2:0:100::/64", 300, "2001:2:0:100::12c"},
	} {
		if got := nthAddr(netip.MustParsePrefix(tc.prefix), tc.n); got.String() != tc.want {
			t.Errorf("nthAddr(%s, %d) = %s, want %s", tc.prefix, tc.n, got, tc.want)
		}
	}
}

func TestTally(t *testing.T) {
	c := tally{"backend1": 2, "backend0": 5}
	if got, want := c.String(), "{backend0=5 backend1=2}"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := c.total(); got != 7 {
		t.Errorf("total() = %d, want 7", got)
	}
}

func TestScenarioNamesUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, sc := range scenarios() {
		if sc.name == "" || sc.run == nil {
			t.Errorf("scenario %q: empty name or nil run", sc.name)
		}
		if seen[sc.name] {
			t.Errorf("scenario %q listed twice", sc.name)
		}
		seen[sc.name] = true
	}
}

func TestFreeLoopbackPortServesBoth(t *testing.T) {
	port, err := freeLoopbackPort()
	if err != nil {
		t.Fatal(err)
	}
	// The port was free for both protocols; binding it again must work
	// unless someone raced us, which on loopback is practically never.
	ap := netip.AddrPortFrom(loopbackAddr, port).String()
	ln, err := net.Listen("tcp", ap)
	if err != nil {
		t.Fatalf("listen tcp %s: %v", ap, err)
	}
	defer ln.Close()
	pc, err := net.ListenPacket("udp", ap)
	if err != nil {
		t.Fatalf("listen udp %s: %v", ap, err)
	}
	defer pc.Close()
}

func TestEphemeralLow(t *testing.T) {
	low, err := ephemeralLow()
	if err != nil {
		t.Fatal(err)
	}
	if low < 1 || low > 65535 {
		t.Errorf("ephemeralLow() = %d, want a port number", low)
	}
}
