package lb

import "time"

// Phase is where a service stands on its way into the datapath.
type Phase string

// Phases of a service. Every service the engine was given is in exactly one.
const (
	// PhaseProgrammed: the datapath holds the service as given.
	PhaseProgrammed Phase = "programmed"
	// PhasePending: accepted, waiting for (or in) a sync.
	PhasePending Phase = "pending"
	// PhaseInvalid: the latest input failed validation (*ValidationError).
	PhaseInvalid Phase = "invalid"
	// PhaseUnsupported: the datapath cannot express it (*UnsupportedError).
	PhaseUnsupported Phase = "unsupported"
	// PhaseConflict: a frontend belongs to another service (*ConflictError).
	PhaseConflict Phase = "conflict"
	// PhaseFailed: the datapath failed to program it; it is retried.
	PhaseFailed Phase = "failed"
)

// Phases lists every phase, in a stable order (for metrics).
func Phases() []Phase {
	return []Phase{PhaseProgrammed, PhasePending, PhaseInvalid, PhaseUnsupported, PhaseConflict, PhaseFailed}
}

const numPhases = 6

// phaseIndex is p's position in Phases (counting without a map lookup).
func phaseIndex(p Phase) int {
	switch p {
	case PhaseProgrammed:
		return 0
	case PhasePending:
		return 1
	case PhaseInvalid:
		return 2
	case PhaseUnsupported:
		return 3
	case PhaseConflict:
		return 4
	}
	return 5
}

// ServiceStatus is the engine's verdict on one service.
type ServiceStatus struct {
	Service ServiceKey
	Phase   Phase
	// Err says why the service is not programmed as given: a
	// *ValidationError, *UnsupportedError, *ConflictError or the datapath's
	// error; nil when programmed or pending.
	Err error
	// Previous is set when the latest input was refused (invalid or
	// unsupported) and an earlier accepted version is still in the desired
	// state, so traffic keeps flowing as before.
	Previous bool
	// Frontends are the frontends the service holds in the desired state
	// (fewer than it asked for when some are in conflict).
	Frontends []FrontendID
	// Since is when the service entered Phase.
	Since time.Time
}

// Status is a point-in-time view of the engine for health checks.
type Status struct {
	// LastSync is the end of the last successful sync; zero if none.
	LastSync time.Time
	// LastFullSync is the end of the last successful full sync; zero until
	// the first one, before which nothing stale has been pruned and the
	// datapath may not be programmed yet.
	LastFullSync time.Time
	// LastQueued is when the last change was accepted.
	LastQueued time.Time
	// OldestPending is the first-seen time of the oldest change not yet
	// programmed, including changes a sync is programming right now and
	// services waiting for a retry; zero if none.
	OldestPending time.Time
	// FailingSince is the start of the first of the syncs that failed in a
	// row up to now; zero when the last sync succeeded.
	FailingSince time.Time
	// LastError is the error of the last sync, nil if it succeeded.
	LastError error
	// WaitingFor names the registered sources that have not synced yet.
	WaitingFor []string
	// Services is the number of services the engine was given.
	Services int
	// Phases counts services by phase.
	Phases map[Phase]int
	// Datapath is the name of the datapath the engine drives.
	Datapath string
}
