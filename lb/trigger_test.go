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
