package health

import (
	"context"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/lbkit/lbkit/lb"
)

// discard is a datapath that accepts every sync; the engine is real.
type discard struct{}

func (discard) Name() string { return "discard" }
func (discard) Capabilities() lb.Capabilities {
	return lb.Capabilities{Schedulers: []lb.Scheduler{lb.Random}, Protocols: []lb.Protocol{lb.TCP}, FrontendKinds: []lb.FrontendKind{lb.ClusterIP}}
}
func (discard) Sync(context.Context, *lb.Snapshot, lb.ChangeSet) error { return nil }
func (discard) Cleanup(context.Context) error                          { return nil }
func (discard) Close() error                                           { return nil }

func TestWithEngine(t *testing.T) {
	eng, err := lb.NewEngine(discard{}, lb.Config{SyncPeriod: 10 * time.Second})
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	// The clock runs a minute ahead, so a change the engine has not synced
	// looks stuck for longer than 2×10s.
	c := New(eng.Status, 10*time.Second, "node-a", func() time.Time { return time.Now().Add(time.Minute) })
	if code, body := probe(t, c, "/healthz"); code != http.StatusServiceUnavailable {
		t.Fatalf("fresh engine, nothing programmed: code %d body %v, want 503", code, body)
	}
	if err := eng.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code, body := probe(t, c, "/healthz"); code != http.StatusOK {
		t.Fatalf("after the first full sync: code %d body %v, want 200", code, body)
	}
	fe := lb.Frontend{Addr: netip.MustParseAddr("198.18.0.20"), Port: 443, Protocol: lb.TCP, Kind: lb.ClusterIP}
	if err := eng.Upsert(&lb.Service{Key: "api", Frontends: []lb.Frontend{fe}}); err != nil {
		t.Fatalf("Upsert: %v", err)
	}
	code, body := probe(t, c, "/healthz")
	if code != http.StatusServiceUnavailable || body["oldestPendingChange"] == nil || body["services"] != float64(1) {
		t.Fatalf("unsynced change: code %d body %v, want 503 naming the pending change", code, body)
	}
	if err := eng.Flush(context.Background()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	code, body = probe(t, c, "/healthz")
	if code != http.StatusOK || body["lastUpdated"] == nil || body["oldestPendingChange"] != nil {
		t.Errorf("after Flush: code %d body %v, want 200 with lastUpdated and nothing pending", code, body)
	}
}
