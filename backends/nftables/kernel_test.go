package nftables

import (
	"bufio"
	"context"
	"io"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lbkit/lbkit/internal/netns"
	"github.com/lbkit/lbkit/internal/testenv"
	"github.com/lbkit/lbkit/lb"
)

// These tests program a real kernel in network namespaces (root only; they
// skip otherwise) and send real traffic.

// world is a topology with a datapath programming its node.
type world struct {
	t    *testing.T
	topo *netns.Topology
	d    *Datapath
	snap *lb.Snapshot
}

func newWorld(t *testing.T, o Options) *world {
	t.Helper()
	topo := netns.New(t, netns.Options{})
	o.Netns, o.Logger = topo.Node.Path, testenv.Logger(t)
	d, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Cleanup(context.Background()); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
	})
	return &world{t: t, topo: topo, d: d}
}

// backend returns backend i as a ready endpoint.
func (w *world) backend(i int) lb.Endpoint {
	return lb.ReadyEndpoint(netip.AddrPortFrom(w.topo.Backends[i].IPv4, netns.DefaultPort))
}

// set puts a service with endpoints into the snapshot and syncs it
// (partially, or fully with full).
func (w *world) set(svc *lb.Service, eps []lb.Endpoint, full bool) {
	w.t.Helper()
	w.snap = w.snap.With(lb.Select(svc, eps, lb.Node{}))
	cs := lb.ChangeSet{Full: full, Changed: map[lb.ServiceKey]struct{}{svc.Key: {}}}
	if err := w.d.Sync(w.t.Context(), w.snap, cs); err != nil {
		w.t.Fatalf("Sync of %s: %v", svc.Key, err)
	}
}

// fullSync syncs the whole snapshot.
func (w *world) fullSync() syncResult {
	w.t.Helper()
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	res, err := w.d.fullSync(w.snap)
	if err != nil {
		w.t.Fatalf("full sync: %v", err)
	}
	return res
}

// request sends one request to fe and returns who answered.
func (w *world) request(f lb.Frontend) string {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.t.Context(), 5*time.Second)
	defer cancel()
	r, err := w.topo.Client.Request(ctx, f.Protocol.String(), netip.AddrPortFrom(f.Addr, f.Port))
	if err != nil {
		w.t.Fatalf("request to %s: %v", f, err)
	}
	return r.Backend
}

// nft runs nft in the node namespace.
func (w *world) nft(args ...string) string {
	w.t.Helper()
	testenv.RequireTool(w.t, "nft", "nftables")
	out, err := w.topo.Node.Exec(w.t.Context(), "nft", args...)
	if err != nil {
		w.t.Fatalf("nft %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

func vip(n byte) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, 100, n}) }

func simpleService(key string, n byte, p lb.Protocol) *lb.Service {
	return &lb.Service{Key: lb.ServiceKey(key), Frontends: []lb.Frontend{{Addr: vip(n), Port: 80, Protocol: p, Kind: lb.ClusterIP}}}
}

