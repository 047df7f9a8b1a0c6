package lb

import (
	"net/netip"
	"testing"
	"time"
)

// The network programming latency of an endpoint change starts at the
// trigger a source gives (an EndpointSlice's last-change-trigger-time),
// the earliest of several; a trigger in the future counts from the call.
func TestProgrammedLatencyStartsAtTrigger(t *testing.T) {
	r := &recorder{}
	latency := map[ServiceKey]time.Duration{}
	e := newTestEngine(t, r, Config{Hooks: Hooks{Programmed: func(k ServiceKey, d time.Duration) { latency[k] = d }}})
	for _, k := range []string{"a", "b", "c"} {
		if err := e.Upsert(svc(k, map[string]string{"a": "198.18.100.1", "b": "198.18.100.2", "c": "198.18.100.3"}[k], 80)); err != nil {
			t.Fatal(err)
		}
	}
	mustFlush(t, e)
	eps := []Endpoint{ReadyEndpoint(netip.MustParseAddrPort("198.18.1.1:80"))}
	now := time.Now()
	if err := e.SetEndpointsTriggered("a", eps, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	// A later change of the same service keeps the earlier trigger.
	if err := e.SetEndpointsTriggered("a", append(eps, ReadyEndpoint(netip.MustParseAddrPort("198.18.1.2:80"))), now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := e.SetEndpointsTriggered("b", eps, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := e.SetEndpoints("c", eps); err != nil {
		t.Fatal(err)
	}
	mustFlush(t, e)
	if d := latency["a"]; d < time.Hour {
		t.Errorf("latency of a = %s, want at least the hour since its first trigger", d)
	}
	for _, k := range []ServiceKey{"b", "c"} {
		if d, ok := latency[k]; !ok || d >= time.Minute {
			t.Errorf("latency of %s = %s (recorded %v), want it counted from the call", k, d, ok)
		}
	}
	// Health still counts from the call: nothing is pending now, and the
	// old trigger never made the engine report an old pending change.
	if st := e.Status(); !st.OldestPending.IsZero() {
		t.Errorf("OldestPending = %s after the flush, want zero", st.OldestPending)
	}
}

// MinSyncPeriod allows a burst of two syncs: a change right after a sync
// (a periodic full one, say) is due at once; a third waits until the
// first of the two is MinSyncPeriod old.
func TestMinSyncPeriodAllowsABurstOfTwo(t *testing.T) {
	r := &recorder{}
	e := newTestEngine(t, r, Config{MinSyncPeriod: time.Hour, SyncPeriod: 2 * time.Hour})
	_ = e.Upsert(svc("a", "198.18.100.1", 80))
	mustFlush(t, e)
	first := e.Status().LastSync
	_ = e.Upsert(svc("b", "198.18.100.2", 80))
	if now := time.Now(); e.nextDue(now).After(now) {
		t.Fatalf("the second change in the hour is due at %s, want at once", e.nextDue(now))
	}
	mustFlush(t, e)
	_ = e.Upsert(svc("c", "198.18.100.3", 80))
	now := time.Now()
	due := e.nextDue(now)
	if !due.After(now.Add(59*time.Minute)) || due.After(first.Add(time.Hour)) {
		t.Fatalf("the third change in the hour is due at %s (now %s), want an hour after the first sync", due, now)
	}
}
