package file

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/lbkit/lbkit/lb"
)

// discard is a Datapath that programs nothing and counts syncs, so that a
// real *lb.Engine can run without privileges.
type discard struct {
	caps lb.Capabilities
	mu   sync.Mutex
	// changed collects the keys of every ChangeSet.
	changed []lb.ServiceKey
}

func (d *discard) Name() string                  { return "discard" }
func (d *discard) Capabilities() lb.Capabilities { return d.caps }
func (d *discard) Cleanup(context.Context) error { return nil }
func (d *discard) Close() error                  { return nil }
func (d *discard) Sync(_ context.Context, _ *lb.Snapshot, cs lb.ChangeSet) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.changed = append(d.changed, cs.Keys()...)
	return nil
}

func (d *discard) take() []lb.ServiceKey {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.changed
	d.changed = nil
	slices.Sort(c)
	return c
}

func newEngine(t *testing.T, caps lb.Capabilities) (*lb.Engine, *discard) {
	t.Helper()
	dp := &discard{caps: caps}
	eng, err := lb.NewEngine(dp, lb.Config{NodeName: "node-a"})
	if err != nil {
		t.Fatal(err)
	}
	return eng, dp
}

func allCaps() lb.Capabilities {
	return lb.Capabilities{
		Schedulers:    lb.Schedulers(),
		Protocols:     []lb.Protocol{lb.TCP, lb.UDP, lb.SCTP},
		FrontendKinds: []lb.FrontendKind{lb.ClusterIP, lb.NodePort, lb.ExternalIP, lb.LoadBalancer},
		Affinity:      true, Weights: true, IPv6: true, LocalPolicy: true,
	}
}

// backends returns "frontend -> backend backend" for every frontend of key
// in the engine's snapshot.
func backends(t *testing.T, eng *lb.Engine, key lb.ServiceKey) []string {
	t.Helper()
	st, ok := eng.Snapshot().Service(key)
	if !ok {
		return nil
	}
	var out []string
	for _, fe := range st.Frontends {
		s := fe.Frontend.String() + " ->"
		for _, b := range fe.Backends {
			s += " " + b.Addr.String()
		}
		out = append(out, s)
	}
	return out
}

func TestLoadIntoEngine(t *testing.T) {
	ctx := context.Background()
	eng, dp := newEngine(t, allCaps())
	path := filepath.Join(t.TempDir(), "services.yaml")
	writeFile(t, path, threeServices)
	s := New(path, eng, Options{})
	mustLoad(t, s)
	if err := eng.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := eng.Snapshot().Len(); got != 3 {
		t.Fatalf("engine holds %d services, want 3", got)
	}
	if got, want := backends(t, eng, "a"), []string{"198.18.0.1:80/tcp -> 198.18.1.1:8080 198.18.1.2:8080"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("a: %q, want %q", got, want)
	}
	if got, want := dp.take(), []lb.ServiceKey{"a", "b", "c"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("first sync changed %q, want %q", got, want)
	}

	// One endpoint edit: the datapath is told about that service only.
	writeFile(t, path, strings.Replace(threeServices, "198.18.3.1", "198.18.3.7", 1))
	mustLoad(t, s)
	if err := eng.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := dp.take(), []lb.ServiceKey{"c"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("sync after an edit of c changed %q, want %q", got, want)
	}
	if got, want := backends(t, eng, "c"), []string{"198.18.0.3:53/udp -> 198.18.3.7:53"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("c: %q, want %q", got, want)
	}

	// Services a and b swap frontends in one edit: the engine never lets two
	// services hold one frontend, and resolves the swap by itself.
	swapped := strings.NewReplacer("ip: 198.18.0.1, port: 80", "ip: 198.18.0.2, port: 80",
		"ip: 198.18.0.2, port: 80", "ip: 198.18.0.1, port: 80").Replace(threeServices)
	writeFile(t, path, swapped)
	rec := &recorder{}
	s.opts.OnError = rec.options().OnError
	mustLoad(t, s)
	if errs, _ := rec.take(); len(errs) != 0 {
		t.Fatalf("swap rejected: %v", errs)
	}
	if err := eng.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := backends(t, eng, "a"), []string{"198.18.0.2:80/tcp -> 198.18.1.1:8080 198.18.1.2:8080"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("a after swap: %q, want %q", got, want)
	}
	if got, want := backends(t, eng, "b"), []string{"198.18.0.1:80/tcp -> 198.18.2.1:8080"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("b after swap: %q, want %q", got, want)
	}

	// Removing every service empties the engine.
	writeFile(t, path, "services: []\n")
	mustLoad(t, s)
	if err := eng.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := eng.Snapshot().Len(); got != 0 {
		t.Fatalf("engine holds %d services after removing all, want 0", got)
	}
}

func TestEngineRejectionIsLocated(t *testing.T) {
	caps := allCaps()
	caps.Schedulers = []lb.Scheduler{lb.Random}
	eng, _ := newEngine(t, caps)
	path := filepath.Join(t.TempDir(), "services.yaml")
	writeFile(t, path, threeServices)
	rec := &recorder{}
	s := New(path, eng, rec.options())
	mustLoad(t, s)
	errs, _ := rec.take()
	var uerr *lb.UnsupportedError
	if len(errs) != 1 || !errors.As(errs[0], &uerr) ||
		!strings.Contains(errs[0].Error(), "services.yaml:8: services[1].scheduler: ") {
		t.Fatalf("OnError got %v, want b's unsupported scheduler at line 8", errs)
	}
	if err := eng.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := eng.Snapshot().Len(); got != 2 {
		t.Fatalf("engine holds %d services, want a and c", got)
	}
}

// A frontend held by a service of another source: the file's service is
// reported in conflict with its line on every load, and is programmed as
// soon as the other service lets go, without the file being touched.
func TestConflictWithAnotherSourceResolvesByItself(t *testing.T) {
	ctx := context.Background()
	eng, _ := newEngine(t, allCaps())
	other := &lb.Service{Key: "kube/x", Frontends: []lb.Frontend{{
		Addr: netip.MustParseAddr("198.18.0.2"), Port: 80, Protocol: lb.TCP, Kind: lb.ClusterIP}}}
	if err := eng.Upsert(other); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "services.yaml")
	writeFile(t, path, threeServices)
	rec := &recorder{}
	s := New(path, eng, rec.options())
	mustLoad(t, s)
	for range 2 { // the first load, and a forced reload that changes nothing
		errs, _ := rec.take()
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), `services.yaml:9: services[1].frontends[0]: service "b" not programmed as written: 198.18.0.2:80/tcp is already used by service "kube/x"`) {
			t.Fatalf("conflict report %v", errs)
		}
		if err := s.Load(); err != nil {
			t.Fatal(err)
		}
	}
	if err := eng.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := backends(t, eng, "b"); got != nil {
		t.Fatalf("b programmed while in conflict: %q", got)
	}
	eng.Delete("kube/x")
	if err := eng.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := backends(t, eng, "b"), []string{"198.18.0.2:80/tcp -> 198.18.2.1:8080"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("b after kube/x left: %q, want %q", got, want)
	}
	if st, _ := eng.ServiceStatus("b"); st.Phase != lb.PhaseProgrammed {
		t.Fatalf("b status %+v", st)
	}
}
