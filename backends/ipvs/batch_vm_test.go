//go:build vmtest

package ipvs

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"syscall"
	"testing"

	mobyipvs "github.com/moby/ipvs"

	"github.com/lbkit/lbkit/internal/testenv"
	"github.com/lbkit/lbkit/lb"
)

// testNetns creates an empty namespace with lo up, deleted when the test
// ends, and returns its path.
func testNetns(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if err := Available(); err != nil {
		if os.Getenv("LBKIT_VMTEST_GUEST") == "1" {
			t.Fatalf("inside the vmtest guest IPVS must be loaded: %v", err)
		}
		t.Skip(err)
	}
	testenv.RequireTool(t, "ip", "iproute2")
	var b [4]byte
	rand.Read(b[:])
	name := "lbkt-" + hex.EncodeToString(b[:]) + "-batch"
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up in %s: %v: %s", name, err, out)
	}
	return "/var/run/netns/" + name
}

// readBack lists the namespace's virtual servers with their real servers
// and weights, through moby/ipvs (not the batch writer).
func readBack(t *testing.T, ns string) map[vsKey]map[netip.AddrPort]int {
	t.Helper()
	h, err := mobyipvs.New(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	svcs, err := h.GetServices()
	if err != nil {
		t.Fatalf("list virtual servers: %v", err)
	}
	out := map[vsKey]map[netip.AddrPort]int{}
	for _, s := range svcs {
		v, ok := fromService(s)
		if !ok {
			t.Fatalf("unexpected virtual server %+v", s)
		}
		ds, err := h.GetDestinations(s)
		if err != nil {
			t.Fatalf("list real servers of %s: %v", v.key, err)
		}
		out[v.key] = map[netip.AddrPort]int{}
		for _, d := range ds {
			a, err := destAddr(d)
			if err != nil {
				t.Fatal(err)
			}
			out[v.key][a] = d.Weight
		}
	}
	return out
}

func testVS(i int, sched string) svcSpec {
	return svcSpec{key: vsKey{Addr: netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}), Port: 80, Protocol: lb.TCP}, sched: sched}
}

func testDest(i, j int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(j), byte(i)}), 8080)
}

// TestBatchOneBadMessage: in one batch, a virtual server with a scheduler
// the kernel does not know and a real server of a virtual server that does
// not exist fail, each with its own error, while every other request of the
// same sendmsg is programmed.
func TestBatchOneBadMessage(t *testing.T) {
	ns := testNetns(t)
	sends := 0
	g, err := openIPVSGenl(ns, func() { sends++ })
	if err != nil {
		t.Fatal(err)
	}
	defer g.close()
	var b batch
	good1, bad, good2, missing := testVS(1, "rr"), testVS(2, "lbkit-nosuch"), testVS(3, "wrr"), testVS(4, "rr")
	g.service(&b, cmdNewService, good1) // 0
	g.dest(&b, cmdNewDest, good1, testDest(1, 0), 1)
	g.dest(&b, cmdNewDest, good1, testDest(1, 1), 2)
	g.service(&b, cmdNewService, bad)              // 3: unknown scheduler
	g.dest(&b, cmdNewDest, bad, testDest(2, 0), 1) // 4: its service is missing
	g.dest(&b, cmdNewDest, missing, testDest(4, 0), 1)
	g.service(&b, cmdNewService, good2) // 6
	g.dest(&b, cmdNewDest, good2, testDest(3, 0), 5)
	errs := g.sock.send(&b)
	if sends != 1 {
		t.Errorf("%d sendmsg calls for 8 messages, want 1", sends)
	}
	for i, err := range errs {
		switch i {
		case 3:
			if !errors.Is(err, syscall.ENOENT) {
				t.Errorf("unknown scheduler: error %v, want ENOENT", err)
			}
		case 4, 5:
			if !notFound(err) {
				t.Errorf("message %d, real server of a missing virtual server: error %v, want ESRCH", i, err)
			}
		default:
			if err != nil {
				t.Errorf("message %d: unexpected error %v", i, err)
			}
		}
	}
	got := readBack(t, ns)
	want := map[vsKey]map[netip.AddrPort]int{
		good1.key: {testDest(1, 0): 1, testDest(1, 1): 2},
		good2.key: {testDest(3, 0): 5},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("kernel holds %v, want %v", got, want)
	}
}