// TestAdoption restarts the datapath over the tables a previous one left:
// an established connection keeps working, requests sent throughout never
// fail, the client's affinity entry survives, and the new process's first
// sync converges (an endpoint change it brings takes effect).
func TestAdoption(t *testing.T) {
	w := newWorld(t, Options{})
	svc := simpleService("web", 1, lb.TCP)
	sticky := simpleService("sticky", 2, lb.TCP)
	sticky.Affinity = lb.SessionAffinity{Type: lb.AffinityClientIP, Timeout: time.Hour}
	all := []lb.Endpoint{w.backend(0), w.backend(1), w.backend(2)}

	first, err := lb.NewEngine(w.d, lb.Config{Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*lb.Service{svc, sticky} {
		if err := first.Upsert(s); err != nil {
			t.Fatal(err)
		}
		if err := first.SetEndpoints(s.Key, all); err != nil {
			t.Fatal(err)
		}
	}
	if err := first.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	fe := svc.Frontends[0]
	stickyTo := w.request(sticky.Frontends[0])
	conn, err := w.topo.Client.Dial(t.Context(), "tcp", netip.AddrPortFrom(fe.Addr, fe.Port).String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rd := bufio.NewReader(conn)
	if _, err := rd.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	affinityBefore := w.nft("list", "set", "ip", DefaultTable, "affinity")

	// The process "restarts": a new datapath and engine, the same
	// services but one endpoint fewer for web, traffic flowing meanwhile.
	second, err := New(Options{Netns: w.topo.Node.Path, Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := lb.NewEngine(second, lb.Config{Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Upsert(svc); err != nil {
		t.Fatal(err)
	}
	if err := eng.SetEndpoints(svc.Key, all[:2]); err != nil {
		t.Fatal(err)
	}
	if err := eng.Upsert(sticky); err != nil {
		t.Fatal(err)
	}
	if err := eng.SetEndpoints(sticky.Key, all); err != nil {
		t.Fatal(err)
	}
	failures, requests := trafficDuring(t, w, fe, func() {
		if err := eng.Flush(t.Context()); err != nil {
			t.Errorf("first sync after the restart: %v", err)
		}
	})
	if failures > 0 {
		t.Errorf("%d of %d requests failed across the restart", failures, requests)
	}
	if err := echo(conn, rd, "still here\n"); err != nil {
		t.Errorf("established connection across the restart: %v", err)
	}
	for range 30 {
		if got := w.request(fe); got == w.topo.Backends[2].Name {
			t.Fatalf("%s answered after the restarted datapath removed it", got)
		}
	}
	if got := w.request(sticky.Frontends[0]); got != stickyTo {
		t.Errorf("affinity lost across the restart: %s answered, want %s", got, stickyTo)
	}
	if after := w.nft("list", "set", "ip", DefaultTable, "affinity"); !strings.Contains(after, w.topo.Client.IPv4.String()) {
		t.Errorf("the affinity entry is gone after the restart:\nbefore %s\nafter %s", affinityBefore, after)
	}
	if err := eng.Cleanup(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// trafficDuring sends requests to f in the background while fn runs, and
// returns how many failed.
func trafficDuring(t *testing.T, w *world, f lb.Frontend, fn func()) (failures, requests int) {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := w.topo.Client.Request(ctx, "tcp", netip.AddrPortFrom(f.Addr, f.Port))
			cancel()
			mu.Lock()
			requests++
			if err != nil {
				failures++
				t.Logf("request during the change: %v", err)
			}
			mu.Unlock()
		}
	}()
	time.Sleep(50 * time.Millisecond) // let some requests go before
	fn()
	time.Sleep(50 * time.Millisecond) // and some after
	close(stop)
	wg.Wait()
	if requests < 2 {
		t.Errorf("only %d requests were sent around the change", requests)
	}
	return failures, requests
}

func echo(c io.Writer, rd *bufio.Reader, msg string) error {
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(rd, buf); err != nil {
		return err
	}
	if string(buf) != msg {
		return io.ErrUnexpectedEOF
	}
	return nil
}

// TestFullSyncRepairsDrift: whatever someone did to the tables, a full
// sync puts them back in one transaction, in place: lost elements come
// back, foreign elements, chains and sets in the tables go, and the
// affinity entries stay. Tables of another layout are replaced.
func TestFullSyncRepairsDrift(t *testing.T) {
	w := newWorld(t, Options{})
	web := simpleService("web", 1, lb.TCP)
	sticky := simpleService("sticky", 2, lb.TCP)
	sticky.Affinity = lb.SessionAffinity{Type: lb.AffinityClientIP, Timeout: time.Hour}
	all := []lb.Endpoint{w.backend(0), w.backend(1), w.backend(2)}
	w.set(web, all, true)
	w.set(sticky, all, false)
	stickyTo := w.request(sticky.Frontends[0])

	tbl := DefaultTable
	w.nft("delete", "element", "ip", tbl, "endpoints", "{ 198.18.100.1 . tcp . 80 . 0x00000000 }")
	w.nft("add", "element", "ip", tbl, "no-endpoints", "{ 198.18.100.99 . tcp . 99 }")
	w.nft("add", "chain", "ip", tbl, "intruder")
	w.nft("add", "rule", "ip", tbl, "intruder", "counter")
	w.nft("add", "set", "ip", tbl, "extra", "{ type ipv4_addr ; }")

	res := w.fullSync()
	if res.recreated || res.trusted {
		t.Errorf("full sync after outside changes: recreated %v, trusted the generation %v; want reconciled in place", res.recreated, res.trusted)
	}
	list := w.nft("list", "table", "ip", tbl)
	for _, gone := range []string{"198.18.100.99", "intruder", "extra"} {
		if strings.Contains(list, gone) {
			t.Errorf("%q is still in the table after a full sync", gone)
		}
	}
	seen := map[string]bool{}
	for range 60 {
		seen[w.request(web.Frontends[0])] = true
	}
	if len(seen) != 3 {
		t.Errorf("after repairing the endpoints map web reached %v, want all three backends", seen)
	}
	if got := w.request(sticky.Frontends[0]); got != stickyTo {
		t.Errorf("affinity lost by the full sync: %s answered, want %s", got, stickyTo)
	}

	// A second full sync with nobody else committing trusts the generation.
	if res := w.fullSync(); !res.trusted || res.added+res.deleted != 0 {
		t.Errorf("an idle full sync: trusted %v, %d elements added, %d deleted; want trusted, none", res.trusted, res.added, res.deleted)
	}

	// A table of another layout is replaced.
	w.nft("delete", "table", "ip", tbl)
	w.nft("add", "table", "ip", tbl)
	w.nft("add", "set", "ip", tbl, "services", "{ type ipv4_addr ; }")
	if res := w.fullSync(); !res.recreated {
		t.Error("a table of another layout was not recreated")
	}
	w.request(web.Frontends[0])
}

// TestLargeTransaction: thousands of services in one transaction, far
// beyond the default netlink socket buffers; read back with Inspect.
func TestLargeTransaction(t *testing.T) {
	w := newWorld(t, Options{})
	w.snap = benchSnapshot(t, 3000)
	if err := w.d.Sync(t.Context(), w.snap, lb.ChangeSet{Full: true}); err != nil {
		t.Fatalf("full sync of 3000 services: %v", err)
	}
	var st *lb.ServiceState
	w.snap.Range(func(s *lb.ServiceState) bool { st = s; return false })
	in, err := w.d.Inspect(t.Context(), st.Frontends[0].ID())
	if err != nil {
		t.Fatal(err)
	}
	if in.Service != st.Key() || len(in.Backends) != 3 {
		t.Errorf("Inspect(%s) = service %s with %d backends, want %s with 3", st.Frontends[0], in.Service, len(in.Backends), st.Key())
	}
	for i, b := range in.Backends {
		if b.Addr != st.Frontends[0].Backends[i].Addr || b.Weight != 1 {
			t.Errorf("backend %d: %s weight %d, want %s weight 1", i, b.Addr, b.Weight, st.Frontends[0].Backends[i].Addr)
		}
	}
	if err := w.d.Cleanup(t.Context()); err != nil {
		t.Fatal(err)
	}
	if list := w.nft("list", "tables"); strings.Contains(list, DefaultTable) {
		t.Errorf("tables left after Cleanup: %s", list)
	}
}

// TestInspect reads back weights, affinity and empty frontends from the
// kernel, and fails clearly for a frontend nobody programmed.
func TestInspect(t *testing.T) {
	w := newWorld(t, Options{MasqueradeAll: true})
	weighted := simpleService("weighted", 1, lb.UDP)
	eps := []lb.Endpoint{w.backend(0), w.backend(1)}
	eps[1].Weight = 3
	w.set(weighted, eps, true)
	sticky := &lb.Service{Key: "sticky", Affinity: lb.SessionAffinity{Type: lb.AffinityClientIP, Timeout: 90 * time.Second},
		Frontends: []lb.Frontend{{Addr: netip.IPv4Unspecified(), Port: 30080, Protocol: lb.TCP, Kind: lb.NodePort}}}
	w.set(sticky, []lb.Endpoint{w.backend(2)}, false)
	empty := simpleService("empty", 3, lb.TCP)
	w.set(empty, nil, false)

	in, err := w.d.Inspect(t.Context(), weighted.Frontends[0].ID())
	if err != nil {
		t.Fatal(err)
	}
	if in.Service != "weighted" || in.Frontend.Kind != lb.ClusterIP || len(in.Backends) != 2 || in.Backends[0].Weight != 1 || in.Backends[1].Weight != 3 {
		t.Errorf("Inspect(weighted) = %+v, want backends of weights 1 and 3", in)
	}
	in, err = w.d.Inspect(t.Context(), sticky.Frontends[0].ID())
	if err != nil {
		t.Fatal(err)
	}
	if in.AffinityTimeout != 90*time.Second || in.Frontend.Kind != lb.NodePort || len(in.Backends) != 1 || in.Backends[0].Addr != w.backend(2).Addr {
		t.Errorf("Inspect(sticky) = %+v, want a NodePort with 90s affinity to backend2", in)
	}
	in, err = w.d.Inspect(t.Context(), empty.Frontends[0].ID())
	if err != nil || len(in.Backends) != 0 || in.Service != "empty" {
		t.Errorf("Inspect(empty) = %+v, %v; want service empty without backends", in, err)
	}
	if _, err := w.d.Inspect(t.Context(), lb.FrontendID{Addr: vip(9), Port: 80, Protocol: lb.TCP}); err == nil || !strings.Contains(err.Error(), "not programmed") {
		t.Errorf("Inspect of an unknown frontend: %v, want a 'not programmed' error", err)
	}
}

// TestAffinityAfterBackendRemoval: a client sticks to its backend; when
// that backend goes, its next connection is balanced anew and sticks to
// the new backend; the other clients' entries are not affected.
func TestAffinityAfterBackendRemoval(t *testing.T) {
	w := newWorld(t, Options{})
	svc := simpleService("sticky", 1, lb.TCP)
	svc.Affinity = lb.SessionAffinity{Type: lb.AffinityClientIP, Timeout: time.Hour}
	all := []lb.Endpoint{w.backend(0), w.backend(1), w.backend(2)}
	w.set(svc, all, true)
	f := svc.Frontends[0]
	first := w.request(f)
	for range 10 {
		if got := w.request(f); got != first {
			t.Fatalf("affinity: %s then %s", first, got)
		}
	}
	var keep []lb.Endpoint
	for i, b := range w.topo.Backends {
		if b.Name != first {
			keep = append(keep, w.backend(i))
		}
	}
	w.set(svc, keep, false)
	second := w.request(f)
	if second == first {
		t.Fatalf("%s answered after its removal", first)
	}
	for range 10 {
		if got := w.request(f); got != second {
			t.Fatalf("affinity after the removal: %s then %s", second, got)
		}
	}
}
