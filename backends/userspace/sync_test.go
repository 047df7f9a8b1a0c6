package userspace

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"github.com/lbkit/lbkit/lb"
)

// serviceErrors asserts that err is an lb.ServiceErrors naming exactly keys.
func serviceErrors(t *testing.T, err error, keys ...lb.ServiceKey) lb.ServiceErrors {
	t.Helper()
	var se lb.ServiceErrors
	if !errors.As(err, &se) {
		t.Fatalf("Sync error %v (%T), want lb.ServiceErrors", err, err)
	}
	if len(se) != len(keys) {
		t.Fatalf("ServiceErrors %v, want exactly %v", se, keys)
	}
	for _, k := range keys {
		if se[k] == nil {
			t.Fatalf("ServiceErrors %v lacks %s", se, k)
		}
	}
	return se
}

func TestPortInUseFailsOnlyThatService(t *testing.T) {
	b0 := startTCPBackend(t, "b0")
	busy, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyFE := lb.Frontend{Addr: netip.MustParseAddr("127.0.0.1"), Port: uint16(busy.Addr().(*net.TCPAddr).Port),
		Protocol: lb.TCP, Kind: lb.ClusterIP}
	okFE := loopFrontend(t, lb.TCP)
	snap := (*lb.Snapshot)(nil).
		With(simpleState("bad", lb.RR, busyFE, backendsOf(b0))).
		With(simpleState("good", lb.RR, okFE, backendsOf(b0)))
	d := newTestDatapath(t, Options{})
	se := serviceErrors(t, d.Sync(t.Context(), snap, lb.ChangeSet{Full: true}), "bad")
	if !errors.Is(se["bad"], syscall.EADDRINUSE) {
		t.Errorf("error %v does not wrap EADDRINUSE", se["bad"])
	}
	want := fmt.Sprintf("listen %s: port already in use", busyFE)
	if !strings.Contains(se["bad"].Error(), want) {
		t.Errorf("error %q does not say %q", se["bad"], want)
	}
	if got := hitTCP(t, feAddr(okFE)); got != "b0" {
		t.Fatalf("the good service reached %q", got)
	}
	// Free the port; the next Sync naming the service programs it.
	busy.Close()
	if err := d.Sync(t.Context(), snap, changes("bad")); err != nil {
		t.Fatalf("retry Sync: %v", err)
	}
	if got := hitTCP(t, feAddr(busyFE)); got != "b0" {
		t.Fatalf("the retried service reached %q", got)
	}
}

func TestAddressNotLocalIsExplained(t *testing.T) {
	fe := lb.Frontend{Addr: netip.MustParseAddr("198.18.100.1"), Port: 80, Protocol: lb.TCP, Kind: lb.ClusterIP}
	d := newTestDatapath(t, Options{})
	snap := (*lb.Snapshot)(nil).With(simpleState("vip", lb.RR, fe, backendsOf(deadAddr(t))))
	se := serviceErrors(t, d.Sync(t.Context(), snap, lb.ChangeSet{Full: true}), "vip")
	want := "listen 198.18.100.1:80/tcp: address not local to this host (cannot assign requested address)"
	if !strings.Contains(se["vip"].Error(), want) {
		t.Fatalf("error %q does not say %q", se["vip"], want)
	}
	var le *ListenError
	if !errors.As(se["vip"], &le) || le.Frontend != fe || !errors.Is(le, syscall.EADDRNOTAVAIL) {
		t.Fatalf("error %v is not a ListenError for %s wrapping EADDRNOTAVAIL", se["vip"], fe)
	}
	if _, err := d.Inspect(t.Context(), fe.ID()); err == nil {
		t.Fatal("Inspect found a frontend that failed to open")
	}
}

func TestPartialFailureKeepsWorkingFrontends(t *testing.T) {
	b0, b1 := startTCPBackend(t, "b0"), startTCPBackend(t, "b1")
	fe1 := loopFrontend(t, lb.TCP)
	d := newTestDatapath(t, Options{})
	svc := &lb.Service{Key: "web", Frontends: []lb.Frontend{fe1}, Scheduler: lb.RR}
	fullSync(t, d, (*lb.Snapshot)(nil).With(stateOf(svc, backendsOf(b0))))

	bad := lb.Frontend{Addr: netip.MustParseAddr("198.18.100.2"), Port: 80, Protocol: lb.TCP, Kind: lb.ExternalIP}
	svc2 := &lb.Service{Key: "web", Frontends: []lb.Frontend{fe1, bad}, Scheduler: lb.RR}
	snap := (*lb.Snapshot)(nil).With(stateOf(svc2, backendsOf(b1)))
	serviceErrors(t, d.Sync(t.Context(), snap, changes("web")), "web")
	// The working frontend got the new backends anyway.
	if got := hitTCP(t, feAddr(fe1)); got != "b1" {
		t.Fatalf("working frontend reached %q, want the new backend b1", got)
	}
	// A full Sync retries the failed service (its state was not applied).
	serviceErrors(t, d.Sync(t.Context(), snap, lb.ChangeSet{Full: true}), "web")
}

