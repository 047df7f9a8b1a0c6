package userspace

import (
	"io"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/lbkit/lbkit/lb"
)

func TestTCPRoundTripWithHalfClose(t *testing.T) {
	b0 := startTCPBackend(t, "b0")
	fe := loopFrontend(t, lb.TCP)
	d := newTestDatapath(t, Options{})
	fullSync(t, d, (*lb.Snapshot)(nil).With(simpleState("web", lb.RR, fe, backendsOf(b0))))

	c, name := dialVia(t, feAddr(fe), netip.Addr{})
	if name != "b0" {
		t.Fatalf("greeting %q, want b0", name)
	}
	if _, err := io.WriteString(c, "hello\n"); err != nil {
		t.Fatal(err)
	}
	if got := c.line(t); got != "hello" {
		t.Fatalf("echo %q, want hello", got)
	}
	if _, err := io.WriteString(c, "last words\n"); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	// The backend only says "bye" once it has seen our EOF, so this proves
	// the proxy half-closed the backend side and kept relaying replies.
	rest, err := io.ReadAll(c.r)
	if err != nil {
		t.Fatalf("read after half-close: %v", err)
	}
	if string(rest) != "last words\nbye\n" {
		t.Fatalf("after half-close got %q, want %q", rest, "last words\nbye\n")
	}
	id := fe.ID()
	waitFor(t, "the connection count to drop", func() bool { return activeCounts(t, d, id)[0] == 0 })
}

func TestTCPRoundRobinExactOrder(t *testing.T) {
	names := []string{"b0", "b1", "b2"}
	var addrs []netip.AddrPort
	for _, n := range names {
		addrs = append(addrs, startTCPBackend(t, n))
	}
	fe := loopFrontend(t, lb.TCP)
	d := newTestDatapath(t, Options{})
	fullSync(t, d, (*lb.Snapshot)(nil).With(simpleState("web", lb.RR, fe, backendsOf(addrs...))))
	for i := range 9 {
		if got, want := hitTCP(t, feAddr(fe)), names[i%3]; got != want {
			t.Fatalf("connection %d went to %s, want %s", i, got, want)
		}
	}
}

func TestTCPWeightedRoundRobinSequence(t *testing.T) {
	b0, b1 := startTCPBackend(t, "b0"), startTCPBackend(t, "b1")
	fe := loopFrontend(t, lb.TCP)
	d := newTestDatapath(t, Options{})
	bs := []lb.Backend{{Addr: b0, Weight: 1}, {Addr: b1, Weight: 2}}
	fullSync(t, d, (*lb.Snapshot)(nil).With(simpleState("web", lb.WRR, fe, bs)))
	want := []string{"b1", "b0", "b1", "b1", "b0", "b1"}
	var got []string
	for range want {
		got = append(got, hitTCP(t, feAddr(fe)))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("wrr sequence %v, want %v", got, want)
	}
}

func TestTCPRandomSpread(t *testing.T) {
	addrs := []netip.AddrPort{startTCPBackend(t, "b0"), startTCPBackend(t, "b1"), startTCPBackend(t, "b2")}
	fe := loopFrontend(t, lb.TCP)
	d := newTestDatapath(t, Options{})
	fullSync(t, d, (*lb.Snapshot)(nil).With(simpleState("web", lb.Random, fe, backendsOf(addrs...))))
	var names []string
	for range 300 {
		names = append(names, hitTCP(t, feAddr(fe)))
	}
	got := count(names)
	for _, n := range []string{"b0", "b1", "b2"} {
		if got[n] < 60 { // 20%; expected 100
			t.Errorf("%s got %d of 300 connections: %v", n, got[n], got)
		}
	}
}

func TestTCPWeightedRandom(t *testing.T) {
	b0, b1 := startTCPBackend(t, "b0"), startTCPBackend(t, "b1")
	fe := loopFrontend(t, lb.TCP)
	d := newTestDatapath(t, Options{})
	bs := []lb.Backend{{Addr: b0, Weight: 1}, {Addr: b1, Weight: 3}}
	fullSync(t, d, (*lb.Snapshot)(nil).With(simpleState("web", lb.Random, fe, bs)))
	var names []string
	for range 400 {
		names = append(names, hitTCP(t, feAddr(fe)))
	}
	got := count(names)
	// Expected 300 of 400 (75%) on b1, standard deviation about 9.
	if got["b1"] < 240 || got["b1"] > 360 {
		t.Fatalf("weight 3 backend got %d of 400 connections, want 240..360: %v", got["b1"], got)
	}
}