// TestBatchSplitsLargeBatches: 3,000 virtual servers with 3 real servers
// each (12,000 messages) go in many sendmsg calls, bounded by bytes and by
// acknowledgements, with one failing message in the middle; everything
// else is in the kernel afterwards.
func TestBatchSplitsLargeBatches(t *testing.T) {
	ns := testNetns(t)
	sends := 0
	g, err := openIPVSGenl(ns, func() { sends++ })
	if err != nil {
		t.Fatal(err)
	}
	defer g.close()
	const n = 3000
	var b batch
	bad := -1
	for i := range n {
		s := testVS(i, "rr")
		g.service(&b, cmdNewService, s)
		for j := range 3 {
			if i == n/2 && j == 1 {
				bad = b.len()
				g.dest(&b, cmdNewDest, testVS(n+1, "rr"), testDest(i, j), 1) // no such virtual server
				continue
			}
			g.dest(&b, cmdNewDest, s, testDest(i, j), 1)
		}
	}
	errs := g.sock.send(&b)
	minSends := max((len(b.buf)+g.sock.maxBytes-1)/g.sock.maxBytes, (b.len()+g.sock.maxMsgs-1)/g.sock.maxMsgs)
	t.Logf("%d messages, %d bytes, %d sendmsg calls (at most %d bytes, %d messages each)", b.len(), len(b.buf), sends, g.sock.maxBytes, g.sock.maxMsgs)
	if sends < max(minSends, 2) || sends > b.len()/10 {
		t.Errorf("%d sendmsg calls for %d messages, want between %d and %d", sends, b.len(), max(minSends, 2), b.len()/10)
	}
	for i, err := range errs {
		if i == bad {
			if !notFound(err) {
				t.Errorf("message %d: error %v, want ESRCH", i, err)
			}
		} else if err != nil {
			t.Errorf("message %d: unexpected error %v", i, err)
		}
	}
	got := readBack(t, ns)
	if len(got) != n {
		t.Fatalf("kernel holds %d virtual servers, want %d", len(got), n)
	}
	for i := range n {
		want := 3
		if i == n/2 {
			want = 2
		}
		if ds := got[testVS(i, "rr").key]; len(ds) != want {
			t.Errorf("virtual server %d has %d real servers, want %d", i, len(ds), want)
		}
	}
}

// TestFullSyncBatchFailureIsPerService: in a full sync whose requests all
// go in one batch, the one virtual server the kernel refuses (its service
// asks for random, which maps to Options.Scheduler "lblc", a scheduler
// whose module the guest does not load and cannot load on demand) is that
// service's error alone; the services around it are programmed.
func TestFullSyncBatchFailureIsPerService(t *testing.T) {
	ns := testNetns(t)
	dp, err := New(Options{Netns: ns, Scheduler: "lblc"})
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	var snap *lb.Snapshot
	var keys []lb.ServiceKey
	for i := range 5 {
		sched := lb.RR
		if i == 2 {
			sched = lb.Random
		}
		vip := netip.AddrFrom4([4]byte{198, 19, 0, byte(i + 1)})
		svc := &lb.Service{Key: lb.ServiceKey(fmt.Sprintf("ns/svc-%d/http", i)), Scheduler: sched,
			Frontends: []lb.Frontend{{Addr: vip, Port: 80, Protocol: lb.TCP, Kind: lb.ClusterIP}}}
		ep := lb.ReadyEndpoint(testDest(i, 0))
		ep.NodeName = "node-a"
		snap = snap.With(lb.Select(svc, []lb.Endpoint{ep}, lb.Node{Name: "node-a"}))
		keys = append(keys, svc.Key)
	}
	err = dp.Sync(t.Context(), snap, lb.ChangeSet{Full: true})
	var se lb.ServiceErrors
	if err == nil {
		if os.Getenv("LBKIT_VMTEST_GUEST") == "1" {
			t.Fatal("full sync with scheduler lblc succeeded; the guest has no ip_vs_lblc, want an error")
		}
		t.Skip("this kernel loaded ip_vs_lblc on demand: no request fails")
	}
	if !errors.As(err, &se) {
		t.Fatalf("full sync: %v, want lb.ServiceErrors", err)
	}
	if len(se) != 1 || se[keys[2]] == nil || !errors.Is(se[keys[2]], syscall.ENOENT) {
		t.Errorf("full sync errors %v, want ENOENT for %s only", se, keys[2])
	}
	got := readBack(t, ns)
	if len(got) != 4 {
		t.Errorf("kernel holds %d virtual servers (%v), want the 4 good ones", len(got), got)
	}
	for i := range 5 {
		k := vsKey{Addr: netip.AddrFrom4([4]byte{198, 19, 0, byte(i + 1)}), Port: 80, Protocol: lb.TCP}
		if _, ok := got[k]; ok == (i == 2) {
			t.Errorf("virtual server %s present %v, want %v", k, ok, i != 2)
		}
	}
	if st := dp.Stats(); st.SendBatches == 0 || st.SendBatches >= st.IPVSWrites {
		t.Errorf("stats %+v: want the writes batched (fewer sendmsg calls than requests)", st)
	}
}

