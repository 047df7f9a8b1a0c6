package kube

import (
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/lbkit/lbkit/lb"
)

// EventRecorder records Kubernetes Events; k8s.io/client-go/tools/events'
// EventRecorder implements it.
type EventRecorder interface {
	Eventf(regarding runtime.Object, related runtime.Object, eventtype, reason, action, note string, args ...any)
}

// Event reasons the source records on a Service.
const (
	ReasonInvalid     = "LbkitInvalid"
	ReasonUnsupported = "LbkitUnsupported"
	ReasonConflict    = "LbkitFrontendConflict"
	ReasonFailed      = "LbkitProgrammingFailed"
	ReasonProgrammed  = "LbkitProgrammed"
)

// StatusChanged turns a change of a service's status in the engine into
// an Event on its Service: a Warning naming why it is not programmed as
// given, and a Normal event when it is programmed again after one. Wire
// it to lb.Hooks.StatusChanged. The engine calls it with its lock held,
// while the source calls the engine with its own lock held: so it only
// queues the change, and Run records it.
func (s *Source) StatusChanged(st lb.ServiceStatus) {
	if s.opts.Events == nil {
		return
	}
	s.statusMu.Lock()
	s.statusQ = append(s.statusQ, st)
	s.statusMu.Unlock()
	select {
	case s.statusKick <- struct{}{}:
	default:
	}
}

// recordStatuses records the queued status changes until ctx is done.
func (s *Source) recordStatuses(done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case <-s.statusKick:
		}
		s.statusMu.Lock()
		q := s.statusQ
		s.statusQ = nil
		s.statusMu.Unlock()
		for _, st := range q {
			s.recordStatus(st)
		}
	}
}

// recordStatus records the Event of one status change, if any.
func (s *Source) recordStatus(st lb.ServiceStatus) {
	rec := s.opts.Events
	s.mu.Lock()
	nn, ok := s.state.keys[st.Service]
	var e *serviceEntry
	if ok {
		e = s.state.services[nn]
	}
	wasBad := false
	if e != nil {
		wasBad = e.bad[st.Service]
		switch {
		case st.Err != nil && e.bad == nil:
			// Allocated only for services that went wrong: at 10k
			// services a map each was megabytes for nothing.
			e.bad = map[lb.ServiceKey]bool{st.Service: true}
		case st.Err != nil:
			e.bad[st.Service] = true
		case wasBad:
			delete(e.bad, st.Service)
		}
	}
	s.mu.Unlock()
	if e == nil {
		return
	}
	ref := e.ref.DeepCopy()
	port := string(st.Service)
	switch {
	case st.Err != nil:
		reason := map[lb.Phase]string{
			lb.PhaseInvalid: ReasonInvalid, lb.PhaseUnsupported: ReasonUnsupported,
			lb.PhaseConflict: ReasonConflict, lb.PhaseFailed: ReasonFailed,
		}[st.Phase]
		if reason == "" {
			reason = ReasonFailed
		}
		note := "%s is not programmed as given: %v"
		if st.Previous {
			note = "%s is not programmed as given (its previous version still is): %v"
		}
		rec.Eventf(ref, nil, "Warning", reason, "Sync", note, port, st.Err)
	case wasBad && st.Phase == lb.PhaseProgrammed:
		rec.Eventf(ref, nil, "Normal", ReasonProgrammed, "Sync", "%s is programmed", port)
	}
}
