package lb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Defaults for Config, as in kube-proxy.
const (
	DefaultMinSyncPeriod = time.Second
	DefaultSyncPeriod    = 30 * time.Second
	// DefaultInitialSyncTimeout is how long the first full sync waits for
	// registered sources that have not synced.
	DefaultInitialSyncTimeout = time.Minute
	// retryBase is the first retry delay after a failed sync; it doubles up
	// to SyncPeriod.
	retryBase = time.Second
)

// Config configures an Engine.
type Config struct {
	// NodeName is this node's name, for Local traffic policies and node
	// topology hints.
	NodeName string
	// NodeZone is this node's zone (its topology.kubernetes.io/zone
	// label), for zone topology hints; SetNodeZone changes it later.
	NodeZone string
	// MinSyncPeriod bounds how often syncs start, so bursts of changes
	// coalesce: at most two syncs start within any MinSyncPeriod (a burst
	// of two, as kube-proxy allows, so that a change just after a
	// periodic full sync does not wait for it). Zero syncs as soon as a
	// change is seen; DefaultMinSyncPeriod is what kube-proxy uses.
	MinSyncPeriod time.Duration
	// SyncPeriod is the interval of full resyncs, and the longest retry
	// delay after failures; zero means DefaultSyncPeriod.
	SyncPeriod time.Duration
	// InitialSyncTimeout bounds how long the first full sync waits for
	// registered sources (RegisterSource); zero means
	// DefaultInitialSyncTimeout, and a negative value waits for as long
	// as it takes (the datapath keeps whatever it held until then).
	InitialSyncTimeout time.Duration
	// Logger receives one line per sync and one per burst of repeated
	// errors; nil logs nothing.
	Logger *slog.Logger
	// Hooks receive metrics; any of them may be nil.
	Hooks Hooks
}

// Hooks let a caller record metrics without the engine importing a metrics
// library. They are called synchronously, some with the engine's lock held:
// they must be quick and must not call back into the engine.
type Hooks struct {
	// ChangeQueued is called for every accepted change, with the number of
	// services that have pending changes of that kind afterwards.
	ChangeQueued func(kind ChangeKind, pending int)
	// SyncDone is called after every sync attempt.
	SyncDone func(SyncResult)
	// Programmed is called for every service a sync programmed, with the
	// time from its first unsynced change to now (network programming
	// latency).
	Programmed func(key ServiceKey, latency time.Duration)
	// Rejected is called when Upsert or SetEndpoints refuses input.
	Rejected func(key ServiceKey, err error)
	// StatusChanged is called when a service's phase or error changes
	// (a source may turn it into an event for the service's owner).
	StatusChanged func(ServiceStatus)
}

// SyncResult describes one sync attempt.
type SyncResult struct {
	Datapath string
	Full     bool
	Changed  int // services in the ChangeSet
	Start    time.Time
	Duration time.Duration
	Err      error // nil, ServiceErrors, or a datapath failure
	// Services is the number of services in the snapshot.
	Services int
	// Backends is the number of backends over all frontends.
	Backends int
	// Pending service and endpoint changes left after the sync.
	PendingServices, PendingEndpoints int
}

// Engine keeps every input it is given and a status per service, decides
// what of it the datapath gets (validation, capabilities, frontend
// ownership), and syncs the datapath to it: it coalesces bursts of changes,
// resyncs fully every SyncPeriod and after any failure, retries with
// backoff and never runs two syncs at once. All methods are safe for
// concurrent use.
type Engine struct {
	cfg Config
	log *slog.Logger

	mu         sync.Mutex // guards the fields below
	dp         Datapath
	tracker    *tracker
	desired    *Snapshot // built incrementally from the tracker
	needFull   bool
	broken     bool                    // the last sync failed as a whole
	failed     map[ServiceKey]*pending // services the datapath failed to program
	inflight   time.Time               // oldest change a running sync programs
	retryAt    time.Time               // after a failure: earliest time to retry
	retryDelay time.Duration
	lastStart  time.Time
	prevStart  time.Time // start of the sync before lastStart's
	lastFull   time.Time
	status     Status
	adopted    bool // the current datapath was offered the existing state
	gate       gate
	retire     []Cleaner // datapaths to clean up after the next full sync
	failures   burst

	syncMu sync.Mutex // held for the duration of one sync
	kick   chan struct{}
}

