// Package health serves proxyd's /healthz and /livez endpoints.
//
// /healthz never says ok while nothing is programmed: it answers 503 until
// the first full sync has succeeded, once syncs have failed in a row for
// twice the sync period, and (kube-proxy's rule) when a change has waited
// longer than twice the sync period without being programmed, changes a
// sync is programming right now included. Load balancers and node health
// checks probe it, so it always answers with a JSON body that says why
// (fields named as in kube-proxy's body where they mean the same). With the
// Kubernetes source it also fails while this node is not eligible for
// traffic (SetNodeEligible). /livez only says that the process serves
// HTTP: a liveness probe must not restart a proxy that is still syncing.
package health

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/lbkit/lbkit/lb"
)

// Values of the "status" field.
const (
	StatusOK        = "ok"
	StatusUnhealthy = "unhealthy"
)

// Checker answers health probes from the engine's status. It is safe for
// concurrent use.
type Checker struct {
	status     func() lb.Status
	syncPeriod time.Duration
	limit      time.Duration // 2 × syncPeriod
	nodeName   string
	now        func() time.Time

	mu           sync.Mutex
	nodeKnown    bool // SetNodeEligible was called: a Node is watched
	nodeEligible bool
	nodeReason   string
}

// SetNodeEligible records whether this node may take traffic (the
// Kubernetes source watches its Node: a node being deleted or drained by
// the cluster autoscaler is not). An ineligible node fails /healthz, so
// load balancers drain it, and /livez ignores it, so it is not restarted.
func (c *Checker) SetNodeEligible(eligible bool, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nodeKnown, c.nodeEligible, c.nodeReason = true, eligible, reason
}

// ProxyHealthy reports whether the proxy itself is healthy, node
// eligibility aside (the serviceProxyHealthy of health check node ports).
func (c *Checker) ProxyHealthy() bool { return c.check(false).Status == StatusOK }

// New returns a checker that reads the engine's state through status
// (usually (*lb.Engine).Status) and reports unhealthy once the oldest
// pending change is 2×syncPeriod old. A syncPeriod of zero or less means
// lb.DefaultSyncPeriod, as in lb.Config; now may be nil for time.Now.
// New panics if status is nil, which is a programming error.
func New(status func() lb.Status, syncPeriod time.Duration, nodeName string, now func() time.Time) *Checker {
	if status == nil {
		panic("health.New: status func is nil")
	}
	if syncPeriod <= 0 {
		syncPeriod = lb.DefaultSyncPeriod
	}
	if now == nil {
		now = time.Now
	}
	return &Checker{status: status, syncPeriod: syncPeriod, limit: 2 * syncPeriod, nodeName: nodeName, now: now}
}

// Report is the JSON body of /healthz.
type Report struct {
	// Status is StatusOK or StatusUnhealthy.
	Status string `json:"status"`
	// Reason says in words why the proxy is (un)healthy.
	Reason string `json:"reason"`
	// LastUpdated is when the last sync that programmed the datapath
	// ended (RFC 3339); empty before the first one.
	LastUpdated string `json:"lastUpdated,omitempty"`
	// CurrentTime is the time of the check (RFC 3339).
	CurrentTime string `json:"currentTime"`
	// OldestPendingChange is when the oldest change not yet programmed was
	// first seen (RFC 3339); empty when nothing is pending.
	OldestPendingChange string `json:"oldestPendingChange,omitempty"`
	// NodeName is the node this proxy serves.
	NodeName string `json:"nodeName"`
	// NodeHealthy is true when the proxy on this node is healthy; it is
	// what a node health check should act on.
	NodeHealthy bool `json:"nodeHealthy"`
	// Services is the number of services the engine knows.
	Services int `json:"services"`
	// LastError is the error of the last sync, if it failed.
	LastError string `json:"lastError,omitempty"`
	// FailingSince is when the syncs that failed in a row up to now began
	// (RFC 3339); empty when the last sync succeeded.
	FailingSince string `json:"failingSince,omitempty"`
	// WaitingFor names the sources the first full sync waits for.
	WaitingFor []string `json:"waitingFor,omitempty"`
	// NodeEligible is false while this node's Node is being deleted or
	// drained by the cluster autoscaler; absent when no Node is watched.
	NodeEligible *bool `json:"nodeEligible,omitempty"`
}