func TestTCPSourceHashSticks(t *testing.T) {
	addrs := []netip.AddrPort{startTCPBackend(t, "b0"), startTCPBackend(t, "b1"), startTCPBackend(t, "b2")}
	fe := loopFrontend(t, lb.TCP)
	d := newTestDatapath(t, Options{})
	snap := (*lb.Snapshot)(nil).With(simpleState("web", lb.SH, fe, backendsOf(addrs...)))
	fullSync(t, d, snap)
	first := make(map[netip.Addr]string)
	for i := range 20 {
		src := netip.AddrFrom4([4]byte{127, 0, 0, byte(i + 1)})
		first[src] = hitTCPFrom(t, feAddr(fe), src)
		for range 4 {
			if got := hitTCPFrom(t, feAddr(fe), src); got != first[src] {
				t.Fatalf("sh: client %s went to %s, first to %s", src, got, first[src])
			}
		}
	}
	used := make(map[string]bool)
	for _, n := range first {
		used[n] = true
	}
	if len(used) < 2 {
		t.Fatalf("sh sent all 20 client IPs to %v", used)
	}
	// A rebuilt, equal state (new pointer, so the full Sync reprograms it)
	// keeps every client on its backend.
	fullSync(t, d, snap.With(simpleState("web", lb.SH, fe, backendsOf(addrs...))))
	for src, want := range first {
		if got := hitTCPFrom(t, feAddr(fe), src); got != want {
			t.Fatalf("sh: after a resync client %s went to %s, before to %s", src, got, want)
		}
	}
}

func TestTCPLeastConnectionPrefersIdleBackend(t *testing.T) {
	addrs := []netip.AddrPort{startTCPBackend(t, "b0"), startTCPBackend(t, "b1")}
	fe := loopFrontend(t, lb.TCP)
	d := newTestDatapath(t, Options{})
	fullSync(t, d, (*lb.Snapshot)(nil).With(simpleState("web", lb.LC, fe, backendsOf(addrs...))))
	_, busy := dialVia(t, feAddr(fe), netip.Addr{}) // held open until the test ends
	idleIdx := 1
	if busy == "b1" {
		idleIdx = 0
	}
	for i := range 10 {
		c, got := dialVia(t, feAddr(fe), netip.Addr{})
		if got == busy {
			t.Fatalf("connection %d went to %s, which holds an open connection, not the idle backend", i, got)
		}
		c.Close()
		waitFor(t, "the idle backend's count to drop", func() bool {
			return activeCounts(t, d, fe.ID())[idleIdx] == 0
		})
	}
	if got := activeCounts(t, d, fe.ID())[1-idleIdx]; got != 1 {
		t.Fatalf("busy backend counts %d connections, want 1", got)
	}
}

func TestTCPAffinitySticks(t *testing.T) {
	addrs := []netip.AddrPort{startTCPBackend(t, "b0"), startTCPBackend(t, "b1"), startTCPBackend(t, "b2")}
	fe := loopFrontend(t, lb.TCP)
	d := newTestDatapath(t, Options{})
	svc := &lb.Service{Key: "web", Frontends: []lb.Frontend{fe}, Scheduler: lb.RR,
		Affinity: lb.SessionAffinity{Type: lb.AffinityClientIP, Timeout: time.Hour}}
	fullSync(t, d, (*lb.Snapshot)(nil).With(stateOf(svc, backendsOf(addrs...))))
	client := netip.MustParseAddr("127.0.0.1")
	first := hitTCPFrom(t, feAddr(fe), client)
	for i := range 10 {
		if got := hitTCPFrom(t, feAddr(fe), client); got != first {
			t.Fatalf("connection %d of an affine client went to %s, first to %s", i, got, first)
		}
	}
	// Another client IP gets the next backend of the rotation.
	if other := hitTCPFrom(t, feAddr(fe), netip.MustParseAddr("127.0.0.2")); other == first {
		t.Fatalf("second client also went to %s; rr should have moved on", other)
	}
	// The affine backend goes away: the client is balanced anew and sticks
	// to its new backend.
	var rest []netip.AddrPort
	for i, a := range addrs {
		if []string{"b0", "b1", "b2"}[i] != first {
			rest = append(rest, a)
		}
	}
	fullSync(t, d, (*lb.Snapshot)(nil).With(stateOf(svc, backendsOf(rest...))))
	second := hitTCPFrom(t, feAddr(fe), client)
	if second == first {
		t.Fatalf("client still sent to removed backend %s", first)
	}
	for range 5 {
		if got := hitTCPFrom(t, feAddr(fe), client); got != second {
			t.Fatalf("after re-pick the client went to %s, then to %s", second, got)
		}
	}
}

