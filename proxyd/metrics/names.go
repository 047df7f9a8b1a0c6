package metrics

import (
	"regexp"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
)

// descName finds the metric name in a Desc's String form, which is the
// only place client_golang shows it: `Desc{fqName: "NAME", help: ...}`.
var descName = regexp.MustCompile(`^Desc\{fqName: "([^"]+)"`)

// Names returns the name of every metric family m's registry describes,
// sorted: proxyd's own, the Go runtime's, the process's and the metrics
// handler's. It asks the collectors (Describe) rather than gathering
// samples, so a vector with no labelled child yet (lbkit_config_reload_errors_total
// before the first failed reload) is named too; lbkit_services is named
// once ObserveServices has registered it. A histogram or summary is named
// by its family name, without the _bucket, _sum and _count suffixes of its
// series. Dashboards and alerts check their queries against it.
func (m *Metrics) Names() []string {
	ch := make(chan *prometheus.Desc)
	go func() {
		m.reg.Describe(ch)
		close(ch)
	}()
	var names []string
	for d := range ch {
		if match := descName.FindStringSubmatch(d.String()); match != nil {
			names = append(names, match[1])
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}
