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

// applier remembers what the Sink accepted, so that each load sends it only
// the difference. A service or endpoint set the Sink rejected is not
// remembered, so the next load retries it.
type applier struct {
	sink      Sink
	services  map[lb.ServiceKey]*lb.Service
	endpoints map[lb.ServiceKey][]lb.Endpoint
}

func newApplier(sink Sink) *applier {
	return &applier{
		sink:      sink,
		services:  make(map[lb.ServiceKey]*lb.Service),
		endpoints: make(map[lb.ServiceKey][]lb.Endpoint),
	}
}

// apply makes the Sink hold exactly ls. It returns the number of services
// the Sink changed for, and one located *Error per rejected service.
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
			continue
		}
		delete(a.endpoints, key)
		touched[key] = true
	}

	// New and changed services, then their endpoints (endpoint validation
	// checks IP families against the service).
	rejected := make(map[lb.ServiceKey]bool)
	for _, r := range a.upsert(ls, touched) {
		rejected[r.l.Service.Key] = true
		errs = append(errs, rejection(file, r.l, r.err))
	}
	for _, l := range ls {
		key := l.Service.Key
		if rejected[key] || sameEndpoints(a.endpoints[key], l.Endpoints) {
			continue
		}
		eps := slices.Clone(l.Endpoints)
		if err := a.sink.SetEndpoints(key, eps); err != nil {
			errs = append(errs, rejection(file, l, err))
			continue
		}
		if len(eps) == 0 {
			delete(a.endpoints, key)
		} else {
			a.endpoints[key] = eps
		}
		touched[key] = true
	}
	return len(touched), errs
}

type rejected struct {
	l   *located
	err error
}

// upsert sends the Sink every service of ls that differs from what it
// holds. A service that takes over a frontend another changed service still
// holds waits for that one; when two services swap frontends, one of them is
// deleted first so that the other can be added.
func (a *applier) upsert(ls []*located, touched map[lb.ServiceKey]bool) []rejected {
	var pending []*located
	for _, l := range ls {
		if old := a.services[l.Service.Key]; old == nil || !old.Equal(l.Service) {
			pending = append(pending, l)
		}
	}
	var failed []rejected
	try := func(l *located) {
		svc := l.Service.Clone()
		if err := a.sink.Upsert(svc); err != nil {
			failed = append(failed, rejected{l, err})
			return
		}
		a.services[svc.Key] = svc
		touched[svc.Key] = true
	}
	for len(pending) > 0 {
		owners := a.owners()
		next := pending[:0:0]
		for _, l := range pending {
			if blocker(l.Service, owners) == "" {
				try(l)
			} else {
				next = append(next, l)
			}
		}
		if len(next) == len(pending) {
			// Every remaining service waits for a frontend another holds.
			l := next[0]
			holder := blocker(l.Service, owners)
			if slices.ContainsFunc(next, func(o *located) bool { return o.Service.Key == holder }) {
				a.sink.Delete(holder)
				delete(a.services, holder)
				touched[holder] = true
			} else {
				try(l) // the holder was rejected: let the Sink say why
				next = next[1:]
			}
		}
		pending = next
	}
	return failed
}

// owners maps every frontend the Sink holds to its service.
func (a *applier) owners() map[lb.FrontendID]lb.ServiceKey {
	m := make(map[lb.FrontendID]lb.ServiceKey)
	for key, svc := range a.services {
		for _, fe := range svc.Frontends {
			m[fe.ID()] = key
		}
	}
	return m
}

// blocker returns the other service that holds a frontend of svc, or "".
func blocker(svc *lb.Service, owners map[lb.FrontendID]lb.ServiceKey) lb.ServiceKey {
	for _, fe := range svc.Frontends {
		if o, ok := owners[fe.ID()]; ok && o != svc.Key {
			return o
		}
	}
	return ""
}

// rejection locates an error the Sink returned for the service of l.
func rejection(file string, l *located, err error) *Error {
	line, field, msg := l.locate(err)
	return &Error{File: file, Line: line, Field: field, Msg: fmt.Sprintf("service %q rejected: %s", l.Service.Key, msg), Err: err}
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
