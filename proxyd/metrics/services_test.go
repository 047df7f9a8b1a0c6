package metrics

import (
	"context"
	"net/netip"
	"testing"

	"github.com/lbkit/lbkit/lb"
)

func TestServicesByState(t *testing.T) {
	m := New("discard")
	eng, err := lb.NewEngine(discard{}, lb.Config{Hooks: m.Hooks()})
	if err != nil {
		t.Fatal(err)
	}
	m.ObserveServices(func() map[lb.Phase]int { return eng.Status().Phases })
	fe := lb.Frontend{Addr: netip.MustParseAddr("198.18.0.10"), Port: 80, Protocol: lb.TCP, Kind: lb.ClusterIP}
	_ = eng.Upsert(&lb.Service{Key: "web", Frontends: []lb.Frontend{fe}})
	_ = eng.Upsert(&lb.Service{Key: "clash", Frontends: []lb.Frontend{fe}})
	_ = eng.Upsert(&lb.Service{Key: "lc", Scheduler: lb.LC, Frontends: []lb.Frontend{{Addr: fe.Addr, Port: 81, Protocol: lb.TCP, Kind: lb.ClusterIP}}})
	_ = eng.Upsert(&lb.Service{Key: "bad"})
	_ = eng.Upsert(&lb.Service{Key: "other", Frontends: []lb.Frontend{{Addr: fe.Addr, Port: 82, Protocol: lb.TCP, Kind: lb.ClusterIP}}})
	if err := eng.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	_ = eng.Upsert(&lb.Service{Key: "later", Frontends: []lb.Frontend{{Addr: fe.Addr, Port: 83, Protocol: lb.TCP, Kind: lb.ClusterIP}}})
	fams := scrape(t, m)
	for state, want := range map[lb.Phase]float64{
		lb.PhaseProgrammed: 2, lb.PhasePending: 1, lb.PhaseConflict: 1,
		lb.PhaseUnsupported: 1, lb.PhaseInvalid: 1, lb.PhaseFailed: 0,
	} {
		if got := value(t, fams, "lbkit_services", map[string]string{"state": string(state)}); got != want {
			t.Errorf("lbkit_services{state=%q} = %v, want %v", state, got, want)
		}
	}
	if got := value(t, fams, "lbkit_services_rejected_total", map[string]string{"reason": ReasonConflict}); got != 1 {
		t.Errorf("conflicts counted %v, want 1", got)
	}
}
