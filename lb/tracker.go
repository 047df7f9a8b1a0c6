package lb

import (
	"cmp"
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
	since time.Time // first time a change of this service was seen
	// trigger is when the earliest change began elsewhere, if a source
	// said (SetEndpointsTriggered); zero otherwise.
	trigger   time.Time
	service   bool
	endpoints bool
}

// tracker holds every input the engine was given, decides what of it is
// accepted into the desired state (validation, capabilities, frontend
// ownership), keeps a status per service and the set of keys whose accepted
// state changed since the last successful sync. It is not safe for
// concurrent use; the Engine serializes access.
//
// Every operation costs O(size of the services it touches): nothing scans
// all services, except setCapabilities (a datapath handoff).
type tracker struct {
	caps     Capabilities
	datapath string
	capsGen  uint64 // counts capability changes, so records can cache their check

	records map[ServiceKey]*record
	// owners maps every frontend in the desired state to its service.
	owners map[FrontendID]ServiceKey
	// waiters maps a frontend to the services that ask for it while
	// another owns it.
	waiters map[FrontendID]map[ServiceKey]struct{}
	seq     uint64

	pending map[ServiceKey]*pending
	marks   uint64 // counts calls of mark, so callers can tell a change happened
	// counts of pending keys by kind, kept in step with pending.
	pendingServices, pendingEndpoints int

	services int            // records with a service input
	phases   [numPhases]int // services by phase, indexed by phaseIndex
	// onStatus is called when a service's status changes.
	onStatus func(ServiceStatus)
}

// record is everything the engine knows about one service key.
type record struct {
	key ServiceKey
	seq uint64 // order of first appearance; the oldest waiter wins a frontend

	// The latest inputs, kept even when refused.
	svc *Service // nil: no service (deleted, or only endpoints known)
	eps []Endpoint

	// The last inputs that passed validation and capabilities.
	good    *Service
	goodEps []Endpoint

	// What the desired state holds: good, without frontends others own.
	acc    *Service
	accEps []Endpoint

	invalid    error        // Validate's verdict on svc, computed once per input
	capsErr    error        // checkServiceCaps's verdict on svc ...
	capsGen    uint64       // ... under the tracker's capsGen (0: not checked)
	svcErr     error        // why the latest service input was refused
	epsErr     error        // why the latest endpoints were refused
	conflict   error        // the first frontend conflict
	waiting    []FrontendID // frontends asked for and owned by another
	syncErr    error        // the datapath's error from the last sync
	programmed bool         // the accepted state is programmed
	status     ServiceStatus
}

func newTracker(caps Capabilities, datapath string) *tracker {
	return &tracker{
		caps: caps, datapath: datapath, capsGen: 1,
		records: make(map[ServiceKey]*record),
		owners:  make(map[FrontendID]ServiceKey),
		waiters: make(map[FrontendID]map[ServiceKey]struct{}),
		pending: make(map[ServiceKey]*pending),
	}
}

func (t *tracker) record(key ServiceKey) *record {
	r := t.records[key]
	if r == nil {
		t.seq++
		r = &record{key: key, seq: t.seq}
		t.records[key] = r
	}
	return r
}

// upsert stores svc as the latest input of its key and re-evaluates. It
// returns the error that refused (part of) it, if any.
func (t *tracker) upsert(svc *Service, now time.Time) error {
	r := t.record(svc.Key)
	if r.svc != nil && r.svc.Equal(svc) {
		return r.serviceError()
	}
	if r.svc == nil {
		t.services++
	}
	r.svc = svc.Clone()
	r.invalid, r.capsGen = r.svc.Validate(), 0
	t.evaluate(r, now)
	return r.serviceError()
}

// remove deletes the service input of key (its endpoints stay stored until
// set to nil, as Kubernetes deletes Services and EndpointSlices
// separately). It reports whether there was a service.
func (t *tracker) remove(key ServiceKey, now time.Time) bool {
	r := t.records[key]
	if r == nil || r.svc == nil {
		return false
	}
	r.svc = nil
	t.services--
	t.evaluate(r, now)
	return true
}

