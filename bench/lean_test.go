package bench

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lbkit/lbkit/internal/netns"
)

// TestLeanLoadThroughDatapaths runs the lean clients of BenchmarkDatapathCost
// briefly through every datapath and checks every answer: each TCP
// connection and UDP query must be answered by one of the backends (the one
// addressed, for plain routing; on an established UDP flow, the one that
// answered the flow before), which must have seen the client's own source
// address and port (no datapath masquerades this traffic, so they all do the
// same work). So the benchmark cannot silently measure failures.
func TestLeanLoadThroughDatapaths(t *testing.T) {
	netns.Require(t)
	const ops = 300
	for _, d := range datapaths() {
		t.Run(d.name, func(t *testing.T) {
			// A few filler services, so that the VIP is not alone in its
			// tables.
			r := newRig(t, d, 100)
			for _, proto := range leanProtos() {
				res := r.start(proto, 2, 32, ops).finish()
				if res.fails > 0 {
					t.Errorf("%s: %d of %d operations failed, the first: %v", proto, res.fails, res.ops+res.fails, res.firstErr)
				}
				if res.ops != ops {
					t.Errorf("%s: %d operations answered correctly, want %d", proto, res.ops, ops)
				}
				// Operations (udp-flow: the 64 flows) cycle over the
				// backends with plain routing and are spread at random over
				// them through the VIP: the chance that one of three gets
				// none of 64 is below 1e-10.
				for i, n := range res.perBackend {
					if n == 0 {
						t.Errorf("%s: backend %d answered none of %d operations (per backend: %v)", proto, i, ops, res.perBackend)
					}
				}
				t.Logf("%s: per backend %v", proto, res.perBackend)
			}
		})
	}
}

func TestLeanReplyRoundTrip(t *testing.T) {
	b := make([]byte, leanReplyLen)
	sa := &unix.SockaddrInet4{Port: 54321, Addr: [4]byte{198, 18, 1, 42}}
	if err := putReply(b, 2, sa); err != nil {
		t.Fatal(err)
	}
	idx, peer, err := parseReply(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := netip.MustParseAddrPort("198.18.1.42:54321"); idx != 2 || peer != want {
		t.Errorf("parseReply = %d, %s; want 2, %s", idx, peer, want)
	}
	if err := putReply(b, 0, &unix.SockaddrInet6{}); err == nil {
		t.Error("putReply accepted an IPv6 client")
	}
	b[0] = 'X'
	if _, _, err := parseReply(b); err == nil {
		t.Error("parseReply accepted a reply without the magic byte")
	}
	if _, _, err := parseReply(b[:3]); err == nil {
		t.Error("parseReply accepted a short reply")
	}
}

func TestCostConfigFromEnv(t *testing.T) {
	t.Setenv("LBKIT_COST_SERVICES", "1, 500")
	t.Setenv("LBKIT_COST_ROUNDS", "3")
	t.Setenv("LBKIT_COST_WINDOW", "1500ms")
	t.Setenv("LBKIT_COST_DATAPATHS", "plain,ebpf-tc")
	t.Setenv("LBKIT_COST_PROTOS", "udp-flow")
	c, err := costConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.services, []int{1, 500}) || c.rounds != 3 || c.window != 1500*time.Millisecond ||
		!slices.Equal(c.only, []string{"plain", "ebpf-tc"}) || !slices.Equal(c.protos, []string{protoUDPFlow}) || c.clients != 2 || c.depth != 16 {
		t.Errorf("config = %+v", c)
	}
	for _, bad := range []struct{ name, value string }{
		{"LBKIT_COST_SERVICES", "0"},
		{"LBKIT_COST_SERVICES", "1,x"},
		{"LBKIT_COST_ROUNDS", "-1"},
		{"LBKIT_COST_WINDOW", "2"},
		{"LBKIT_COST_DATAPATHS", "ipfw"},
		{"LBKIT_COST_PROTOS", "sctp"},
	} {
		t.Run(bad.name+"="+bad.value, func(t *testing.T) {
			t.Setenv(bad.name, bad.value)
			_, err := costConfigFromEnv()
			if err == nil || !strings.Contains(err.Error(), bad.name) {
				t.Errorf("error = %v, want one naming %s", err, bad.name)
			}
		})
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(slices.Clone(c.in)); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}
