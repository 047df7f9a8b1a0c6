package lb

import (
	"fmt"
	"slices"
	"time"
)

// ChangeKind says what part of a service changed.
type ChangeKind uint8

// Change kinds, counted separately as kube-proxy does.
const (
	ServiceChange ChangeKind = iota + 1
	EndpointsChange
)

// String returns "service" or "endpoints".
func (k ChangeKind) String() string {
	if k == EndpointsChange {
		return "endpoints"
	}
	return "service"
}

// pending records what changed in one service since the last successful sync.
type pending struct {
	since     time.Time // first time a change of this service was seen
	service   bool
	endpoints bool
}

// ChangeTracker holds the desired state (services and their endpoints) and the
// set of service keys that changed since the last successful sync. It is not
// safe for concurrent use; the Engine serializes access.
//
// Every operation costs O(size of the one service it touches): nothing scans
// all services.
type ChangeTracker struct {
	services  map[ServiceKey]*Service
	endpoints map[ServiceKey][]Endpoint
	frontends map[FrontendID]ServiceKey
	pending   map[ServiceKey]*pending
	// counts of pending keys by kind, kept in step with pending.
	pendingServices, pendingEndpoints int
}

// NewChangeTracker returns an empty tracker.
func NewChangeTracker() *ChangeTracker {
	return &ChangeTracker{
		services:  make(map[ServiceKey]*Service),
		endpoints: make(map[ServiceKey][]Endpoint),
		frontends: make(map[FrontendID]ServiceKey),
		pending:   make(map[ServiceKey]*pending),
	}
}

// Service returns the desired service, if any.
func (t *ChangeTracker) Service(key ServiceKey) (*Service, bool) {
	s, ok := t.services[key]
	return s, ok
}

// Endpoints returns the desired endpoints of key.
func (t *ChangeTracker) Endpoints(key ServiceKey) []Endpoint { return t.endpoints[key] }

// Len returns the number of services.
func (t *ChangeTracker) Len() int { return len(t.services) }

// CheckUpsert validates svc, including that none of its frontends belongs
// to another service, without changing anything.
func (t *ChangeTracker) CheckUpsert(svc *Service) error {
	if err := svc.Validate(); err != nil {
		return err
	}
	for i, fe := range svc.Frontends {
		if owner, ok := t.frontends[fe.ID()]; ok && owner != svc.Key {
			return &ValidationError{Service: svc.Key, Field: fmt.Sprintf("frontends[%d]", i),
				Value: fe.String(), Reason: fmt.Sprintf("already used by service %q", owner)}
		}
	}
	return nil
}

// Upsert stores a copy of svc. It returns false, with no change recorded,
// when svc equals the stored service. svc must have passed CheckUpsert.
func (t *ChangeTracker) Upsert(svc *Service, now time.Time) bool {
	old, ok := t.services[svc.Key]
	if ok && old.Equal(svc) {
		return false
	}
	if ok {
		for _, fe := range old.Frontends {
			delete(t.frontends, fe.ID())
		}
	}
	svc = svc.Clone()
	t.services[svc.Key] = svc
	for _, fe := range svc.Frontends {
		t.frontends[fe.ID()] = svc.Key
	}
	t.mark(svc.Key, ServiceChange, now)
	return true
}

// Delete removes the service key (its endpoints stay stored until set to
// nil, as Kubernetes deletes Services and EndpointSlices separately). It
// returns false when there was no such service.
func (t *ChangeTracker) Delete(key ServiceKey, now time.Time) bool {
	old, ok := t.services[key]
	if !ok {
		return false
	}
	for _, fe := range old.Frontends {
		delete(t.frontends, fe.ID())
	}
	delete(t.services, key)
	t.mark(key, ServiceChange, now)
	return true
}

// SetEndpoints replaces the endpoints of key (nil deletes them). It returns
// false when they equal the stored ones. eps must have been validated.
func (t *ChangeTracker) SetEndpoints(key ServiceKey, eps []Endpoint, now time.Time) bool {
	if slices.Equal(t.endpoints[key], eps) {
		return false
	}
	if len(eps) == 0 {
		delete(t.endpoints, key)
	} else {
		t.endpoints[key] = slices.Clone(eps)
	}
	t.mark(key, EndpointsChange, now)
	return true
}

func (t *ChangeTracker) mark(key ServiceKey, kind ChangeKind, now time.Time) {
	p := t.pending[key]
	if p == nil {
		p = &pending{since: now}
		t.pending[key] = p
	}
	if kind == ServiceChange && !p.service {
		p.service = true
		t.pendingServices++
	}
	if kind == EndpointsChange && !p.endpoints {
		p.endpoints = true
		t.pendingEndpoints++
	}
}

// Pending returns how many services have pending service and endpoint changes.
func (t *ChangeTracker) Pending() (services, endpoints int) {
	return t.pendingServices, t.pendingEndpoints
}

// HasPending reports whether any change waits for a sync.
func (t *ChangeTracker) HasPending() bool { return len(t.pending) > 0 }

// OldestPending returns when the oldest waiting change was first seen.
func (t *ChangeTracker) OldestPending() (time.Time, bool) {
	var oldest time.Time
	for _, p := range t.pending {
		if oldest.IsZero() || p.since.Before(oldest) {
			oldest = p.since
		}
	}
	return oldest, !oldest.IsZero()
}

// take removes and returns the pending set, resetting the counters.
func (t *ChangeTracker) take() map[ServiceKey]*pending {
	p := t.pending
	t.pending = make(map[ServiceKey]*pending, len(p))
	t.pendingServices, t.pendingEndpoints = 0, 0
	return p
}

// restore puts back changes of a failed sync, keeping the earliest time.
func (t *ChangeTracker) restore(key ServiceKey, p *pending) {
	if cur := t.pending[key]; cur != nil && cur.since.Before(p.since) {
		p.since = cur.since
	}
	if cur := t.pending[key]; cur != nil {
		p.service = p.service || cur.service
		p.endpoints = p.endpoints || cur.endpoints
		if cur.service {
			t.pendingServices--
		}
		if cur.endpoints {
			t.pendingEndpoints--
		}
	}
	t.pending[key] = p
	if p.service {
		t.pendingServices++
	}
	if p.endpoints {
		t.pendingEndpoints++
	}
}

// state computes the selected state of key, or nil when it has no service.
func (t *ChangeTracker) state(key ServiceKey, nodeName string) *ServiceState {
	svc, ok := t.services[key]
	if !ok {
		return nil
	}
	return Select(svc, t.endpoints[key], nodeName)
}
