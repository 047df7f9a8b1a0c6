package metrics

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/lbkit/lbkit/lb"
)

// kubeProxySyncBuckets is kube-proxy's sync duration bucket list, written
// out: 1 ms doubling up to 16.384 s.
var kubeProxySyncBuckets = []float64{
	0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128,
	0.256, 0.512, 1.024, 2.048, 4.096, 8.192, 16.384,
}

// kubeProxyNetworkProgrammingBuckets builds kube-proxy's merged linear
// bucket list for network programming latency.
func kubeProxyNetworkProgrammingBuckets() []float64 {
	b := []float64{0, 0.25, 0.5}
	for s := 1; s <= 59; s++ {
		b = append(b, float64(s))
	}
	for s := 60; s <= 115; s += 5 {
		b = append(b, float64(s))
	}
	for s := 120; s <= 300; s += 30 {
		b = append(b, float64(s))
	}
	return b
}

func TestExposedNamesAndTypes(t *testing.T) {
	fams := scrape(t, New("iptables"))
	want := map[string]dto.MetricType{
		"kubeproxy_sync_proxy_rules_duration_seconds":              dto.MetricType_HISTOGRAM,
		"kubeproxy_sync_full_proxy_rules_duration_seconds":         dto.MetricType_HISTOGRAM,
		"kubeproxy_sync_partial_proxy_rules_duration_seconds":      dto.MetricType_HISTOGRAM,
		"kubeproxy_network_programming_duration_seconds":           dto.MetricType_HISTOGRAM,
		"kubeproxy_sync_proxy_rules_last_timestamp_seconds":        dto.MetricType_GAUGE,
		"kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds": dto.MetricType_GAUGE,
		"kubeproxy_sync_proxy_rules_service_changes_pending":       dto.MetricType_GAUGE,
		"kubeproxy_sync_proxy_rules_service_changes_total":         dto.MetricType_COUNTER,
		"kubeproxy_sync_proxy_rules_endpoint_changes_pending":      dto.MetricType_GAUGE,
		"kubeproxy_sync_proxy_rules_endpoint_changes_total":        dto.MetricType_COUNTER,
		"lbkit_sync_errors_total":                                  dto.MetricType_COUNTER,
		"lbkit_services_rejected_total":                            dto.MetricType_COUNTER,
		"lbkit_services_programmed":                                dto.MetricType_GAUGE,
		"lbkit_backends_programmed":                                dto.MetricType_GAUGE,
		"go_goroutines":                                            dto.MetricType_GAUGE,
		"process_start_time_seconds":                               dto.MetricType_GAUGE,
		"promhttp_metric_handler_requests_total":                   dto.MetricType_COUNTER,
	}
	for name, typ := range want {
		family(t, fams, name, typ)
	}
	// Series that alerts rate() over exist at zero from the start.
	for _, kind := range []string{"service", "datapath"} {
		if v := value(t, fams, "lbkit_sync_errors_total", map[string]string{"datapath": "iptables", "kind": kind}); v != 0 {
			t.Errorf("lbkit_sync_errors_total{kind=%q} = %v before any sync, want 0", kind, v)
		}
	}
	for _, reason := range []string{"validation", "unsupported", "other"} {
		if v := value(t, fams, "lbkit_services_rejected_total", map[string]string{"reason": reason}); v != 0 {
			t.Errorf("lbkit_services_rejected_total{reason=%q} = %v at start, want 0", reason, v)
		}
	}
}

func TestBucketsMatchKubeProxy(t *testing.T) {
	fams := scrape(t, New("nftables"))
	for _, name := range []string{
		"kubeproxy_sync_proxy_rules_duration_seconds",
		"kubeproxy_sync_full_proxy_rules_duration_seconds",
		"kubeproxy_sync_partial_proxy_rules_duration_seconds",
	} {
		if got := bounds(histogram(t, fams, name)); !sameBounds(got, kubeProxySyncBuckets) {
			t.Errorf("%s buckets = %v, want %v", name, got, kubeProxySyncBuckets)
		}
	}
	want := kubeProxyNetworkProgrammingBuckets()
	got := bounds(histogram(t, fams, "kubeproxy_network_programming_duration_seconds"))
	if !sameBounds(got, want) {
		t.Errorf("network programming buckets = %v, want %v", got, want)
	}
	if len(want) != 81 {
		t.Fatalf("test's own network programming list has %d bounds, want 81", len(want))
	}
}

