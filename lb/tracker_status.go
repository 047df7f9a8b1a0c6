package lb

import (
	"errors"
	"time"
)

// refreshStatus recomputes r's status, keeps the phase counts in step and
// reports a change to onStatus.
func (t *tracker) refreshStatus(r *record, now time.Time) {
	old := r.status
	var st ServiceStatus
	if r.svc != nil {
		st = ServiceStatus{Service: r.key}
		switch {
		case r.svcErr != nil:
			st.Phase, st.Err = inputPhase(r.svcErr), r.svcErr
		case r.epsErr != nil:
			st.Phase, st.Err = inputPhase(r.epsErr), r.epsErr
		case r.conflict != nil:
			st.Phase, st.Err = PhaseConflict, r.conflict
		case r.syncErr != nil:
			st.Phase, st.Err = PhaseFailed, r.syncErr
		case r.programmed:
			st.Phase = PhaseProgrammed
		default:
			st.Phase = PhasePending
		}
		st.Previous = (r.svcErr != nil && r.acc != nil) || (r.epsErr != nil && r.accEps != nil)
		st.Since = old.Since
		if st.Phase != old.Phase {
			st.Since = now
		}
	}
	r.status = st
	if old.Phase != st.Phase {
		if old.Phase != "" {
			t.phases[phaseIndex(old.Phase)]--
		}
		if st.Phase != "" {
			t.phases[phaseIndex(st.Phase)]++
		}
	}
	if t.onStatus != nil && st.Phase != "" && (old.Phase != st.Phase || errString(old.Err) != errString(st.Err)) {
		t.onStatus(st)
	}
}

// inputPhase is the phase of a refused input: invalid or unsupported.
func inputPhase(err error) Phase {
	var ue *UnsupportedError
	if errors.As(err, &ue) {
		return PhaseUnsupported
	}
	return PhaseInvalid
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// synced records the outcome of a sync for key: err is the datapath's
// error for it, nil when it was programmed.
func (t *tracker) synced(key ServiceKey, err error, now time.Time) {
	r := t.records[key]
	if r == nil {
		return
	}
	r.syncErr = err
	r.programmed = err == nil && t.pending[key] == nil
	t.refreshStatus(r, now)
}

// statusOf returns the status of key, if the engine was given a service
// of that key.
func (t *tracker) statusOf(key ServiceKey) (ServiceStatus, bool) {
	r := t.records[key]
	if r == nil || r.svc == nil {
		return ServiceStatus{}, false
	}
	return r.statusNow(), true
}

// statusNow is r's status with the frontends it holds filled in (kept out
// of the stored status, so that a change costs no allocation for it).
func (r *record) statusNow() ServiceStatus {
	st := r.status
	if r.acc != nil {
		st.Frontends = make([]FrontendID, len(r.acc.Frontends))
		for i, fe := range r.acc.Frontends {
			st.Frontends[i] = fe.ID()
		}
	}
	return st
}

// owner returns the service that holds id in the desired state, and the
// services waiting for it, oldest first.
func (t *tracker) owner(id FrontendID) (ServiceKey, []ServiceKey) {
	var waiting []ServiceKey
	for _, r := range t.waitingFor(id) {
		waiting = append(waiting, r.key)
	}
	return t.owners[id], waiting
}