// setEndpoints stores eps as the latest endpoints of key (nil deletes them)
// and re-evaluates. It returns the error that refused them, if any.
func (t *tracker) setEndpoints(key ServiceKey, eps []Endpoint, now time.Time) error {
	r := t.records[key]
	if r == nil && len(eps) == 0 {
		return nil
	}
	r = t.record(key)
	if slices.Equal(r.eps, eps) {
		return r.endpointsError()
	}
	r.eps = slices.Clone(eps)
	if len(eps) == 0 {
		r.eps = nil
	}
	t.evaluate(r, now)
	return r.endpointsError()
}

// setCapabilities re-evaluates every service for another datapath.
func (t *tracker) setCapabilities(caps Capabilities, datapath string, now time.Time) {
	t.caps, t.datapath = caps, datapath
	t.capsGen++
	keys := make([]*record, 0, len(t.records))
	for _, r := range t.records {
		keys = append(keys, r)
	}
	slices.SortFunc(keys, func(a, b *record) int { return cmp.Compare(a.seq, b.seq) })
	for _, r := range keys {
		t.evaluate(r, now)
	}
}

// evaluate recomputes what of r's inputs is accepted, updates ownership and
// pending changes, then re-evaluates the services waiting for frontends r
// released, oldest first.
func (t *tracker) evaluate(r *record, now time.Time) {
	var work []*record // allocated only when a frontend is released
	for {
		for _, id := range t.evaluateOne(r, now) {
			work = append(work, t.waitingFor(id)...)
		}
		if len(work) == 0 {
			return
		}
		r, work = work[0], work[1:]
	}
}

// waitingFor returns the services waiting for id, oldest first.
func (t *tracker) waitingFor(id FrontendID) []*record {
	var out []*record
	for key := range t.waiters[id] {
		out = append(out, t.records[key])
	}
	slices.SortFunc(out, func(a, b *record) int { return cmp.Compare(a.seq, b.seq) })
	return out
}

// evaluateOne re-evaluates one record and returns the frontends it released.
func (t *tracker) evaluateOne(r *record, now time.Time) []FrontendID {
	t.refreshGood(r)

	// Frontends: those of good that nobody else owns.
	var acc *Service
	var waiting []FrontendID
	r.conflict = nil
	if r.good != nil {
		acc = r.good
		for i, fe := range r.good.Frontends {
			owner, ok := t.owners[fe.ID()]
			if !ok || owner == r.key {
				continue
			}
			waiting = append(waiting, fe.ID())
			if r.conflict == nil {
				r.conflict = &ConflictError{Service: r.key, Field: fmt.Sprintf("frontends[%d]", i), Frontend: fe.ID(), Owner: owner}
			}
		}
		if len(waiting) > 0 {
			acc = withoutWaiting(r.good, waiting)
		}
	}
	t.setWaiting(r, waiting)
	var accEps []Endpoint
	if acc != nil {
		accEps = r.goodEps
	}

	// Ownership and pending changes.
	var released []FrontendID
	svcChanged := !sameService(r.acc, acc)
	if svcChanged {
		if r.acc != nil {
			for _, fe := range r.acc.Frontends {
				if acc == nil || !slices.ContainsFunc(acc.Frontends, func(n Frontend) bool { return n.ID() == fe.ID() }) {
					delete(t.owners, fe.ID())
					released = append(released, fe.ID())
				}
			}
		}
		if acc != nil {
			for _, fe := range acc.Frontends {
				t.owners[fe.ID()] = r.key
			}
		}
		r.acc = acc
		t.mark(r.key, ServiceChange, now)
	}
	if !slices.Equal(r.accEps, accEps) {
		r.accEps = accEps
		t.mark(r.key, EndpointsChange, now)
	}
	t.refreshStatus(r, now)
	if r.svc == nil && r.eps == nil && r.acc == nil {
		delete(t.records, r.key)
	}
	return released
}

