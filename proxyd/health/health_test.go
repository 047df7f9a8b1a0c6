package health

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lbkit/lbkit/lb"
)

var t0 = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

// probe serves path through c.Handler and decodes the JSON body.
func probe(t *testing.T, c *Checker, path string) (int, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	c.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s: Content-Type %q, want application/json", path, ct)
	}
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("GET %s: body %q is not JSON: %v", path, rec.Body.String(), err)
	}
	return rec.Code, body
}

// fixed returns a status func and a clock that return the given values.
func fixed(st lb.Status, now time.Time) (func() lb.Status, func() time.Time) {
	return func() lb.Status { return st }, func() time.Time { return now }
}

func TestHealthy(t *testing.T) {
	st := lb.Status{LastSync: t0, LastFullSync: t0, OldestPending: t0.Add(5 * time.Second), Services: 12}
	status, now := fixed(st, t0.Add(64*time.Second)) // pending for 59s of a 60s limit
	code, body := probe(t, New(status, 30*time.Second, "node-a", now), "/healthz")
	if code != http.StatusOK {
		t.Fatalf("status code %d, want 200; body %v", code, body)
	}
	want := map[string]any{
		"status":              "ok",
		"lastUpdated":         "2030-06-01T12:00:00Z",
		"currentTime":         "2030-06-01T12:01:04Z",
		"oldestPendingChange": "2030-06-01T12:00:05Z",
		"nodeName":            "node-a",
		"nodeHealthy":         true,
		"services":            float64(12),
	}
	for k, v := range want {
		if body[k] != v {
			t.Errorf("%s = %v, want %v", k, body[k], v)
		}
	}
	if r, _ := body["reason"].(string); !strings.Contains(r, "59s") || !strings.Contains(r, "within") {
		t.Errorf("reason %q should say the change waited 59s, within the limit", r)
	}
	if _, ok := body["lastError"]; ok {
		t.Errorf("lastError present without an error: %v", body["lastError"])
	}
}

func TestUnhealthyWhenChangeWaitsTooLong(t *testing.T) {
	st := lb.Status{
		LastSync: t0, LastFullSync: t0, OldestPending: t0.Add(10 * time.Second), Services: 3,
		LastError:    errors.New("nftables: netlink: operation not permitted"),
		FailingSince: t0.Add(80 * time.Second),
	}
	status, now := fixed(st, t0.Add(10*time.Second+75*time.Second))
	code, body := probe(t, New(status, 30*time.Second, "node-b", now), "/healthz")
	if code != http.StatusServiceUnavailable {
		t.Fatalf("status code %d, want 503; body %v", code, body)
	}
	if body["status"] != "unhealthy" || body["nodeHealthy"] != false {
		t.Errorf("status %v nodeHealthy %v, want unhealthy and false", body["status"], body["nodeHealthy"])
	}
	r, _ := body["reason"].(string)
	for _, part := range []string{"1m15s", "1m0s", "longer"} {
		if !strings.Contains(r, part) {
			t.Errorf("reason %q does not mention %q", r, part)
		}
	}
	if body["lastError"] != "nftables: netlink: operation not permitted" {
		t.Errorf("lastError = %v", body["lastError"])
	}
	if body["oldestPendingChange"] != "2030-06-01T12:00:10Z" {
		t.Errorf("oldestPendingChange = %v", body["oldestPendingChange"])
	}
}

func TestLimitIsTwiceSyncPeriod(t *testing.T) {
	st := lb.Status{LastFullSync: t0, OldestPending: t0}
	for _, c := range []struct {
		waited time.Duration
		want   int
	}{
		{20*time.Second - time.Millisecond, http.StatusOK},
		{20 * time.Second, http.StatusServiceUnavailable},
	} {
		status, now := fixed(st, t0.Add(c.waited))
		if code, body := probe(t, New(status, 10*time.Second, "n", now), "/healthz"); code != c.want {
			t.Errorf("waited %s with syncPeriod 10s: code %d, want %d; body %v", c.waited, code, c.want, body)
		}
	}
}