// Check evaluates the engine's status and the node's eligibility now.
func (c *Checker) Check() Report { return c.check(true) }

func (c *Checker) check(withNode bool) Report {
	st := c.status()
	now := c.now()
	r := Report{
		Status:      StatusOK,
		CurrentTime: formatTime(now),
		NodeName:    c.nodeName,
		NodeHealthy: true,
		Services:    st.Services,
	}
	if !st.LastSync.IsZero() {
		r.LastUpdated = formatTime(st.LastSync)
	}
	if st.LastError != nil {
		r.LastError = st.LastError.Error()
	}
	if !st.FailingSince.IsZero() {
		r.FailingSince = formatTime(st.FailingSince)
	}
	r.WaitingFor = st.WaitingFor
	unhealthy := func(format string, args ...any) {
		r.Status, r.NodeHealthy = StatusUnhealthy, false
		r.Reason = fmt.Sprintf(format, args...)
	}
	failing := max(now.Sub(st.FailingSince), 0).Round(time.Millisecond)
	switch {
	case st.LastFullSync.IsZero() && len(st.WaitingFor) > 0:
		unhealthy("nothing programmed yet: the first full sync waits for sources %v", st.WaitingFor)
	case st.LastFullSync.IsZero() && st.LastError != nil:
		unhealthy("nothing programmed yet: every sync since %s has failed", r.FailingSince)
	case st.LastFullSync.IsZero():
		unhealthy("nothing programmed yet: the first full sync has not completed")
	case !st.FailingSince.IsZero() && failing >= c.limit:
		unhealthy("syncs have failed for %s, longer than the %s limit (2×syncPeriod %s)", failing, c.limit, c.syncPeriod)
	case !st.OldestPending.IsZero():
		r.OldestPendingChange = formatTime(st.OldestPending)
		waited := max(now.Sub(st.OldestPending), 0).Round(time.Millisecond)
		if waited >= c.limit {
			unhealthy("oldest pending change has waited %s, longer than the %s limit (2×syncPeriod %s)", waited, c.limit, c.syncPeriod)
		} else {
			r.Reason = fmt.Sprintf("oldest pending change has waited %s, within the %s limit (2×syncPeriod %s)", waited, c.limit, c.syncPeriod)
		}
	default:
		r.Reason = "every change is programmed"
	}
	c.mu.Lock()
	known, eligible, reason := c.nodeKnown, c.nodeEligible, c.nodeReason
	c.mu.Unlock()
	if withNode && known {
		r.NodeEligible = &eligible
		if !eligible && r.Status == StatusOK {
			unhealthy("node not eligible for traffic: %s", reason)
		}
	}
	return r
}

// Healthz answers 200 when the proxy is healthy and 503 when it is not (see
// the package doc), with a Report as JSON body either way.
func (c *Checker) Healthz(w http.ResponseWriter, _ *http.Request) {
	r := c.Check()
	code := http.StatusOK
	if r.Status != StatusOK {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, r)
}

// Livez answers 200 {"status":"ok"} for as long as the process serves HTTP.
func (c *Checker) Livez(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, struct {
		Status string `json:"status"`
	}{StatusOK})
}

// Handler returns a mux serving Healthz at /healthz and Livez at /livez.
func (c *Checker) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", c.Healthz)
	mux.HandleFunc("/livez", c.Livez)
	return mux
}

func writeJSON(w http.ResponseWriter, code int, body any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	// Encoding a struct of strings, bools and ints cannot fail; a write
	// error means the client went away.
	_ = json.NewEncoder(w).Encode(body)
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }
