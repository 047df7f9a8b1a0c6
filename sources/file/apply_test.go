package file

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lbkit/lbkit/lb"
)

// threeServices is a file with services a, b and c.
const threeServices = `services:
  - name: a
    frontends: [{ip: 198.18.0.1, port: 80}]
    endpoints:
      - {ip: 198.18.1.1, port: 8080}
      - {ip: 198.18.1.2, port: 8080}
  - name: b
    scheduler: rr
    frontends: [{ip: 198.18.0.2, port: 80}]
    endpoints:
      - {ip: 198.18.2.1, port: 8080}
  - name: c
    frontends: [{ip: 198.18.0.3, port: 53, protocol: udp}]
    endpoints:
      - {ip: 198.18.3.1, port: 53}
`

// newTestSource writes content to a temp file and returns a Source for it.
func newTestSource(t *testing.T, content string) (*Source, *recordSink, *recorder, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "services.yaml")
	writeFile(t, path, content)
	sink, rec := newRecordSink(), &recorder{}
	return New(path, sink, rec.options()), sink, rec, path
}

func mustLoad(t *testing.T, s *Source) {
	t.Helper()
	if err := s.Load(); err != nil {
		t.Fatalf("Load: %v", err)
	}
}

func TestLoadAppliesOnlyDiffs(t *testing.T) {
	s, sink, rec, path := newTestSource(t, threeServices)
	mustLoad(t, s)
	want := []string{"upsert a", "upsert b", "upsert c", "endpoints a 2", "endpoints b 1", "endpoints c 1"}
	if got := sink.take(); !reflect.DeepEqual(got, want) {
		t.Fatalf("first load calls %q, want %q", got, want)
	}
	if errs, applied := rec.take(); len(errs) != 0 || !reflect.DeepEqual(applied, []int{3}) {
		t.Fatalf("first load reported errors %v, applied %v; want none, [3]", errs, applied)
	}

	// One endpoint of one service changes: one SetEndpoints, no Upsert.
	writeFile(t, path, strings.Replace(threeServices, "198.18.2.1", "198.18.2.9", 1))
	mustLoad(t, s)
	if got, want := sink.take(), []string{"endpoints b 1"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("endpoint edit calls %q, want %q", got, want)
	}
	if !sink.hasEndpoint("b", "198.18.2.9:8080") {
		t.Fatalf("sink state %q lacks the new endpoint", sink.state())
	}

	// Nothing changes: nothing is sent.
	mustLoad(t, s)
	if got := sink.take(); len(got) != 0 {
		t.Fatalf("unchanged load calls %q, want none", got)
	}

	// Reordering endpoints or spelling defaults out is no change either.
	same := strings.Replace(threeServices,
		"      - {ip: 198.18.1.1, port: 8080}\n      - {ip: 198.18.1.2, port: 8080}\n",
		"      - {ip: 198.18.1.2, port: 8080, weight: 1, ready: true}\n      - {ip: 198.18.1.1, port: 8080}\n", 1)
	same = strings.Replace(same, "2.1, port: 8080}", "2.9, port: 8080}", 1)
	same = strings.Replace(same, "    frontends: [{ip: 198.18.0.1, port: 80}]", "    scheduler: random\n    frontends: [{ip: 198.18.0.1, port: 80, protocol: TCP, kind: ClusterIP}]", 1)
	writeFile(t, path, same)
	mustLoad(t, s)
	if got := sink.take(); len(got) != 0 {
		t.Fatalf("equivalent file calls %q, want none", got)
	}

	// A service definition changes: one Upsert, no SetEndpoints.
	writeFile(t, path, strings.Replace(same, "scheduler: rr", "scheduler: wrr", 1))
	mustLoad(t, s)
	if got, want := sink.take(), []string{"upsert b"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("scheduler edit calls %q, want %q", got, want)
	}

	// A service goes: Delete and clear its endpoints, nothing else.
	noC := strings.Split(same, "  - name: c\n")[0]
	writeFile(t, path, strings.Replace(noC, "scheduler: rr", "scheduler: wrr", 1))
	mustLoad(t, s)
	if got, want := sink.take(), []string{"delete c", "endpoints c 0"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("removal calls %q, want %q", got, want)
	}
	if _, applied := rec.take(); !reflect.DeepEqual(applied, []int{1, 0, 0, 1, 1}) {
		t.Fatalf("OnApplied got %v, want [1 0 0 1 1]", applied)
	}
	if got, want := sink.state(), []string{"a: 198.18.1.1:8080 198.18.1.2:8080", "b: 198.18.2.9:8080"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("sink state %q, want %q", got, want)
	}
}