func TestSyncDoneFullAndPartial(t *testing.T) {
	m := New("nftables")
	h := m.Hooks()
	start := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	h.SyncDone(lb.SyncResult{
		Datapath: "nftables", Full: true, Changed: 3, Start: start, Duration: 3 * time.Millisecond,
		Services: 3, Backends: 7, PendingServices: 2, PendingEndpoints: 5,
	})
	fams := scrape(t, m)
	full := histogram(t, fams, "kubeproxy_sync_full_proxy_rules_duration_seconds")
	if full.GetSampleCount() != 1 || cumulative(t, full, 0.002) != 0 || cumulative(t, full, 0.004) != 1 {
		t.Errorf("full sync of 3ms: count %d, le=0.002 %d, le=0.004 %d; want 1, 0, 1",
			full.GetSampleCount(), cumulative(t, full, 0.002), cumulative(t, full, 0.004))
	}
	if math.Abs(full.GetSampleSum()-0.003) > 1e-9 {
		t.Errorf("full sync sum = %v, want 0.003", full.GetSampleSum())
	}
	if n := histogram(t, fams, "kubeproxy_sync_partial_proxy_rules_duration_seconds").GetSampleCount(); n != 0 {
		t.Errorf("partial syncs = %d after one full sync, want 0", n)
	}
	wantTS := float64(start.Add(3*time.Millisecond).UnixNano()) / 1e9
	if v := value(t, fams, "kubeproxy_sync_proxy_rules_last_timestamp_seconds", nil); math.Abs(v-wantTS) > 1e-3 {
		t.Errorf("last timestamp = %v, want %v (end of the sync)", v, wantTS)
	}
	checkGauges(t, fams, "nftables", 3, 7, 2, 5)

	h.SyncDone(lb.SyncResult{
		Datapath: "nftables", Changed: 1, Start: start.Add(time.Second), Duration: 40 * time.Millisecond,
		Services: 4, Backends: 9,
	})
	fams = scrape(t, m)
	partial := histogram(t, fams, "kubeproxy_sync_partial_proxy_rules_duration_seconds")
	if partial.GetSampleCount() != 1 || cumulative(t, partial, 0.032) != 0 || cumulative(t, partial, 0.064) != 1 {
		t.Errorf("partial sync of 40ms: count %d, le=0.032 %d, le=0.064 %d; want 1, 0, 1",
			partial.GetSampleCount(), cumulative(t, partial, 0.032), cumulative(t, partial, 0.064))
	}
	if n := histogram(t, fams, "kubeproxy_sync_full_proxy_rules_duration_seconds").GetSampleCount(); n != 1 {
		t.Errorf("full syncs = %d, want still 1", n)
	}
	all := histogram(t, fams, "kubeproxy_sync_proxy_rules_duration_seconds")
	if all.GetSampleCount() != 2 || math.Abs(all.GetSampleSum()-0.043) > 1e-9 {
		t.Errorf("all syncs: count %d sum %v, want 2 and 0.043", all.GetSampleCount(), all.GetSampleSum())
	}
	checkGauges(t, fams, "nftables", 4, 9, 0, 0)
}

