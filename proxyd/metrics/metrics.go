// Package metrics exports proxyd's Prometheus metrics.
//
// The kubeproxy_* metrics carry the names, types and buckets kube-proxy
// uses, so dashboards and alerts written for kube-proxy keep working when
// proxyd replaces it. The lbkit_* metrics add what only lbkit knows: sync
// errors by datapath, rejected services, configuration reload errors and the
// size of the programmed state.
//
// A Metrics owns its own registry (nothing is registered globally) and is fed
// by the engine through the lb.Hooks that Hooks returns.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Label values of lbkit_sync_errors_total's "kind".
const (
	// ErrorKindService counts syncs where the datapath failed to program
	// some services (lb.ServiceErrors) but programmed everything else.
	ErrorKindService = "service"
	// ErrorKindDatapath counts syncs that failed as a whole.
	ErrorKindDatapath = "datapath"
)

// Label values of lbkit_services_rejected_total's "reason".
const (
	// ReasonValidation: the input failed validation (*lb.ValidationError).
	ReasonValidation = "validation"
	// ReasonUnsupported: the datapath cannot express the service
	// (*lb.UnsupportedError).
	ReasonUnsupported = "unsupported"
	// ReasonConflict: a frontend of the service belongs to another
	// service (*lb.ConflictError).
	ReasonConflict = "conflict"
	// ReasonOther: any other rejection.
	ReasonOther = "other"
)

// Metrics holds every metric proxyd exports, in a registry of its own. All
// methods are safe for concurrent use.
type Metrics struct {
	datapath string
	reg      *prometheus.Registry
	handler  http.Handler

	syncDuration        prometheus.Histogram
	syncFullDuration    prometheus.Histogram
	syncPartialDuration prometheus.Histogram
	networkProgramming  prometheus.Histogram
	lastSync            prometheus.Gauge
	lastQueued          prometheus.Gauge
	servicesPending     prometheus.Gauge
	endpointsPending    prometheus.Gauge
	servicesTotal       prometheus.Counter
	endpointsTotal      prometheus.Counter

	syncErrors         *prometheus.CounterVec // datapath, kind
	rejected           *prometheus.CounterVec // reason
	reloadErrors       *prometheus.CounterVec // source
	servicesProgrammed *prometheus.GaugeVec   // datapath
	backendsProgrammed *prometheus.GaugeVec   // datapath
	partialFallbacks   *prometheus.CounterVec // datapath
}

// New returns metrics for a daemon driving the named datapath, registered
// in a new registry together with the Go runtime and process collectors.
// The datapath name labels the lbkit_* series of syncs whose SyncResult
// names no datapath, and its series are created at zero right away so that
// rate() and absent() work before the first event.
func New(datapath string) *Metrics {
	m := &Metrics{
		datapath:            datapath,
		reg:                 prometheus.NewRegistry(),
		syncDuration:        newSyncHistogram("sync_proxy_rules_duration_seconds", "Duration in seconds of one sync of the datapath, full or partial."),
		syncFullDuration:    newSyncHistogram("sync_full_proxy_rules_duration_seconds", "Duration in seconds of one full sync of the datapath."),
		syncPartialDuration: newSyncHistogram("sync_partial_proxy_rules_duration_seconds", "Duration in seconds of one partial sync of the datapath."),
		networkProgramming: prometheus.NewHistogram(prometheus.HistogramOpts{
			Subsystem: kubeProxySubsystem,
			Name:      "network_programming_duration_seconds",
			Help:      "Time in seconds from the first unsynced change of a service to its being programmed in the datapath.",
			Buckets:   NetworkProgrammingBuckets(),
		}),
		lastSync:         newKubeProxyGauge("sync_proxy_rules_last_timestamp_seconds", "Unix time at which the last sync that programmed the datapath ended."),
		lastQueued:       newKubeProxyGauge("sync_proxy_rules_last_queued_timestamp_seconds", "Unix time at which the last change was queued for a sync."),
		servicesPending:  newKubeProxyGauge("sync_proxy_rules_service_changes_pending", "Services with a service change not yet programmed."),
		endpointsPending: newKubeProxyGauge("sync_proxy_rules_endpoint_changes_pending", "Services with an endpoints change not yet programmed."),
		servicesTotal:    newKubeProxyCounter("sync_proxy_rules_service_changes_total", "Service changes accepted since start."),
		endpointsTotal:   newKubeProxyCounter("sync_proxy_rules_endpoint_changes_total", "Endpoints changes accepted since start."),
		syncErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: lbkitNamespace,
			Name:      "sync_errors_total",
			Help:      "Syncs that ended with an error, by datapath and kind (service: some services failed; datapath: the whole sync failed).",
		}, []string{"datapath", "kind"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: lbkitNamespace,
			Name:      "services_rejected_total",
			Help:      "Service or endpoints updates refused before reaching the datapath, by reason (validation, unsupported, conflict, other).",
		}, []string{"reason"}),
		reloadErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: lbkitNamespace,
			Name:      "config_reload_errors_total",
			Help:      "Failed reloads of configuration, by source.",
		}, []string{"source"}),
		servicesProgrammed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: lbkitNamespace,
			Name:      "services_programmed",
			Help:      "Services in the state the last successful sync programmed, by datapath.",
		}, []string{"datapath"}),
		backendsProgrammed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: lbkitNamespace,
			Name:      "backends_programmed",
			Help:      "Backends over all frontends in the state the last successful sync programmed, by datapath.",
		}, []string{"datapath"}),
		partialFallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: lbkitNamespace,
			Name:      "sync_partial_fallbacks_total",
			Help:      "Partial syncs that failed and fell back to a full sync, by datapath.",
		}, []string{"datapath"}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.syncDuration, m.syncFullDuration, m.syncPartialDuration, m.networkProgramming,
		m.lastSync, m.lastQueued,
		m.servicesPending, m.endpointsPending, m.servicesTotal, m.endpointsTotal,
		m.syncErrors, m.rejected, m.reloadErrors, m.servicesProgrammed, m.backendsProgrammed,
		m.partialFallbacks,
	)
	for _, reason := range []string{ReasonValidation, ReasonUnsupported, ReasonConflict, ReasonOther} {
		m.rejected.WithLabelValues(reason)
	}
	if datapath != "" {
		m.syncErrors.WithLabelValues(datapath, ErrorKindService)
		m.syncErrors.WithLabelValues(datapath, ErrorKindDatapath)
		m.servicesProgrammed.WithLabelValues(datapath)
		m.backendsProgrammed.WithLabelValues(datapath)
		m.partialFallbacks.WithLabelValues(datapath)
	}
	m.handler = promhttp.InstrumentMetricHandler(m.reg,
		promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	return m
}

// ConfigReloadError counts one failed configuration reload from source
// (e.g. "file", "flags").
func (m *Metrics) ConfigReloadError(source string) {
	m.reloadErrors.WithLabelValues(source).Inc()
}

// PartialFallback counts one partial sync of the datapath that failed and
// fell back to a full sync.
func (m *Metrics) PartialFallback() {
	m.partialFallbacks.WithLabelValues(m.datapath).Inc()
}

// Registry returns the registry holding every metric, for callers that
// register collectors of their own.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler { return m.handler }
