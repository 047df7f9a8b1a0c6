package userspace

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lbkit/lbkit/lb"
)

// replyFrom returns the backend name of a "name:payload" reply.
func replyFrom(t testing.TB, reply, payload string) string {
	t.Helper()
	name, rest, ok := strings.Cut(reply, ":")
	if !ok || rest != payload {
		t.Fatalf("reply %q, want NAME:%s", reply, payload)
	}
	return name
}

func TestUDPRoundTrip(t *testing.T) {
	b0 := startUDPBackend(t, "b0")
	fe := loopFrontend(t, lb.UDP)
	d := newTestDatapath(t, Options{})
	fullSync(t, d, (*lb.Snapshot)(nil).With(simpleState("dns", lb.RR, fe, backendsOf(b0))))
	// A connected client socket only accepts datagrams from the frontend
	// address: the replies come back from the frontend socket.
	c := udpClient(t, feAddr(fe))
	for _, msg := range []string{"one", "two", strings.Repeat("x", 9000)} {
		if got := replyFrom(t, askUDP(t, c, msg), msg); got != "b0" {
			t.Fatalf("reply from %s, want b0", got)
		}
	}
	if got := activeCounts(t, d, fe.ID())[0]; got != 1 {
		t.Fatalf("b0 counts %d flows, want 1 (one client address)", got)
	}
}

func TestUDPRoundRobinPerFlow(t *testing.T) {
	b0, b1 := startUDPBackend(t, "b0"), startUDPBackend(t, "b1")
	fe := loopFrontend(t, lb.UDP)
	d := newTestDatapath(t, Options{})
	fullSync(t, d, (*lb.Snapshot)(nil).With(simpleState("dns", lb.RR, fe, backendsOf(b0, b1))))
	for i := range 4 {
		c := udpClient(t, feAddr(fe))
		want := []string{"b0", "b1"}[i%2]
		for range 3 { // every datagram of a flow goes to the flow's backend
			if got := replyFrom(t, askUDP(t, c, "q"), "q"); got != want {
				t.Fatalf("flow %d answered by %s, want %s", i, got, want)
			}
		}
	}
}

func TestUDPBackendRemovalMovesFlow(t *testing.T) {
	b0, b1 := startUDPBackend(t, "b0"), startUDPBackend(t, "b1")
	fe := loopFrontend(t, lb.UDP)
	d := newTestDatapath(t, Options{})
	fullSync(t, d, (*lb.Snapshot)(nil).With(simpleState("dns", lb.RR, fe, backendsOf(b0, b1))))
	c := udpClient(t, feAddr(fe))
	if got := replyFrom(t, askUDP(t, c, "q"), "q"); got != "b0" {
		t.Fatalf("first flow answered by %s, want b0", got)
	}
	fullSync(t, d, (*lb.Snapshot)(nil).With(simpleState("dns", lb.RR, fe, backendsOf(b1))))
	if got := replyFrom(t, askUDP(t, c, "q"), "q"); got != "b1" {
		t.Fatalf("after b0 was removed the flow is answered by %s, want b1", got)
	}
	waitFor(t, "the old flow's count to drop", func() bool { return activeCounts(t, d, fe.ID())[0] == 1 })
}

func TestUDPIdleFlowExpires(t *testing.T) {
	b0 := startUDPBackend(t, "b0")
	fe := loopFrontend(t, lb.UDP)
	d := newTestDatapath(t, Options{UDPIdleTimeout: 100 * time.Millisecond})
	fullSync(t, d, (*lb.Snapshot)(nil).With(simpleState("dns", lb.RR, fe, backendsOf(b0))))
	c := udpClient(t, feAddr(fe))
	replyFrom(t, askUDP(t, c, "q"), "q")
	waitFor(t, "the idle flow to expire", func() bool { return activeCounts(t, d, fe.ID())[0] == 0 })
	// The client is served again by a new flow.
	replyFrom(t, askUDP(t, c, "again"), "again")
}

func TestUDPNoBackendsDrops(t *testing.T) {
	fe := loopFrontend(t, lb.UDP)
	d := newTestDatapath(t, Options{})
	fullSync(t, d, (*lb.Snapshot)(nil).With(simpleState("dns", lb.RR, fe, nil)))
	c := udpClient(t, feAddr(fe))
	if _, err := c.Write([]byte("q")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := c.Read(make([]byte, 100)); err == nil || !isTimeout(err) {
		t.Fatalf("service without backends: read %d bytes, %v; want nothing", n, err)
	}
	// The frontend is still open: adding a backend serves the same client.
	b0 := startUDPBackend(t, "b0")
	fullSync(t, d, (*lb.Snapshot)(nil).With(simpleState("dns", lb.RR, fe, backendsOf(b0))))
	replyFrom(t, askUDP(t, c, "q"), "q")
}

func TestUDPAffinitySticksAcrossFlows(t *testing.T) {
	addrs := []netip.AddrPort{startUDPBackend(t, "b0"), startUDPBackend(t, "b1"), startUDPBackend(t, "b2")}
	fe := loopFrontend(t, lb.UDP)
	d := newTestDatapath(t, Options{})
	svc := &lb.Service{Key: "dns", Frontends: []lb.Frontend{fe}, Scheduler: lb.RR,
		Affinity: lb.SessionAffinity{Type: lb.AffinityClientIP}}
	fullSync(t, d, (*lb.Snapshot)(nil).With(stateOf(svc, backendsOf(addrs...))))
	first := replyFrom(t, askUDP(t, udpClient(t, feAddr(fe)), "q"), "q")
	for i := range 6 { // new client ports, same client IP
		if got := replyFrom(t, askUDP(t, udpClient(t, feAddr(fe)), "q"), "q"); got != first {
			t.Fatalf("flow %d of an affine client answered by %s, first by %s", i, got, first)
		}
	}
}

func TestUDPDeleteClosesSocket(t *testing.T) {
	b0 := startUDPBackend(t, "b0")
	fe := loopFrontend(t, lb.UDP)
	d := newTestDatapath(t, Options{})
	fullSync(t, d, (*lb.Snapshot)(nil).With(simpleState("dns", lb.RR, fe, backendsOf(b0))))
	c := udpClient(t, feAddr(fe))
	replyFrom(t, askUDP(t, c, "q"), "q")
	if err := d.Sync(t.Context(), nil, changes("dns")); err != nil {
		t.Fatalf("Sync delete: %v", err)
	}
	// The port is free again.
	pc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(feAddr(fe)))
	if err != nil {
		t.Fatalf("frontend port still bound after delete: %v", err)
	}
	pc.Close()
}