// checkGauges checks the programmed and pending gauges.
func checkGauges(t *testing.T, fams map[string]*dto.MetricFamily, datapath string, services, backends, pendSvc, pendEp float64) {
	t.Helper()
	dp := map[string]string{"datapath": datapath}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"lbkit_services_programmed", dp, services},
		{"lbkit_backends_programmed", dp, backends},
		{"kubeproxy_sync_proxy_rules_service_changes_pending", nil, pendSvc},
		{"kubeproxy_sync_proxy_rules_endpoint_changes_pending", nil, pendEp},
	} {
		if got := value(t, fams, c.name, c.labels); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestSyncErrors(t *testing.T) {
	m := New("ipvs")
	h := m.Hooks()
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	h.SyncDone(lb.SyncResult{Datapath: "ipvs", Full: true, Start: start, Duration: time.Millisecond, Services: 2, Backends: 4})

	// Some services failed: the rest was programmed, so the gauges move.
	svcErr := fmt.Errorf("sync: %w", lb.ServiceErrors{"a": errors.New("boom")})
	h.SyncDone(lb.SyncResult{Datapath: "ipvs", Start: start.Add(time.Minute), Duration: time.Millisecond,
		Err: svcErr, Services: 3, Backends: 5, PendingServices: 1})
	fams := scrape(t, m)
	if v := value(t, fams, "lbkit_sync_errors_total", map[string]string{"datapath": "ipvs", "kind": "service"}); v != 1 {
		t.Errorf("service sync errors = %v, want 1", v)
	}
	if v := value(t, fams, "lbkit_sync_errors_total", map[string]string{"datapath": "ipvs", "kind": "datapath"}); v != 0 {
		t.Errorf("datapath sync errors = %v, want 0", v)
	}
	checkGauges(t, fams, "ipvs", 3, 5, 1, 0)
	afterPartial := value(t, fams, "kubeproxy_sync_proxy_rules_last_timestamp_seconds", nil)
	if want := float64(start.Add(time.Minute+time.Millisecond).UnixNano()) / 1e9; math.Abs(afterPartial-want) > 1e-3 {
		t.Errorf("last timestamp after a partly failed sync = %v, want %v", afterPartial, want)
	}

	// The whole sync failed: counted, observed, but nothing was programmed.
	h.SyncDone(lb.SyncResult{Datapath: "ipvs", Full: true, Start: start.Add(2 * time.Minute), Duration: time.Millisecond,
		Err: errors.New("netlink: permission denied"), Services: 10, Backends: 20, PendingServices: 4, PendingEndpoints: 2})
	fams = scrape(t, m)
	if v := value(t, fams, "lbkit_sync_errors_total", map[string]string{"datapath": "ipvs", "kind": "datapath"}); v != 1 {
		t.Errorf("datapath sync errors = %v, want 1", v)
	}
	if v := value(t, fams, "kubeproxy_sync_proxy_rules_last_timestamp_seconds", nil); v != afterPartial {
		t.Errorf("last timestamp moved to %v after a failed sync, want %v", v, afterPartial)
	}
	checkGauges(t, fams, "ipvs", 3, 5, 4, 2)
	if n := histogram(t, fams, "kubeproxy_sync_full_proxy_rules_duration_seconds").GetSampleCount(); n != 2 {
		t.Errorf("full syncs observed = %d, want 2 (failed ones count too)", n)
	}
}

func TestSyncResultWithoutDatapathUsesConfiguredName(t *testing.T) {
	m := New("userspace")
	m.Hooks().SyncDone(lb.SyncResult{Err: errors.New("boom")})
	fams := scrape(t, m)
	if v := value(t, fams, "lbkit_sync_errors_total", map[string]string{"datapath": "userspace", "kind": "datapath"}); v != 1 {
		t.Errorf("sync errors for the configured datapath = %v, want 1", v)
	}
}

func TestChangeQueued(t *testing.T) {
	m := New("iptables")
	h := m.Hooks()
	before := float64(time.Now().UnixNano()) / 1e9
	h.ChangeQueued(lb.ServiceChange, 1)
	h.ChangeQueued(lb.ServiceChange, 2)
	h.ChangeQueued(lb.EndpointsChange, 1)
	after := float64(time.Now().UnixNano()) / 1e9
	fams := scrape(t, m)
	for name, want := range map[string]float64{
		"kubeproxy_sync_proxy_rules_service_changes_total":    2,
		"kubeproxy_sync_proxy_rules_service_changes_pending":  2,
		"kubeproxy_sync_proxy_rules_endpoint_changes_total":   1,
		"kubeproxy_sync_proxy_rules_endpoint_changes_pending": 1,
	} {
		if got := value(t, fams, name, nil); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	// The gauge keeps microseconds at best; allow for that rounding.
	if v := value(t, fams, "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds", nil); v < before-1e-3 || v > after+1e-3 {
		t.Errorf("last queued timestamp %v not within [%v, %v]", v, before, after)
	}
}

func TestProgrammed(t *testing.T) {
	m := New("ebpf")
	h := m.Hooks()
	h.Programmed("a", 300*time.Millisecond)
	h.Programmed("b", 70*time.Second)
	h.Programmed("c", -time.Second) // a clock step backwards counts as zero
	hist := histogram(t, scrape(t, m), "kubeproxy_network_programming_duration_seconds")
	for _, c := range []struct {
		le   float64
		want uint64
	}{{0, 1}, {0.25, 1}, {0.5, 2}, {65, 2}, {70, 3}, {300, 3}} {
		if got := cumulative(t, hist, c.le); got != c.want {
			t.Errorf("network programming le=%g: %d, want %d", c.le, got, c.want)
		}
	}
	if hist.GetSampleCount() != 3 {
		t.Errorf("network programming count = %d, want 3", hist.GetSampleCount())
	}
}

func TestRejected(t *testing.T) {
	m := New("iptables")
	h := m.Hooks()
	verr := errors.Join(&lb.ValidationError{Service: "a", Field: "port", Value: "0", Reason: "must be 1-65535"})
	h.Rejected("a", verr)
	h.Rejected("b", fmt.Errorf("upsert: %w", &lb.UnsupportedError{Service: "b", Field: "scheduler", Value: "lc", Datapath: "iptables"}))
	h.Rejected("b", &lb.UnsupportedError{Service: "b", Field: "affinity", Value: "ClientIP", Datapath: "iptables"})
	h.Rejected("c", errors.New("nil service"))
	fams := scrape(t, m)
	for reason, want := range map[string]float64{"validation": 1, "unsupported": 2, "other": 1} {
		if got := value(t, fams, "lbkit_services_rejected_total", map[string]string{"reason": reason}); got != want {
			t.Errorf("rejected{reason=%q} = %v, want %v", reason, got, want)
		}
	}
}

func TestConfigReloadError(t *testing.T) {
	m := New("iptables")
	m.ConfigReloadError("file")
	m.ConfigReloadError("file")
	m.ConfigReloadError("flags")
	fams := scrape(t, m)
	family(t, fams, "lbkit_config_reload_errors_total", dto.MetricType_COUNTER)
	for source, want := range map[string]float64{"file": 2, "flags": 1} {
		if got := value(t, fams, "lbkit_config_reload_errors_total", map[string]string{"source": source}); got != want {
			t.Errorf("config reload errors{source=%q} = %v, want %v", source, got, want)
		}
	}
}

func TestInstancesAreIndependent(t *testing.T) {
	a, b := New("iptables"), New("iptables") // would panic on a shared registry
	a.Hooks().ChangeQueued(lb.ServiceChange, 1)
	if v := value(t, scrape(t, b), "kubeproxy_sync_proxy_rules_service_changes_total", nil); v != 0 {
		t.Errorf("second instance counted the first one's change: %v", v)
	}
	if a.Registry() == b.Registry() {
		t.Error("two instances share a registry")
	}
	// Registry is the one Handler serves.
	fams, err := a.Registry().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	found := false
	for _, f := range fams {
		if f.GetName() == "kubeproxy_sync_proxy_rules_service_changes_total" && f.GetMetric()[0].GetCounter().GetValue() == 1 {
			found = true
		}
	}
	if !found {
		t.Error("Registry() does not hold the counted change")
	}
}

func TestPartialFallbackCounts(t *testing.T) {
	m := New("iptables")
	m.PartialFallback()
	m.PartialFallback()
	if got := testutil.ToFloat64(m.partialFallbacks.WithLabelValues("iptables")); got != 2 {
		t.Fatalf("lbkit_sync_partial_fallbacks_total = %v, want 2", got)
	}
}
