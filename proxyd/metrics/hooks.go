package metrics

import (
	"errors"
	"time"

	"github.com/lbkit/lbkit/lb"
)

// Hooks returns the engine hooks that feed these metrics; pass them in
// lb.Config.Hooks.
//
//   - SyncDone observes the sync in the overall and the full or partial
//     duration histogram, counts an error in lbkit_sync_errors_total (kind
//     "service" for lb.ServiceErrors, "datapath" for any other error), sets
//     the pending gauges and, unless the sync failed as a whole, the last
//     sync timestamp and the programmed services and backends gauges.
//   - ChangeQueued counts the change, sets the pending gauge of its kind and
//     the last queued timestamp.
//   - Programmed observes the network programming latency.
//   - Rejected counts the rejection by reason.
func (m *Metrics) Hooks() lb.Hooks {
	return lb.Hooks{
		ChangeQueued: m.changeQueued,
		SyncDone:     m.syncDone,
		Programmed:   m.programmed,
		Rejected:     m.rejectedInput,
	}
}

func (m *Metrics) changeQueued(kind lb.ChangeKind, pending int) {
	if kind == lb.EndpointsChange {
		m.endpointsTotal.Inc()
		m.endpointsPending.Set(float64(pending))
	} else {
		m.servicesTotal.Inc()
		m.servicesPending.Set(float64(pending))
	}
	m.lastQueued.SetToCurrentTime()
}

func (m *Metrics) syncDone(res lb.SyncResult) {
	seconds := max(res.Duration, 0).Seconds()
	m.syncDuration.Observe(seconds)
	if res.Full {
		m.syncFullDuration.Observe(seconds)
	} else {
		m.syncPartialDuration.Observe(seconds)
	}
	m.servicesPending.Set(float64(res.PendingServices))
	m.endpointsPending.Set(float64(res.PendingEndpoints))

	datapath := res.Datapath
	if datapath == "" {
		datapath = m.datapath
	}
	wholeFailure := false
	if res.Err != nil {
		kind := ErrorKindDatapath
		var svcErrs lb.ServiceErrors
		if errors.As(res.Err, &svcErrs) {
			kind = ErrorKindService
		} else {
			wholeFailure = true
		}
		m.syncErrors.WithLabelValues(datapath, kind).Inc()
	}
	if wholeFailure {
		return
	}
	end := time.Now()
	if !res.Start.IsZero() {
		end = res.Start.Add(res.Duration)
	}
	m.lastSync.Set(float64(end.UnixNano()) / 1e9)
	m.servicesProgrammed.WithLabelValues(datapath).Set(float64(res.Services))
	m.backendsProgrammed.WithLabelValues(datapath).Set(float64(res.Backends))
}

func (m *Metrics) programmed(_ lb.ServiceKey, latency time.Duration) {
	m.networkProgramming.Observe(max(latency, 0).Seconds())
}

func (m *Metrics) rejectedInput(_ lb.ServiceKey, err error) {
	m.rejected.WithLabelValues(rejectReason(err)).Inc()
}

// rejectReason maps a rejection error to a reason label value.
func rejectReason(err error) string {
	var verr *lb.ValidationError
	if errors.As(err, &verr) {
		return ReasonValidation
	}
	var uerr *lb.UnsupportedError
	if errors.As(err, &uerr) {
		return ReasonUnsupported
	}
	var cerr *lb.ConflictError
	if errors.As(err, &cerr) {
		return ReasonConflict
	}
	return ReasonOther
}