// TestFullSyncRepairsStaleView: the datapath adopted a kernel state that an
// outsider changed afterwards (a virtual server deleted; another replaced
// by one with a foreign real server and the real server the sync adds). The
// batched requests planned from the stale view fail (ESRCH, EEXIST) for
// exactly those virtual servers, which are read back and repaired one by
// one: the sync succeeds and the kernel is as wanted.
func TestFullSyncRepairsStaleView(t *testing.T) {
	ns := testNetns(t)
	var snap *lb.Snapshot
	for i := range 4 {
		vip := netip.AddrFrom4([4]byte{198, 19, 0, byte(i + 1)})
		svc := &lb.Service{Key: lb.ServiceKey(fmt.Sprintf("ns/svc-%d/http", i)), Scheduler: lb.RR,
			Frontends: []lb.Frontend{{Addr: vip, Port: 80, Protocol: lb.TCP, Kind: lb.ClusterIP}}}
		var eps []lb.Endpoint
		for j := range 2 {
			ep := lb.ReadyEndpoint(testDest(i, j))
			ep.NodeName = "node-a"
			eps = append(eps, ep)
		}
		snap = snap.With(lb.Select(svc, eps, lb.Node{Name: "node-a"}))
	}
	first, err := New(Options{Netns: ns})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Sync(t.Context(), snap, lb.ChangeSet{Full: true}); err != nil {
		t.Fatal(err)
	}
	first.Close()
	dp, err := New(Options{Netns: ns})
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	if err := dp.Adopt(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Behind the adopted view's back: virtual server 1 goes, and the
	// adopted one 2 is replaced by one with a foreign real server.
	h, err := mobyipvs.New(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	v1, v2 := testVS(0, "rr"), testVS(0, "rr")
	v1.key.Addr, v2.key.Addr = netip.AddrFrom4([4]byte{198, 19, 0, 2}), netip.AddrFrom4([4]byte{198, 19, 0, 3})
	if err := h.DelService(svcID(v1.key)); err != nil {
		t.Fatal(err)
	}
	if err := h.DelService(svcID(v2.key)); err != nil {
		t.Fatal(err)
	}
	if err := h.NewService(toService(&virtualServer{key: v2.key, sched: "rr"})); err != nil {
		t.Fatal(err)
	}
	// A foreign real server, and the one the sync is about to add.
	foreign := netip.MustParseAddrPort("198.18.7.7:9")
	for _, d := range []netip.AddrPort{foreign, testDest(3, 5)} {
		if err := h.NewDestination(svcID(v2.key), toDest(d, 4)); err != nil {
			t.Fatal(err)
		}
	}
	// Make the full sync write something for every virtual server: one
	// more real server each.
	var more *lb.Snapshot
	snap.Range(func(st *lb.ServiceState) bool {
		eps := append([]lb.Endpoint(nil), st.Endpoints...)
		ep := lb.ReadyEndpoint(testDest(int(st.Frontends[0].Addr.As4()[3]), 5))
		ep.NodeName = "node-a"
		more = more.With(lb.Select(st.Service, append(eps, ep), lb.Node{Name: "node-a"}))
		return true
	})
	if err := dp.Sync(t.Context(), more, lb.ChangeSet{Full: true}); err != nil {
		t.Fatalf("full sync over a stale adopted view: %v", err)
	}
	got := readBack(t, ns)
	if len(got) != 4 {
		t.Fatalf("kernel holds %d virtual servers, want 4: %v", len(got), got)
	}
	for k, ds := range got {
		want := 3
		if k == v2.key {
			want = 4 // the foreign real server drains (TCP): weight 0
			if w, ok := ds[foreign]; !ok || w != 0 {
				t.Errorf("foreign real server of %s: weight %d, present %v; want it draining at weight 0", k, w, ok)
			}
			if w := ds[testDest(3, 5)]; w != 1 {
				t.Errorf("real server %s of %s: weight %d, want 1 (the outsider's 4 repaired)", testDest(3, 5), k, w)
			}
		}
		if len(ds) != want {
			t.Errorf("virtual server %s has real servers %v, want %d", k, ds, want)
		}
	}
}