func TestDeleteClosesListener(t *testing.T) {
	b0 := startTCPBackend(t, "b0")
	fe1, fe2 := loopFrontend(t, lb.TCP), loopFrontend(t, lb.TCP)
	d := newTestDatapath(t, Options{})
	snap := (*lb.Snapshot)(nil).
		With(simpleState("a", lb.RR, fe1, backendsOf(b0))).
		With(simpleState("b", lb.RR, fe2, backendsOf(b0)))
	fullSync(t, d, snap)
	held, _ := dialVia(t, feAddr(fe1), netip.Addr{})

	// A partial Sync naming a key the snapshot lacks deletes it.
	snap = snap.Without("a")
	if err := d.Sync(t.Context(), snap, changes("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := net.Dial("tcp", feAddr(fe1).String()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial deleted frontend: %v, want connection refused", err)
	}
	if _, err := d.Inspect(t.Context(), fe1.ID()); err == nil {
		t.Fatal("Inspect found a deleted frontend")
	}
	// The connection accepted before the delete continues.
	if _, err := held.Write([]byte("x\n")); err != nil {
		t.Fatal(err)
	}
	if got := held.line(t); got != "x" {
		t.Fatalf("connection of a deleted service echoed %q", got)
	}
	// A full Sync deletes every service the snapshot lacks.
	if err := d.Sync(t.Context(), nil, lb.ChangeSet{Full: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := net.Dial("tcp", feAddr(fe2).String()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial frontend after full Sync of an empty snapshot: %v, want refused", err)
	}
}

func TestFrontendRemovedFromService(t *testing.T) {
	b0 := startTCPBackend(t, "b0")
	fe1, fe2 := loopFrontend(t, lb.TCP), loopFrontend(t, lb.TCP)
	d := newTestDatapath(t, Options{})
	svc := &lb.Service{Key: "web", Frontends: []lb.Frontend{fe1, fe2}, Scheduler: lb.RR}
	fullSync(t, d, (*lb.Snapshot)(nil).With(stateOf(svc, backendsOf(b0))))
	hitTCP(t, feAddr(fe2))
	svc = &lb.Service{Key: "web", Frontends: []lb.Frontend{fe1}, Scheduler: lb.RR}
	fullSync(t, d, (*lb.Snapshot)(nil).With(stateOf(svc, backendsOf(b0))))
	if _, err := net.Dial("tcp", feAddr(fe2).String()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial removed frontend: %v, want refused", err)
	}
	if got := hitTCP(t, feAddr(fe1)); got != "b0" {
		t.Fatalf("remaining frontend reached %q", got)
	}
}

func TestFrontendMovesBetweenServicesInOneSync(t *testing.T) {
	b0, b1 := startTCPBackend(t, "b0"), startTCPBackend(t, "b1")
	fe := loopFrontend(t, lb.TCP)
	d := newTestDatapath(t, Options{})
	fullSync(t, d, (*lb.Snapshot)(nil).With(simpleState("z-old", lb.RR, fe, backendsOf(b0))))
	// "a-new" sorts first, so it opens before "z-old" would have closed the
	// frontend, had Sync not closed removed frontends first.
	snap := (*lb.Snapshot)(nil).With(simpleState("a-new", lb.RR, fe, backendsOf(b1)))
	if err := d.Sync(t.Context(), snap, changes("a-new", "z-old")); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if got := hitTCP(t, feAddr(fe)); got != "b1" {
		t.Fatalf("moved frontend reached %q, want b1", got)
	}
}

func TestSameFrontendInTwoServicesIsRejected(t *testing.T) {
	b0 := startTCPBackend(t, "b0")
	fe := loopFrontend(t, lb.TCP)
	d := newTestDatapath(t, Options{})
	fullSync(t, d, (*lb.Snapshot)(nil).With(simpleState("a", lb.RR, fe, backendsOf(b0))))
	snap := (*lb.Snapshot)(nil).
		With(simpleState("a", lb.RR, fe, backendsOf(b0))).
		With(simpleState("b", lb.RR, fe, backendsOf(b0)))
	se := serviceErrors(t, d.Sync(t.Context(), snap, changes("b")), "b")
	if !strings.Contains(se["b"].Error(), `already served for service "a"`) {
		t.Fatalf("error %q does not name the owner", se["b"])
	}
}

func TestUnsupportedSchedulerAndProtocol(t *testing.T) {
	fe := loopFrontend(t, lb.TCP)
	sctp := lb.Frontend{Addr: fe.Addr, Port: fe.Port, Protocol: lb.SCTP, Kind: lb.ClusterIP}
	d := newTestDatapath(t, Options{})
	snap := (*lb.Snapshot)(nil).
		With(simpleState("wlc", lb.WLC, fe, nil)).
		With(simpleState("sctp", lb.RR, sctp, nil))
	se := serviceErrors(t, d.Sync(t.Context(), snap, lb.ChangeSet{Full: true}), "wlc", "sctp")
	for k, field := range map[lb.ServiceKey]string{"wlc": "scheduler", "sctp": "frontends[0].protocol"} {
		var ue *lb.UnsupportedError
		if !errors.As(se[k], &ue) || ue.Field != field || ue.Datapath != "userspace" {
			t.Errorf("%s: error %v, want an UnsupportedError for %s", k, se[k], field)
		}
	}
}

func TestCleanupTwiceThenSyncAgain(t *testing.T) {
	b0 := startTCPBackend(t, "b0")
	fe := loopFrontend(t, lb.TCP)
	d := newTestDatapath(t, Options{})
	snap := (*lb.Snapshot)(nil).With(simpleState("web", lb.RR, fe, backendsOf(b0)))
	fullSync(t, d, snap)
	held, _ := dialVia(t, feAddr(fe), netip.Addr{})
	for i := range 2 {
		if err := d.Cleanup(t.Context()); err != nil {
			t.Fatalf("Cleanup #%d: %v", i+1, err)
		}
	}
	if _, err := net.Dial("tcp", feAddr(fe).String()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial after Cleanup: %v, want refused", err)
	}
	expectClosed(t, held) // Cleanup closes live connections too
	fullSync(t, d, snap)  // the same snapshot, from scratch
	if got := hitTCP(t, feAddr(fe)); got != "b0" {
		t.Fatalf("after Cleanup and Sync reached %q", got)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestInspectReportsKindAndBackends(t *testing.T) {
	b0, b1 := startTCPBackend(t, "b0"), startTCPBackend(t, "b1")
	fe := loopFrontend(t, lb.TCP)
	fe.Kind = lb.LoadBalancer
	d := newTestDatapath(t, Options{})
	bs := []lb.Backend{{Addr: b0, Weight: 2}, {Addr: b1, Weight: 5, Terminating: true, NodeName: "n", Zone: "z"}}
	fullSync(t, d, (*lb.Snapshot)(nil).With(simpleState("web", lb.WRR, fe, bs)))
	st, err := d.Inspect(t.Context(), fe.ID())
	if err != nil {
		t.Fatal(err)
	}
	if st.Frontend != fe || len(st.Backends) != 2 || st.Backends[0] != bs[0] || st.Backends[1] != bs[1] {
		t.Fatalf("Inspect = %+v, want %s with %+v", st, fe, bs)
	}
	if st.Scheduler != lb.WRR || st.Service != "web" || st.Datapath != "userspace" || len(st.Details) != 2 {
		t.Fatalf("Inspect = %+v, want scheduler wrr of service web with a detail per backend", st)
	}
	if _, err := d.Inspect(t.Context(), loopFrontend(t, lb.UDP).ID()); err == nil {
		t.Fatal("Inspect of an unknown frontend succeeded")
	}
}

func TestNameAndCapabilities(t *testing.T) {
	d, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Name() != "userspace" {
		t.Fatalf("Name() = %q", d.Name())
	}
	c := d.Capabilities()
	for _, s := range []lb.Scheduler{lb.Random, lb.RR, lb.WRR, lb.LC, lb.SH, lb.Maglev} {
		if !c.SupportsScheduler(s) {
			t.Errorf("scheduler %s not declared", s)
		}
	}
	if c.SupportsScheduler(lb.WLC) || c.SupportsProtocol(lb.SCTP) {
		t.Error("declares wlc or sctp, which it does not implement")
	}
	if !c.Affinity || !c.Weights || !c.IPv6 || !c.LocalPolicy || !c.SupportsProtocol(lb.UDP) || !c.SupportsKind(lb.NodePort) {
		t.Errorf("capabilities %+v lack a feature the proxy has", c)
	}
}
