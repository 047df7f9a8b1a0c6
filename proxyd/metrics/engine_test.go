package metrics

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/lbkit/lbkit/lb"
)

// discard is a datapath that accepts every sync and programs nothing; the
// engine around it is real.
type discard struct{}

func (discard) Name() string { return "discard" }
func (discard) Capabilities() lb.Capabilities {
	return lb.Capabilities{
		Schedulers:    []lb.Scheduler{lb.Random},
		Protocols:     []lb.Protocol{lb.TCP, lb.UDP},
		FrontendKinds: []lb.FrontendKind{lb.ClusterIP},
	}
}
func (discard) Sync(context.Context, *lb.Snapshot, lb.ChangeSet) error { return nil }
func (discard) Cleanup(context.Context) error                          { return nil }
func (discard) Close() error                                           { return nil }

func TestWithEngine(t *testing.T) {
	m := New("discard")
	eng, err := lb.NewEngine(discard{}, lb.Config{Hooks: m.Hooks()})
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	fe := lb.Frontend{Addr: netip.MustParseAddr("198.18.0.10"), Port: 80, Protocol: lb.TCP, Kind: lb.ClusterIP}
	if err := eng.Upsert(&lb.Service{Key: "web", Frontends: []lb.Frontend{fe}}); err != nil {
		t.Fatalf("Upsert: %v", err)
	}
	eps := []lb.Endpoint{
		lb.ReadyEndpoint(netip.MustParseAddrPort("198.18.1.1:8080")),
		lb.ReadyEndpoint(netip.MustParseAddrPort("198.18.1.2:8080")),
		lb.ReadyEndpoint(netip.MustParseAddrPort("198.18.1.3:8080")),
	}
	if err := eng.SetEndpoints("web", eps); err != nil {
		t.Fatalf("SetEndpoints: %v", err)
	}
	fams := scrape(t, m)
	if v := value(t, fams, "kubeproxy_sync_proxy_rules_service_changes_pending", nil); v != 1 {
		t.Errorf("service changes pending before the sync = %v, want 1", v)
	}
	if v := value(t, fams, "kubeproxy_sync_proxy_rules_endpoint_changes_pending", nil); v != 1 {
		t.Errorf("endpoint changes pending before the sync = %v, want 1", v)
	}

	if err := eng.Flush(context.Background()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	fams = scrape(t, m)
	for name, want := range map[string]float64{
		"kubeproxy_sync_proxy_rules_service_changes_pending":  0,
		"kubeproxy_sync_proxy_rules_endpoint_changes_pending": 0,
		"kubeproxy_sync_proxy_rules_service_changes_total":    1,
		"kubeproxy_sync_proxy_rules_endpoint_changes_total":   1,
	} {
		if got := value(t, fams, name, nil); got != want {
			t.Errorf("after Flush: %s = %v, want %v", name, got, want)
		}
	}
	checkGauges(t, fams, "discard", 1, 3, 0, 0)
	if n := histogram(t, fams, "kubeproxy_sync_full_proxy_rules_duration_seconds").GetSampleCount(); n != 1 {
		t.Errorf("full syncs = %d, want 1 (the first sync is full)", n)
	}
	if n := histogram(t, fams, "kubeproxy_network_programming_duration_seconds").GetSampleCount(); n != 1 {
		t.Errorf("network programming observations = %d, want 1 (one service programmed)", n)
	}
	if v := value(t, fams, "kubeproxy_sync_proxy_rules_last_timestamp_seconds", nil); v <= 0 {
		t.Errorf("last sync timestamp = %v after a sync, want > 0", v)
	}
	if v := value(t, fams, "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds", nil); v <= 0 {
		t.Errorf("last queued timestamp = %v after changes, want > 0", v)
	}

	// A second change makes a partial sync.
	if err := eng.SetEndpoints("web", eps[:2]); err != nil {
		t.Fatalf("SetEndpoints: %v", err)
	}
	if err := eng.Flush(context.Background()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	fams = scrape(t, m)
	if n := histogram(t, fams, "kubeproxy_sync_partial_proxy_rules_duration_seconds").GetSampleCount(); n != 1 {
		t.Errorf("partial syncs = %d, want 1", n)
	}
	if n := histogram(t, fams, "kubeproxy_sync_proxy_rules_duration_seconds").GetSampleCount(); n != 2 {
		t.Errorf("all syncs = %d, want 2", n)
	}
	if v := value(t, fams, "kubeproxy_sync_proxy_rules_endpoint_changes_total", nil); v != 2 {
		t.Errorf("endpoint changes total = %v, want 2", v)
	}
	checkGauges(t, fams, "discard", 1, 2, 0, 0)

	// Rejections by the engine are counted by reason.
	var verr *lb.ValidationError
	if err := eng.Upsert(&lb.Service{Key: "bad"}); !errors.As(err, &verr) {
		t.Fatalf("Upsert of a service without frontends: %v, want a *lb.ValidationError", err)
	}
	var uerr *lb.UnsupportedError
	fe2 := fe
	fe2.Port = 81
	if err := eng.Upsert(&lb.Service{Key: "lc", Frontends: []lb.Frontend{fe2}, Scheduler: lb.LC}); !errors.As(err, &uerr) {
		t.Fatalf("Upsert with an unsupported scheduler: %v, want a *lb.UnsupportedError", err)
	}
	fams = scrape(t, m)
	for reason, want := range map[string]float64{"validation": 1, "unsupported": 1, "other": 0} {
		if got := value(t, fams, "lbkit_services_rejected_total", map[string]string{"reason": reason}); got != want {
			t.Errorf("rejected{reason=%q} = %v, want %v", reason, got, want)
		}
	}
	if v := value(t, fams, "lbkit_sync_errors_total", map[string]string{"datapath": "discard", "kind": "datapath"}); v != 0 {
		t.Errorf("sync errors = %v, want 0", v)
	}
}
