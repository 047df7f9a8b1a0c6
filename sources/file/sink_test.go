package file

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/lbkit/lbkit/lb"
)

// recordSink is a Sink that records every call and keeps the resulting
// state. A fake is fine here: these tests check what the Source sends, and
// engine_test.go runs the same Source against a real *lb.Engine.
type recordSink struct {
	mu        sync.Mutex
	calls     []string
	services  map[lb.ServiceKey]*lb.Service
	endpoints map[lb.ServiceKey][]lb.Endpoint
	// rejectUpsert and rejectEndpoints make those calls fail for a key.
	rejectUpsert    map[lb.ServiceKey]error
	rejectEndpoints map[lb.ServiceKey]error
}

func newRecordSink() *recordSink {
	return &recordSink{
		services:        make(map[lb.ServiceKey]*lb.Service),
		endpoints:       make(map[lb.ServiceKey][]lb.Endpoint),
		rejectUpsert:    make(map[lb.ServiceKey]error),
		rejectEndpoints: make(map[lb.ServiceKey]error),
	}
}

func (r *recordSink) Upsert(svc *lb.Service) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, "upsert "+string(svc.Key))
	if err := r.rejectUpsert[svc.Key]; err != nil {
		return err
	}
	r.services[svc.Key] = svc.Clone()
	return nil
}

func (r *recordSink) Delete(key lb.ServiceKey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, "delete "+string(key))
	delete(r.services, key)
}

func (r *recordSink) SetEndpoints(key lb.ServiceKey, eps []lb.Endpoint) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, fmt.Sprintf("endpoints %s %d", key, len(eps)))
	if err := r.rejectEndpoints[key]; err != nil {
		return err
	}
	if eps == nil {
		delete(r.endpoints, key)
	} else {
		r.endpoints[key] = slices.Clone(eps)
	}
	return nil
}

// take returns the calls recorded since the last take.
func (r *recordSink) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

// state returns "key: ip:port,ip:port" lines of the current state, sorted.
func (r *recordSink) state() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for key := range r.services {
		s := string(key) + ":"
		for _, ep := range r.endpoints[key] {
			s += " " + ep.Addr.String()
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// hasEndpoint reports whether service key has an endpoint at addr.
func (r *recordSink) hasEndpoint(key lb.ServiceKey, addr string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.ContainsFunc(r.endpoints[key], func(ep lb.Endpoint) bool { return ep.Addr.String() == addr })
}

// recorder collects what a Source reports through OnError and OnApplied.
type recorder struct {
	mu      sync.Mutex
	errs    []error
	applied []int
}

func (r *recorder) options() Options {
	return Options{
		OnError: func(err error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.errs = append(r.errs, err)
		},
		OnApplied: func(n int) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.applied = append(r.applied, n)
		},
	}
}

// take returns and clears what was reported.
func (r *recorder) take() ([]error, []int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, a := r.errs, r.applied
	r.errs, r.applied = nil, nil
	return e, a
}

// writeFile writes content to dir/name in place.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// replaceFile writes content to a temporary file next to path and renames
// it over path, as editors and config management tools do.
func replaceFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	writeFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
