package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lbkit/lbkit/lb"
)

// servicesDesc describes lbkit_services.
var servicesDesc = prometheus.NewDesc(
	lbkitNamespace+"_services",
	"Services the engine was given, by state (programmed, pending, invalid, unsupported, conflict, failed).",
	[]string{"state"}, nil)

// servicesCollector reads the engine's per-phase counts at scrape time.
type servicesCollector struct {
	phases func() map[lb.Phase]int
}

func (c servicesCollector) Describe(ch chan<- *prometheus.Desc) { ch <- servicesDesc }

func (c servicesCollector) Collect(ch chan<- prometheus.Metric) {
	counts := c.phases()
	for _, p := range lb.Phases() {
		ch <- prometheus.MustNewConstMetric(servicesDesc, prometheus.GaugeValue, float64(counts[p]), string(p))
	}
}

// ObserveServices exports lbkit_services{state}, read from phases (usually
// the engine's Status().Phases) at every scrape. Call it once.
func (m *Metrics) ObserveServices(phases func() map[lb.Phase]int) {
	m.reg.MustRegister(servicesCollector{phases: phases})
}
