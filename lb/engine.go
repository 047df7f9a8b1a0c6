package lb

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Defaults for Config, as in kube-proxy.
const (
	DefaultMinSyncPeriod = time.Second
	DefaultSyncPeriod    = 30 * time.Second
	// retryBase is the first retry delay after a failed sync; it doubles up
	// to SyncPeriod.
	retryBase = time.Second
)

// Config configures an Engine.
type Config struct {
	// NodeName is this node's name, for Local traffic policies.
	NodeName string
	// MinSyncPeriod is the least time between the starts of two syncs, so
	// bursts of changes coalesce into one sync. Zero syncs as soon as a
	// change is seen; DefaultMinSyncPeriod is what kube-proxy uses.
	MinSyncPeriod time.Duration
	// SyncPeriod is the interval of full resyncs; zero means
	// DefaultSyncPeriod.
	SyncPeriod time.Duration
	// Logger receives one line per sync; nil logs nothing.
	Logger *zap.Logger
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
	// Rejected is called when Upsert or SetEndpoints rejects input.
	Rejected func(key ServiceKey, err error)
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

// Status is a point-in-time view of the engine for health checks.
type Status struct {
	LastSync      time.Time // end of the last successful sync; zero if none
	LastQueued    time.Time // when the last change was accepted
	OldestPending time.Time // first-seen time of the oldest unsynced change; zero if none
	LastError     error     // error of the last sync, nil if it succeeded
	Services      int
}

// Engine keeps the desired state, and syncs a Datapath to it: it coalesces
// bursts of changes, resyncs fully every SyncPeriod and after any failure,
// retries with backoff and never runs two syncs at once. All methods are
// safe for concurrent use.
type Engine struct {
	dp   Datapath
	caps Capabilities
	cfg  Config
	log  *zap.Logger

	mu         sync.Mutex // guards the fields below
	tracker    *ChangeTracker
	desired    *Snapshot // built incrementally from the tracker
	needFull   bool
	broken     bool                    // the last sync failed as a whole
	failed     map[ServiceKey]*pending // services the datapath failed to program
	retryAt    time.Time               // after a failure: earliest time to retry
	retryDelay time.Duration
	lastStart  time.Time
	lastFull   time.Time
	status     Status
	adopted    bool

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
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return &Engine{
		dp:       dp,
		caps:     dp.Capabilities(),
		cfg:      cfg,
		log:      cfg.Logger.With(zap.String("datapath", dp.Name())),
		tracker:  NewChangeTracker(),
		needFull: true,
		failed:   make(map[ServiceKey]*pending),
		kick:     make(chan struct{}, 1),
	}, nil
}

// Datapath returns the datapath the engine drives.
func (e *Engine) Datapath() Datapath { return e.dp }

// Upsert adds or replaces a service. An invalid service, or one the datapath
// cannot express, is rejected with a *ValidationError or *UnsupportedError
// and the previous version of the service (if any) stays in place.
func (e *Engine) Upsert(svc *Service) error {
	if svc == nil {
		return errors.New("lb: Upsert: nil service")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	err := e.tracker.CheckUpsert(svc)
	if err == nil {
		err = CheckCapabilities(e.caps, e.dp.Name(), svc, e.tracker.Endpoints(svc.Key))
	}
	if err != nil {
		e.reject(svc.Key, err)
		return err
	}
	if e.tracker.Upsert(svc, time.Now()) {
		e.queued(ServiceChange)
	}
	return nil
}

// Delete removes a service. Deleting an unknown service does nothing.
func (e *Engine) Delete(key ServiceKey) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.tracker.Delete(key, time.Now()) {
		e.queued(ServiceChange)
	}
}

// SetEndpoints replaces the endpoints of a service; nil removes them. The
// service need not exist yet. Invalid endpoints are rejected as a whole with
// a *ValidationError and the previous endpoints stay in place.
func (e *Engine) SetEndpoints(key ServiceKey, eps []Endpoint) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	svc, _ := e.tracker.Service(key)
	err := ValidateEndpoints(key, svc, eps)
	if err == nil && svc != nil {
		err = CheckCapabilities(e.caps, e.dp.Name(), svc, eps)
	}
	if err != nil {
		e.reject(key, err)
		return err
	}
	if e.tracker.SetEndpoints(key, eps, time.Now()) {
		e.queued(EndpointsChange)
	}
	return nil
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

// Status returns the engine's health-relevant state.
func (e *Engine) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.status
	st.OldestPending, _ = e.tracker.OldestPending()
	st.Services = e.tracker.Len()
	return st
}

// Cleanup removes everything the datapath installed.
func (e *Engine) Cleanup(ctx context.Context) error {
	e.syncMu.Lock()
	defer e.syncMu.Unlock()
	err := e.dp.Cleanup(ctx)
	e.mu.Lock()
	e.needFull = true
	e.mu.Unlock()
	return err
}

// called with e.mu held.
func (e *Engine) reject(key ServiceKey, err error) {
	e.log.Warn("rejected", zap.String("service", string(key)), zap.Error(err))
	if h := e.cfg.Hooks.Rejected; h != nil {
		h(key, err)
	}
}

// called with e.mu held.
func (e *Engine) queued(kind ChangeKind) {
	e.status.LastQueued = time.Now()
	if h := e.cfg.Hooks.ChangeQueued; h != nil {
		s, ep := e.tracker.Pending()
		n := s
		if kind == EndpointsChange {
			n = ep
		}
		h(kind, n)
	}
	e.wake()
}

func (e *Engine) wake() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}