func TestTCPRemovedBackendKeepsConnections(t *testing.T) {
	b0, b1 := startTCPBackend(t, "b0"), startTCPBackend(t, "b1")
	fe := loopFrontend(t, lb.TCP)
	d := newTestDatapath(t, Options{})
	fullSync(t, d, (*lb.Snapshot)(nil).With(simpleState("web", lb.RR, fe, backendsOf(b0, b1))))
	old, name := dialVia(t, feAddr(fe), netip.Addr{})
	if name != "b0" {
		t.Fatalf("first rr connection went to %s, want b0", name)
	}
	d.mu.RLock()
	listener := serviceOf(d, "web").frontends[fe.ID()]
	d.mu.RUnlock()

	if err := d.Sync(t.Context(), (*lb.Snapshot)(nil).With(simpleState("web", lb.RR, fe, backendsOf(b1))),
		changes("web")); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	d.mu.RLock()
	same := serviceOf(d, "web").frontends[fe.ID()] == listener
	d.mu.RUnlock()
	if !same {
		t.Fatal("a backend-only change replaced the frontend's listener")
	}
	for i := range 5 {
		if got := hitTCP(t, feAddr(fe)); got != "b1" {
			t.Fatalf("new connection %d went to %s after b0 was removed", i, got)
		}
	}
	if _, err := io.WriteString(old, "still there?\n"); err != nil {
		t.Fatal(err)
	}
	if got := old.line(t); got != "still there?" {
		t.Fatalf("established connection to removed backend echoed %q", got)
	}
	st, err := d.Inspect(t.Context(), fe.ID())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Backends) != 1 || st.Backends[0].Addr != b1 || st.Frontend != fe {
		t.Fatalf("Inspect = %+v, want %s with backend %s only", st, fe, b1)
	}
}

func TestTCPDialFailureFallsOver(t *testing.T) {
	live := startTCPBackend(t, "live")
	dead := deadAddr(t)
	fe := loopFrontend(t, lb.TCP)
	d := newTestDatapath(t, Options{})
	// rr starts at the dead backend every other connection.
	fullSync(t, d, (*lb.Snapshot)(nil).With(simpleState("web", lb.RR, fe, backendsOf(dead, live))))
	for i := range 6 {
		if got := hitTCP(t, feAddr(fe)); got != "live" {
			t.Fatalf("connection %d reached %q", i, got)
		}
	}
	if got := activeCounts(t, d, fe.ID())[0]; got != 0 {
		t.Fatalf("dead backend counts %d connections", got)
	}
}

func TestTCPNoBackendsResets(t *testing.T) {
	fe := loopFrontend(t, lb.TCP)
	d := newTestDatapath(t, Options{})
	fullSync(t, d, (*lb.Snapshot)(nil).With(simpleState("web", lb.RR, fe, nil)))
	expectAcceptedThenClosed(t, feAddr(fe))
}

func TestTCPAllBackendsDeadCloses(t *testing.T) {
	fe := loopFrontend(t, lb.TCP)
	d := newTestDatapath(t, Options{DialTimeout: time.Second})
	fullSync(t, d, (*lb.Snapshot)(nil).With(simpleState("web", lb.RR, fe, backendsOf(deadAddr(t), deadAddr(t)))))
	expectAcceptedThenClosed(t, feAddr(fe))
}

func TestTCPNodePortOnAllAddresses(t *testing.T) {
	b0 := startTCPBackend(t, "b0")
	fe := lb.Frontend{Addr: netip.IPv4Unspecified(), Port: freePort(t, lb.TCP), Protocol: lb.TCP, Kind: lb.NodePort}
	d := newTestDatapath(t, Options{})
	fullSync(t, d, (*lb.Snapshot)(nil).With(simpleState("np", lb.RR, fe, backendsOf(b0))))
	for _, ip := range []string{"127.0.0.1", "127.0.0.2"} {
		if got := hitTCP(t, netip.AddrPortFrom(netip.MustParseAddr(ip), fe.Port)); got != "b0" {
			t.Fatalf("NodePort via %s reached %q", ip, got)
		}
	}
}

func TestTCPIPv6(t *testing.T) {
	probe, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	probe.Close()
	b0 := startTCPBackend(t, "b0") // an IPv6 frontend may use an IPv4 backend
	fe := lb.Frontend{Addr: netip.IPv6Loopback(), Port: freePort(t, lb.TCP), Protocol: lb.TCP, Kind: lb.ClusterIP}
	d := newTestDatapath(t, Options{})
	fullSync(t, d, (*lb.Snapshot)(nil).With(simpleState("v6", lb.RR, fe, backendsOf(b0))))
	if got := hitTCP(t, netip.AddrPortFrom(fe.Addr, fe.Port)); got != "b0" {
		t.Fatalf("IPv6 frontend reached %q", got)
	}
}