// NewEngine returns an engine driving dp. Nothing is synced until Run or
// Flush is called.
func NewEngine(dp Datapath, cfg Config) (*Engine, error) {
	if dp == nil {
		return nil, errors.New("lb: NewEngine: nil datapath")
	}
	if cfg.MinSyncPeriod < 0 || cfg.SyncPeriod < 0 {
		return nil, fmt.Errorf("lb: NewEngine: negative sync period (min %s, full %s)", cfg.MinSyncPeriod, cfg.SyncPeriod)
	}
	if cfg.SyncPeriod == 0 {
		cfg.SyncPeriod = DefaultSyncPeriod
	}
	if cfg.InitialSyncTimeout == 0 {
		cfg.InitialSyncTimeout = DefaultInitialSyncTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{
		dp:       dp,
		cfg:      cfg,
		log:      cfg.Logger,
		tracker:  newTracker(dp.Capabilities(), dp.Name()),
		needFull: true,
		failed:   make(map[ServiceKey]*pending),
		kick:     make(chan struct{}, 1),
	}
	e.tracker.onStatus = cfg.Hooks.StatusChanged
	e.gate.timeout = cfg.InitialSyncTimeout
	return e, nil
}

// Datapath returns the datapath the engine drives now.
func (e *Engine) Datapath() Datapath {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.dp
}

// Upsert adds or replaces a service. The engine keeps it whatever happens:
// an invalid service, one the datapath cannot express, or one whose
// frontend another service holds gets a *ValidationError,
// *UnsupportedError or *ConflictError, and its status says so. The
// previous accepted version of an invalid or unsupported service stays in
// place; a service in conflict is programmed without the frontends it does
// not own, and gets them as soon as their owner releases them.
func (e *Engine) Upsert(svc *Service) error {
	if svc == nil {
		return errors.New("lb: Upsert: nil service")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.changed(svc.Key, ServiceChange, func(now time.Time) error { return e.tracker.upsert(svc, now) })
}

// Delete removes a service. Deleting an unknown service does nothing.
func (e *Engine) Delete(key ServiceKey) {
	e.mu.Lock()
	defer e.mu.Unlock()
	_ = e.changed(key, ServiceChange, func(now time.Time) error {
		e.tracker.remove(key, now)
		return nil
	})
}

// SetEndpoints replaces the endpoints of a service; nil removes them. The
// service need not exist yet. Invalid endpoints are refused as a whole with
// a *ValidationError (or *UnsupportedError) and the previous endpoints
// stay in place until valid ones come.
func (e *Engine) SetEndpoints(key ServiceKey, eps []Endpoint) error {
	return e.SetEndpointsTriggered(key, eps, time.Time{})
}

// SetEndpointsTriggered is SetEndpoints for a change that happened
// elsewhere at trigger (a Kubernetes EndpointSlice's
// last-change-trigger-time): the Programmed hook then measures the
// latency from trigger, not from the call, as kube-proxy's network
// programming latency does. A zero trigger, or one after now, counts from
// now. Health checks keep counting from the call, so a skewed clock
// elsewhere cannot make the engine look stuck.
func (e *Engine) SetEndpointsTriggered(key ServiceKey, eps []Endpoint, trigger time.Time) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.changed(key, EndpointsChange, func(now time.Time) error {
		err := e.tracker.setEndpoints(key, eps, now)
		if p := e.tracker.pending[key]; p != nil && !trigger.IsZero() && trigger.Before(now) &&
			(p.trigger.IsZero() || trigger.Before(p.trigger)) {
			p.trigger = trigger
		}
		return err
	})
}

// changed runs one tracker update of the given kind, reports refused input
// and wakes the sync loop if the desired state changed. Called with e.mu
// held.
func (e *Engine) changed(key ServiceKey, kind ChangeKind, update func(time.Time) error) error {
	marks := e.tracker.marks
	now := time.Now()
	err := update(now)
	if err != nil {
		e.log.Warn("refused", "service", string(key), "error", err)
		if h := e.cfg.Hooks.Rejected; h != nil {
			h(key, err)
		}
	}
	if e.tracker.marks == marks {
		return err
	}
	e.status.LastQueued = now
	if h := e.cfg.Hooks.ChangeQueued; h != nil {
		s, ep := e.tracker.Pending()
		n := s
		if kind == EndpointsChange {
			n = ep
		}
		h(kind, n)
	}
	e.wake()
	return err
}

// SetNodeZone changes this node's zone (a Node's zone label changed):
// every service is selected again, and those whose endpoints change are
// synced.
func (e *Engine) SetNodeZone(zone string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cfg.NodeZone == zone {
		return
	}
	e.cfg.NodeZone = zone
	now := time.Now()
	for key, r := range e.tracker.records {
		if r.acc != nil {
			e.tracker.mark(key, EndpointsChange, now)
		}
	}
	e.wake()
}

// RequestFullSync makes the next sync a full one.
func (e *Engine) RequestFullSync() {
	e.mu.Lock()
	e.needFull = true
	e.mu.Unlock()
	e.wake()
}

// Snapshot returns the desired state as of the last sync attempt.
func (e *Engine) Snapshot() *Snapshot {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.desired
}

// ServiceStatus returns the status of the service key, if the engine was
// given it.
func (e *Engine) ServiceStatus(key ServiceKey) (ServiceStatus, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.tracker.statusOf(key)
}

// ServiceStatuses returns the status of every service, by key.
func (e *Engine) ServiceStatuses() []ServiceStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]ServiceStatus, 0, e.tracker.services)
	for _, r := range e.tracker.records {
		if r.svc != nil {
			out = append(out, r.statusNow())
		}
	}
	slices.SortFunc(out, func(a, b ServiceStatus) int {
		if a.Service < b.Service {
			return -1
		}
		if a.Service > b.Service {
			return 1
		}
		return 0
	})
	return out
}

// FrontendOwner returns the service that holds the frontend id in the
// desired state ("" if none) and the services waiting for it, oldest
// first.
func (e *Engine) FrontendOwner(id FrontendID) (owner ServiceKey, waiting []ServiceKey) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.tracker.owner(id)
}

// Status returns the engine's health-relevant state.
func (e *Engine) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.status
	st.OldestPending = e.tracker.oldestPending()
	if !e.inflight.IsZero() && (st.OldestPending.IsZero() || e.inflight.Before(st.OldestPending)) {
		st.OldestPending = e.inflight
	}
	st.Services = e.tracker.services
	st.Phases = make(map[Phase]int, numPhases)
	for i, p := range Phases() {
		if n := e.tracker.phases[i]; n > 0 {
			st.Phases[p] = n
		}
	}
	st.WaitingFor = e.gate.waiting()
	st.Datapath = e.dp.Name()
	return st
}

// Cleanup removes everything the datapath installed.
func (e *Engine) Cleanup(ctx context.Context) error {
	e.syncMu.Lock()
	defer e.syncMu.Unlock()
	e.mu.Lock()
	dp := e.dp
	e.mu.Unlock()
	err := dp.Cleanup(ctx)
	e.mu.Lock()
	e.needFull = true
	e.mu.Unlock()
	return err
}

func (e *Engine) wake() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}
