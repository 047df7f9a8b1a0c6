package metrics

import "github.com/prometheus/client_golang/prometheus"

const (
	kubeProxySubsystem = "kubeproxy"
	lbkitNamespace     = "lbkit"
)

// SyncDurationBuckets returns the upper bounds of the sync duration
// histograms, as kube-proxy defines them: 1 ms doubling 15 times, up to
// 16.384 s.
func SyncDurationBuckets() []float64 {
	return prometheus.ExponentialBuckets(0.001, 2, 15)
}

// NetworkProgrammingBuckets returns the upper bounds of the network
// programming histogram, as kube-proxy defines them: 0, then 0.25 s and
// 0.5 s, every second from 1 s to 59 s, every 5 s from 60 s to 115 s and
// every 30 s from 2 min to 5 min.
func NetworkProgrammingBuckets() []float64 {
	b := []float64{0}
	b = append(b, prometheus.LinearBuckets(0.25, 0.25, 2)...)
	b = append(b, prometheus.LinearBuckets(1, 1, 59)...)
	b = append(b, prometheus.LinearBuckets(60, 5, 12)...)
	b = append(b, prometheus.LinearBuckets(120, 30, 7)...)
	return b
}

func newSyncHistogram(name, help string) prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{
		Subsystem: kubeProxySubsystem,
		Name:      name,
		Help:      help,
		Buckets:   SyncDurationBuckets(),
	})
}

func newKubeProxyGauge(name, help string) prometheus.Gauge {
	return prometheus.NewGauge(prometheus.GaugeOpts{Subsystem: kubeProxySubsystem, Name: name, Help: help})
}

func newKubeProxyCounter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Subsystem: kubeProxySubsystem, Name: name, Help: help})
}
