package metrics

import (
	"math"
	"net/http"
	"net/http/httptest"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape fetches m's exposition through its HTTP handler and parses it.
func scrape(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: status %d, body %q", rec.Code, rec.Body.String())
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse exposition: %v", err)
	}
	return fams
}

// family returns the named family and checks its type and help text.
func family(t *testing.T, fams map[string]*dto.MetricFamily, name string, typ dto.MetricType) *dto.MetricFamily {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("metric %s not exposed", name)
	}
	if f.GetType() != typ {
		t.Fatalf("metric %s has type %s, want %s", name, f.GetType(), typ)
	}
	if f.GetHelp() == "" {
		t.Errorf("metric %s has no help text", name)
	}
	return f
}

// series returns the metric of f whose labels are exactly want.
func series(t *testing.T, f *dto.MetricFamily, want map[string]string) *dto.Metric {
	t.Helper()
	for _, m := range f.GetMetric() {
		got := make(map[string]string, len(m.GetLabel()))
		for _, lp := range m.GetLabel() {
			got[lp.GetName()] = lp.GetValue()
		}
		if len(got) != len(want) {
			continue
		}
		match := true
		for k, v := range want {
			if got[k] != v {
				match = false
			}
		}
		if match {
			return m
		}
	}
	t.Fatalf("metric %s has no series with labels %v", f.GetName(), want)
	return nil
}

// value returns the value of the single (or labelled) series of a counter
// or gauge family.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("metric %s not exposed", name)
	}
	m := series(t, f, labels)
	switch f.GetType() {
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue()
	case dto.MetricType_GAUGE:
		return m.GetGauge().GetValue()
	}
	t.Fatalf("metric %s: value of a %s", name, f.GetType())
	return 0
}

// histogram returns the unlabelled histogram of the named family.
func histogram(t *testing.T, fams map[string]*dto.MetricFamily, name string) *dto.Histogram {
	t.Helper()
	f := family(t, fams, name, dto.MetricType_HISTOGRAM)
	return series(t, f, nil).GetHistogram()
}

// bounds returns the finite upper bounds of h's buckets.
func bounds(h *dto.Histogram) []float64 {
	var b []float64
	for _, bk := range h.GetBucket() {
		if !math.IsInf(bk.GetUpperBound(), 1) {
			b = append(b, bk.GetUpperBound())
		}
	}
	return b
}

// cumulative returns the cumulative count of h's bucket with upper bound le.
func cumulative(t *testing.T, h *dto.Histogram, le float64) uint64 {
	t.Helper()
	for _, bk := range h.GetBucket() {
		if bk.GetUpperBound() == le {
			return bk.GetCumulativeCount()
		}
	}
	t.Fatalf("histogram has no bucket le=%g", le)
	return 0
}

// sameBounds reports whether two bucket lists are equal up to float
// rounding.
func sameBounds(got, want []float64) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > 1e-9 {
			return false
		}
	}
	return true
}
