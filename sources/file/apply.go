package file

import (
	"fmt"
	"maps"
	"slices"

	"github.com/lbkit/lbkit/lb"
)

// Sink is what a Source feeds; *lb.Engine implements it.
type Sink interface {
	Upsert(*lb.Service) error
	Delete(lb.ServiceKey)
	SetEndpoints(lb.ServiceKey, []lb.Endpoint) error
}

// applier mirrors the file into the Sink: it remembers what it sent, so
// that each load sends only the difference. It sends every service as
// written, even one the Sink refuses: the engine keeps refused input and
// programs it when it can (a frontend another service held is released, a
// datapath that can express it takes over), so a source never retries by
// hand.
type applier struct {
	sink      Sink
	services  map[lb.ServiceKey]*lb.Service
	endpoints map[lb.ServiceKey][]lb.Endpoint
}

// statusReader is implemented by Sinks that keep a status per service
// (*lb.Engine does); the applier uses it to report services that are still
// refused on every load, not only on the one that changed them.
type statusReader interface {
	ServiceStatus(lb.ServiceKey) (lb.ServiceStatus, bool)
}

func newApplier(sink Sink) *applier {
	return &applier{
		sink:      sink,
		services:  make(map[lb.ServiceKey]*lb.Service),
		endpoints: make(map[lb.ServiceKey][]lb.Endpoint),
	}
}

// apply makes the Sink hold exactly ls. It returns the number of services
// the Sink changed for, and one located *Error per service the Sink
// refuses (in part).
func (a *applier) apply(file string, ls []*located) (changed int, errs []error) {
	want := make(map[lb.ServiceKey]*located, len(ls))
	for _, l := range ls {
		want[l.Service.Key] = l
	}
	touched := make(map[lb.ServiceKey]bool)

	// Removed services first: they may free frontends a changed one takes.
	for _, key := range slices.Sorted(maps.Keys(a.services)) {
		if want[key] == nil {
			a.sink.Delete(key)
			delete(a.services, key)
			touched[key] = true
		}
	}
	for _, key := range slices.Sorted(maps.Keys(a.endpoints)) {
		if want[key] != nil {
			continue
		}
		if err := a.sink.SetEndpoints(key, nil); err != nil {
			errs = append(errs, fmt.Errorf("%s: removing the endpoints of deleted service %q: %w", file, key, err))
		}
		delete(a.endpoints, key)
		touched[key] = true
	}

	// New and changed services, then their endpoints (endpoint validation
	// checks IP families against the service).
	refused := make(map[lb.ServiceKey][]error)
	for _, l := range ls {
		key := l.Service.Key
		if old := a.services[key]; old != nil && old.Equal(l.Service) {
			continue
		}
		svc := l.Service.Clone()
		if err := a.sink.Upsert(svc); err != nil {
			refused[key] = append(refused[key], err)
		}
		a.services[key] = svc
		touched[key] = true
	}
	for _, l := range ls {
		key := l.Service.Key
		if sameEndpoints(a.endpoints[key], l.Endpoints) {
			continue
		}
		eps := slices.Clone(l.Endpoints)
		if err := a.sink.SetEndpoints(key, eps); err != nil {
			refused[key] = append(refused[key], err)
		}
		if len(eps) == 0 {
			delete(a.endpoints, key)
		} else {
			a.endpoints[key] = eps
		}
		touched[key] = true
	}

	// What is refused once the whole file is in: a Sink that keeps a
	// status says it for every service (a conflict an earlier Upsert
	// reported may be resolved by a later one, and a service this load
	// did not touch may still be refused); otherwise the calls' errors.
	sr, hasStatus := a.sink.(statusReader)
	for _, l := range ls {
		key := l.Service.Key
		if !hasStatus {
			for _, err := range refused[key] {
				errs = append(errs, rejection(file, l, err))
			}
			continue
		}
		if st, ok := sr.ServiceStatus(key); ok && st.Err != nil && st.Phase != lb.PhaseFailed {
			errs = append(errs, rejection(file, l, st.Err))
		}
	}
	return len(touched), errs
}

// rejection locates an error the Sink returned for the service of l.
func rejection(file string, l *located, err error) *Error {
	line, field, msg := l.locate(err)
	return &Error{File: file, Line: line, Field: field, Msg: fmt.Sprintf("service %q not programmed as written: %s", l.Service.Key, msg), Err: err}
}

// sameEndpoints reports whether two endpoint lists hold the same endpoints,
// in any order.
func sameEndpoints(a, b []lb.Endpoint) bool {
	if len(a) != len(b) {
		return false
	}
	return slices.Equal(sortedEndpoints(a), sortedEndpoints(b))
}

func sortedEndpoints(eps []lb.Endpoint) []lb.Endpoint {
	s := slices.Clone(eps)
	slices.SortFunc(s, func(x, y lb.Endpoint) int {
		return x.Addr.Compare(y.Addr) // unique within a list: Parse checks
	})
	return s
}