// Nothing is programmed before the first full sync: a load balancer must
// not send traffic to this node yet.
func TestUnhealthyBeforeFirstFullSync(t *testing.T) {
	for _, c := range []struct {
		name   string
		st     lb.Status
		reason string
	}{
		{"nothing yet", lb.Status{}, "first full sync has not completed"},
		{"waiting for sources", lb.Status{WaitingFor: []string{"kube"}, OldestPending: t0}, "waits for sources [kube]"},
		{"first syncs fail", lb.Status{FailingSince: t0, LastError: errors.New("no bpffs")}, "every sync since 2030-06-01T12:00:00Z has failed"},
		{"a partial sync but no full one", lb.Status{LastSync: t0}, "first full sync has not completed"},
	} {
		status, now := fixed(c.st, t0.Add(time.Second))
		code, body := probe(t, New(status, 0, "node-c", now), "/healthz")
		if code != http.StatusServiceUnavailable || body["status"] != "unhealthy" || body["nodeHealthy"] != false {
			t.Errorf("%s: code %d body %v, want 503 unhealthy", c.name, code, body)
		}
		if r, _ := body["reason"].(string); !strings.Contains(r, "nothing programmed yet") || !strings.Contains(r, c.reason) {
			t.Errorf("%s: reason %q, want it to say %q", c.name, r, c.reason)
		}
	}
}

// Failing syncs turn health red after 2×syncPeriod, not before, even when
// no change is pending (a periodic full sync that keeps failing).
func TestUnhealthyWhenSyncsKeepFailing(t *testing.T) {
	st := lb.Status{LastFullSync: t0, LastSync: t0, FailingSince: t0.Add(time.Minute), LastError: errors.New("iptables-restore: exit status 4")}
	for _, c := range []struct {
		failing time.Duration
		want    int
	}{
		{20*time.Second - time.Millisecond, http.StatusOK},
		{20 * time.Second, http.StatusServiceUnavailable},
	} {
		status, now := fixed(st, st.FailingSince.Add(c.failing))
		code, body := probe(t, New(status, 10*time.Second, "n", now), "/healthz")
		if code != c.want || body["failingSince"] != "2030-06-01T12:01:00Z" {
			t.Errorf("failing for %s: code %d, want %d; body %v", c.failing, code, c.want, body)
		}
	}
}

func TestNeverSyncedChangeStuck(t *testing.T) {
	// The default sync period (30s) applies for 0: stuck after 60s.
	status, now := fixed(lb.Status{LastFullSync: t0, OldestPending: t0, Services: 1}, t0.Add(2*time.Minute))
	if code, body := probe(t, New(status, 0, "n", now), "/healthz"); code != http.StatusServiceUnavailable {
		t.Errorf("first change pending 2m with the default sync period: code %d, want 503; body %v", code, body)
	}
}

func TestStatusIsReadPerRequest(t *testing.T) {
	st := lb.Status{LastFullSync: t0, OldestPending: t0}
	c := New(func() lb.Status { return st }, time.Second, "n", func() time.Time { return t0.Add(time.Minute) })
	if code, _ := probe(t, c, "/healthz"); code != http.StatusServiceUnavailable {
		t.Fatalf("stuck change: code %d, want 503", code)
	}
	st = lb.Status{LastFullSync: t0, LastSync: t0.Add(30 * time.Second)} // synced since
	code, body := probe(t, c, "/healthz")
	if code != http.StatusOK || !strings.Contains(body["reason"].(string), "programmed") {
		t.Errorf("after the change was synced: code %d body %v, want 200 with everything programmed", code, body)
	}
}

func TestLivez(t *testing.T) {
	// Livez does not depend on sync health.
	status, now := fixed(lb.Status{OldestPending: t0}, t0.Add(time.Hour))
	code, body := probe(t, New(status, time.Second, "n", now), "/livez")
	if code != http.StatusOK || body["status"] != "ok" || len(body) != 1 {
		t.Errorf("livez: code %d body %v, want 200 {\"status\":\"ok\"}", code, body)
	}
}

func TestUnknownPath(t *testing.T) {
	status, now := fixed(lb.Status{}, t0)
	rec := httptest.NewRecorder()
	New(status, time.Second, "n", now).Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("GET /metrics on the health mux: %d, want 404", rec.Code)
	}
}

func TestNilStatusPanics(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "status") {
			t.Errorf("New(nil, ...) recovered %v, want a panic naming the status func", r)
		}
	}()
	New(nil, time.Second, "n", nil)
}
