package lb

import (
	"net/netip"
	"time"
)

// Backend is one endpoint chosen for a frontend, as a datapath must program it.
type Backend struct {
	Addr   netip.AddrPort `json:"addr"`
	Weight uint32         `json:"weight"`
	// Terminating is set when the backend is only used because no endpoint
	// is ready (kube-proxy's terminating fallback).
	Terminating bool   `json:"terminating,omitempty"`
	NodeName    string `json:"nodeName,omitempty"`
	Zone        string `json:"zone,omitempty"`
}

// FrontendState is a frontend with the exact backends it balances over, in a
// stable order (sorted by address). An empty Backends means "no endpoints":
// the datapath rejects or drops the traffic.
type FrontendState struct {
	Frontend
	Backends []Backend
}

// ServiceState is the selected, immutable state of one service. Datapaths must
// not modify it.
type ServiceState struct {
	Service *Service
	// Frontends mirrors Service.Frontends, each with its backends.
	Frontends []FrontendState
	// Endpoints are all the endpoints the service has, before selection.
	Endpoints []Endpoint
}

// Key returns the service key.
func (s *ServiceState) Key() ServiceKey { return s.Service.Key }

// Scheduler returns the effective scheduler.
func (s *ServiceState) Scheduler() Scheduler { return s.Service.EffectiveScheduler() }

// AffinityTimeout returns the ClientIP affinity timeout, zero for none.
func (s *ServiceState) AffinityTimeout() time.Duration { return s.Service.AffinityTimeout() }

// Snapshot is the immutable desired state after endpoint selection. It is a
// persistent map: snapshots share every unchanged ServiceState, so building
// one after a change costs O(changed services × log N), not O(N).
type Snapshot struct {
	root     *pnode
	n        int
	backends int
}

// Service returns the state of one service.
func (s *Snapshot) Service(key ServiceKey) (*ServiceState, bool) {
	if s == nil {
		return nil, false
	}
	v := s.root.get(hashKey(key), key, 0)
	return v, v != nil
}

// Len returns the number of services.
func (s *Snapshot) Len() int {
	if s == nil {
		return 0
	}
	return s.n
}

// Backends returns the number of backends over all frontends of all services.
func (s *Snapshot) Backends() int {
	if s == nil {
		return 0
	}
	return s.backends
}

// Range calls fn for every service, in an order that is fixed for a given set
// of keys, until fn returns false.
func (s *Snapshot) Range(fn func(*ServiceState) bool) {
	if s == nil {
		return
	}
	s.root.each(fn)
}

// With returns a new snapshot that holds st (replacing any state with the
// same key); s is unchanged. Datapath tests use it to build snapshots by hand.
func (s *Snapshot) With(st *ServiceState) *Snapshot { return s.with(st.Key(), st) }

// Without returns a new snapshot without key; s is unchanged.
func (s *Snapshot) Without(key ServiceKey) *Snapshot { return s.with(key, nil) }

// with returns a snapshot with st set (or key removed when st is nil).
func (s *Snapshot) with(key ServiceKey, st *ServiceState) *Snapshot {
	var root *pnode
	var n, backends int
	if s != nil {
		root, n, backends = s.root, s.n, s.backends
	}
	h := hashKey(key)
	backends -= root.get(h, key, 0).countBackends()
	backends += st.countBackends()
	root, delta := root.set(h, key, st, 0, nil)
	return &Snapshot{root: root, n: n + delta, backends: backends}
}

// snapshotBuilder applies many updates to a snapshot, mutating the nodes it
// created itself instead of copying them for every update. The snapshot it
// started from is never modified.
type snapshotBuilder struct {
	root     *pnode
	n        int
	backends int
	tok      *editToken
}

func (s *Snapshot) builder() *snapshotBuilder {
	b := &snapshotBuilder{tok: new(editToken)}
	if s != nil {
		b.root, b.n, b.backends = s.root, s.n, s.backends
	}
	return b
}

func (b *snapshotBuilder) set(key ServiceKey, st *ServiceState) {
	h := hashKey(key)
	b.backends += st.countBackends() - b.root.get(h, key, 0).countBackends()
	var delta int
	b.root, delta = b.root.set(h, key, st, 0, b.tok)
	b.n += delta
}

// snapshot ends the batch: the result is immutable.
func (b *snapshotBuilder) snapshot() *Snapshot {
	b.tok = nil
	return &Snapshot{root: b.root, n: b.n, backends: b.backends}
}

func (s *ServiceState) countBackends() int {
	if s == nil {
		return 0
	}
	n := 0
	for _, fe := range s.Frontends {
		n += len(fe.Backends)
	}
	return n
}