// refreshGood updates the last good inputs of r under the current
// capabilities: the latest input if it passes, else the earlier good one
// if it still passes, else none.
func (t *tracker) refreshGood(r *record) {
	r.svcErr, r.epsErr = nil, nil
	if r.svc == nil {
		r.good = nil
	} else {
		if r.capsGen != t.capsGen {
			r.capsErr, r.capsGen = checkServiceCaps(t.caps, t.datapath, r.svc), t.capsGen
		}
		err := r.invalid
		if err == nil {
			err = r.capsErr
		}
		if err == nil {
			r.good = r.svc
		} else {
			r.svcErr = err
			if r.good != nil && checkServiceCaps(t.caps, t.datapath, r.good) != nil {
				r.good = nil
			}
		}
	}
	if r.good == nil {
		// Endpoints without a service are checked on their own; the
		// family check waits for the service.
		r.epsErr = ValidateEndpoints(r.key, nil, r.eps)
		r.goodEps = nil
		return
	}
	r.epsErr = ValidateEndpoints(r.key, r.good, r.eps)
	if r.epsErr == nil {
		r.epsErr = checkEndpointCaps(t.caps, t.datapath, r.key, r.eps)
	}
	if r.epsErr == nil {
		r.goodEps = r.eps
		return
	}
	if ValidateEndpoints(r.key, r.good, r.goodEps) != nil || checkEndpointCaps(t.caps, t.datapath, r.key, r.goodEps) != nil {
		r.goodEps = nil
	}
}

// withoutWaiting returns a copy of svc without the frontends in waiting,
// or nil when none is left.
func withoutWaiting(svc *Service, waiting []FrontendID) *Service {
	kept := make([]Frontend, 0, len(svc.Frontends))
	for _, fe := range svc.Frontends {
		if !slices.Contains(waiting, fe.ID()) {
			kept = append(kept, fe)
		}
	}
	if len(kept) == 0 {
		return nil
	}
	c := svc.Clone()
	c.Frontends = kept
	return c
}

// setWaiting records the frontends r waits for.
func (t *tracker) setWaiting(r *record, ids []FrontendID) {
	for _, id := range r.waiting {
		if w := t.waiters[id]; w != nil {
			delete(w, r.key)
			if len(w) == 0 {
				delete(t.waiters, id)
			}
		}
	}
	r.waiting = ids
	for _, id := range ids {
		w := t.waiters[id]
		if w == nil {
			w = make(map[ServiceKey]struct{})
			t.waiters[id] = w
		}
		w[r.key] = struct{}{}
	}
}

// sameService reports whether a and b are both nil or equal.
func sameService(a, b *Service) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a == b || a.Equal(b)
}

// serviceError is the error that refused r's latest service, or the
// first frontend conflict.
func (r *record) serviceError() error {
	if r.svcErr != nil {
		return r.svcErr
	}
	return r.conflict
}

// endpointsError is the error that refused r's latest endpoints.
func (r *record) endpointsError() error { return r.epsErr }

func (t *tracker) mark(key ServiceKey, kind ChangeKind, now time.Time) {
	t.marks++
	p := t.pending[key]
	if p == nil {
		p = &pending{since: now}
		t.pending[key] = p
	}
	if r := t.records[key]; r != nil {
		r.programmed = false
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
func (t *tracker) Pending() (services, endpoints int) {
	return t.pendingServices, t.pendingEndpoints
}

// hasPending reports whether any change waits for a sync.
func (t *tracker) hasPending() bool { return len(t.pending) > 0 }

// oldestPending returns when the oldest waiting change was first seen.
func (t *tracker) oldestPending() time.Time {
	var oldest time.Time
	for _, p := range t.pending {
		if oldest.IsZero() || p.since.Before(oldest) {
			oldest = p.since
		}
	}
	return oldest
}

// take removes and returns the pending set, resetting the counters.
func (t *tracker) take() map[ServiceKey]*pending {
	p := t.pending
	t.pending = make(map[ServiceKey]*pending, len(p))
	t.pendingServices, t.pendingEndpoints = 0, 0
	return p
}

// restore puts back changes of a failed sync, keeping the earliest time.
func (t *tracker) restore(key ServiceKey, p *pending) {
	cur := t.pending[key]
	if cur != nil {
		if cur.since.Before(p.since) {
			p.since = cur.since
		}
		if !cur.trigger.IsZero() && (p.trigger.IsZero() || cur.trigger.Before(p.trigger)) {
			p.trigger = cur.trigger
		}
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

// state computes the selected state of key, or nil when nothing of it is
// accepted.
func (t *tracker) state(key ServiceKey, node Node) *ServiceState {
	r := t.records[key]
	if r == nil || r.acc == nil {
		return nil
	}
	return Select(r.acc, r.accEps, node)
}

// latencyStart is when the network programming latency of p starts: the
// trigger a source gave, else when the engine first saw the change.
func (p *pending) latencyStart() time.Time {
	if !p.trigger.IsZero() && p.trigger.Before(p.since) {
		return p.trigger
	}
	return p.since
}