func TestBadEditKeepsLastGoodState(t *testing.T) {
	s, sink, rec, path := newTestSource(t, threeServices)
	mustLoad(t, s)
	sink.take()
	rec.take()
	before := sink.state()

	// Drop service c and break service b: nothing at all may be applied.
	bad := strings.Split(strings.Replace(threeServices, "port: 80}]\n    endpoints:\n      - {ip: 198.18.2.1", "port: 99999}]\n    endpoints:\n      - {ip: 198.18.2.1", 1), "  - name: c\n")[0]
	writeFile(t, path, bad)
	err := s.Load()
	if err == nil || !strings.Contains(err.Error(), "services.yaml:9: services[1].frontends[0].port: 99999 is out of range") {
		t.Fatalf("Load of a bad edit returned %v, want the located port error", err)
	}
	if got := sink.take(); len(got) != 0 {
		t.Fatalf("bad edit reached the sink: %q", got)
	}
	if got := sink.state(); !reflect.DeepEqual(got, before) {
		t.Fatalf("state changed from %q to %q", before, got)
	}
	errs, applied := rec.take()
	if len(errs) != 1 || len(applied) != 0 {
		t.Fatalf("OnError got %v, OnApplied %v; want one error and no apply", errs, applied)
	}
	var e *Error
	if !errors.As(errs[0], &e) || e.Line != 9 || e.Field != "services[1].frontends[0].port" {
		t.Fatalf("OnError got %v, want a located *Error", errs[0])
	}

	// A missing file is reported the same way and changes nothing.
	s2 := New(path+".missing", sink, rec.options())
	if err := s2.Load(); err == nil {
		t.Fatal("Load of a missing file succeeded")
	}
	if errs, _ := rec.take(); len(errs) != 1 {
		t.Fatalf("missing file: OnError got %v, want one error", errs)
	}

	// A later good edit applies from the last good state.
	writeFile(t, path, strings.Replace(threeServices, "198.18.3.1", "198.18.3.2", 1))
	mustLoad(t, s)
	if got, want := sink.take(), []string{"endpoints c 1"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("good edit calls %q, want %q", got, want)
	}
	if errs, applied := rec.take(); len(errs) != 0 || !reflect.DeepEqual(applied, []int{1}) {
		t.Fatalf("good edit reported %v, applied %v", errs, applied)
	}
}

// A source is a plain mirror: a service the Sink refuses is reported with
// its line, the others are applied, and the refused input is not sent
// again by hand (the engine keeps it and programs it when it can).
func TestSinkRejectionDoesNotBlockOthers(t *testing.T) {
	s, sink, rec, path := newTestSource(t, threeServices)
	injected := errors.New("injected rejection")
	sink.rejectUpsert["b"] = injected
	mustLoad(t, s) // a refused service is reported, not returned
	if got, want := sink.take(), []string{"upsert a", "upsert b", "upsert c", "endpoints a 2", "endpoints b 1", "endpoints c 1"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("calls %q, want %q", got, want)
	}
	errs, applied := rec.take()
	if len(errs) != 1 || !errors.Is(errs[0], injected) || !reflect.DeepEqual(applied, []int{3}) {
		t.Fatalf("OnError %v, OnApplied %v; want the injected error once, [3]", errs, applied)
	}
	var e *Error
	if !errors.As(errs[0], &e) || e.Line != 7 || e.Field != "services[1]" || !strings.Contains(e.Error(), `services.yaml:7: services[1]: service "b" not programmed as written: injected rejection`) {
		t.Fatalf("rejection %v not located at service b", errs[0])
	}

	// An edit of another service sends only that change.
	delete(sink.rejectUpsert, "b")
	writeFile(t, path, strings.Replace(threeServices, "198.18.1.2", "198.18.1.3", 1))
	mustLoad(t, s)
	if got, want := sink.take(), []string{"endpoints a 2"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("edit calls %q, want %q", got, want)
	}

	// A refused endpoint set is reported the same way.
	sink.rejectEndpoints["c"] = injected
	writeFile(t, path, strings.Replace(threeServices, "198.18.3.1", "198.18.3.2", 1))
	mustLoad(t, s)
	if got, want := sink.take(), []string{"endpoints a 2", "endpoints c 1"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("calls %q, want %q", got, want)
	}
	if errs, _ := rec.take(); len(errs) != 1 || !errors.Is(errs[0], injected) {
		t.Fatalf("OnError %v, want the injected error once", errs)
	}
}

func TestRejectionLocatesTheField(t *testing.T) {
	s, sink, rec, _ := newTestSource(t, threeServices)
	sink.rejectUpsert["c"] = &lb.UnsupportedError{Service: "c", Field: "frontends[0].protocol", Value: "udp", Datapath: "test"}
	mustLoad(t, s)
	errs, _ := rec.take()
	want := `services.yaml:13: services[2].frontends[0].protocol: service "c" not programmed as written: udp is not supported by the test datapath`
	if len(errs) != 1 || !strings.HasSuffix(errs[0].Error(), want) {
		t.Fatalf("OnError got %v, want %q", errs, want)
	}
}
