package iptables

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lbkit/lbkit/lb"
)

// TestOddNamesCannotInject programs services whose keys hold quotes,
// backslashes, newlines and rule syntax, on both flavours: the restore
// succeeds, the kernel holds exactly the rules generated (no injected
// rule), and Inspect reads every key back exactly.
func TestOddNamesCannotInject(t *testing.T) {
	for _, f := range flavours {
		t.Run(string(f), func(t *testing.T) {
			ns := testNetns(t)
			d := newTest(t, f, ns, Options{})
			ctx := context.Background()
			var s *lb.Snapshot
			fes := map[lb.ServiceKey]lb.FrontendID{}
			for i, k := range oddKeys {
				fe := clusterIP(fmt.Sprintf("198.18.100.%d", 10+i), 80, lb.TCP)
				s = s.With(svcState(string(k), []lb.Frontend{fe}, fmt.Sprintf("198.18.2.%d:8080", 10+i)))
				fes[k] = fe.ID()
			}
			// A service without endpoints puts an odd key in the filter
			// table too.
			s = s.With(svcState(`empty"-j ACCEPT`, []lb.Frontend{clusterIP("198.18.100.200", 80, lb.UDP)}))
			if err := d.Sync(ctx, s, full(s)); err != nil {
				t.Fatal(err)
			}
			save := saveAll(t, f, ns)
			// Every rule of ours is one the generator wrote: count them.
			var want int
			for _, st := range []*lb.Snapshot{s} {
				st.Range(func(ss *lb.ServiceState) bool {
					g := &d.fams[0].gen
					rec := g.build(ss)
					for i := range rec.chains {
						want += strings.Count(string(g.appendRules(nil, &rec.chains[i])), "\n")
					}
					want += len(rec.dispatch) + len(rec.filter)
					return true
				})
			}
			got := 0
			for _, l := range ourLines(save) {
				if strings.HasPrefix(l, "-A LBKIT-FE-") || strings.HasPrefix(l, "-A LBKIT-SVC-") || strings.HasPrefix(l, "-A LBKIT-NOENDPOINTS") {
					got++
				}
			}
			if got != want {
				t.Errorf("the kernel holds %d rules in service, shard and reject chains, want %d:\n%s", got, want, strings.Join(ourLines(save), "\n"))
			}
			if strings.Contains(save, "-j ACCEPT") || strings.Contains(save, "-A INPUT -j DROP") {
				t.Errorf("a key injected a rule:\n%s", save)
			}
			for k, id := range fes {
				in, err := d.Inspect(ctx, id)
				if err != nil {
					t.Errorf("Inspect(%s) of %q: %v", id, k, err)
					continue
				}
				if in.Service != k {
					t.Errorf("Inspect(%s) names service %q, want %q", id, in.Service, k)
				}
			}
			in, err := d.Inspect(ctx, lb.FrontendID{Addr: netip.MustParseAddr("198.18.100.200"), Port: 80, Protocol: lb.UDP})
			if err != nil || in.Service != `empty"-j ACCEPT` || len(in.Backends) != 0 {
				t.Errorf("Inspect of the frontend without endpoints = %+v, %v", in, err)
			}
		})
	}
}

// TestForeignRulesSurvive installs rules of someone else (kube-proxy's
// chain name included) in the nat and filter tables of both families and
// checks that full and partial syncs and Cleanup leave them as they were.
func TestForeignRulesSurvive(t *testing.T) {
	for _, f := range flavours {
		t.Run(string(f), func(t *testing.T) {
			ns := testNetns(t)
			check := installForeign(t, f, ns)
			d := newTest(t, f, ns, Options{ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/16")}})
			ctx := context.Background()
			web := svcState("web", []lb.Frontend{
				clusterIP("198.18.100.1", 80, lb.TCP), clusterIP("2001:2:0:100::1", 80, lb.TCP),
				{Addr: netip.IPv4Unspecified(), Port: 30080, Protocol: lb.TCP, Kind: lb.NodePort},
			}, "198.18.2.10:8080", "[2001:2:0:2::10]:8080")
			empty := svcState("empty", []lb.Frontend{clusterIP("198.18.100.2", 53, lb.UDP)})
			s := (*lb.Snapshot)(nil).With(web).With(empty)
			if err := d.Sync(ctx, s, full(s)); err != nil {
				t.Fatal(err)
			}
			check(t, "a full sync")
			s = s.With(svcState("web", web.Service.Frontends, "198.18.2.11:8080")).Without("empty")
			if err := d.Sync(ctx, s, partial("web", "empty")); err != nil {
				t.Fatal(err)
			}
			check(t, "a partial sync")
			if err := d.Sync(ctx, s, full(s)); err != nil {
				t.Fatal(err)
			}
			check(t, "a second full sync")
			if err := d.Cleanup(ctx); err != nil {
				t.Fatal(err)
			}
			check(t, "Cleanup")
			if left := ourLines(saveAll(t, f, ns)); len(left) > 0 {
				t.Errorf("after Cleanup: %q", left)
			}
			if err := d.Cleanup(ctx); err != nil {
				t.Errorf("second Cleanup: %v", err)
			}
			check(t, "a second Cleanup")
		})
	}
}

// TestAdoptRemovesStaleChains: a second datapath over the same namespace
// (a restarted process) adopts the chains, its first full sync keeps the
// services that remain and removes those that are gone.
func TestAdoptRemovesStaleChains(t *testing.T) {
	for _, f := range flavours {
		t.Run(string(f), func(t *testing.T) {
			ns := testNetns(t)
			ctx := context.Background()
			a := newTest(t, f, ns, Options{})
			keep := svcState("keep", []lb.Frontend{clusterIP("198.18.100.1", 80, lb.TCP)}, "198.18.2.10:8080")
			gone := svcState("gone", []lb.Frontend{
				clusterIP("198.18.100.2", 80, lb.TCP), clusterIP("2001:2:0:100::2", 80, lb.TCP),
			}, "198.18.2.11:8080", "[2001:2:0:2::11]:8080")
			s := (*lb.Snapshot)(nil).With(keep).With(gone)
			if err := a.Sync(ctx, s, full(s)); err != nil {
				t.Fatal(err)
			}
			before := ourLines(saveAll(t, f, ns))

			b, err := New(Options{Netns: ns, Flavour: f})
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Adopt(ctx); err != nil {
				t.Fatal(err)
			}
			s = s.Without("gone")
			if err := b.Sync(ctx, s, full(s)); err != nil {
				t.Fatal(err)
			}
			after := ourLines(saveAll(t, f, ns))
			for _, l := range after {
				if strings.Contains(l, "198.18.2.11") || strings.Contains(l, "2001:2:0:2::11") || strings.Contains(l, "gone") {
					t.Errorf("after the adopting sync, a rule of the deleted service remains: %s", l)
				}
			}
			for _, l := range before {
				if strings.Contains(l, "198.18.2.10:8080") && !contains(after, l) {
					t.Errorf("the kept service's rule %q went away", l)
				}
			}
			in, err := b.Inspect(ctx, keep.Service.Frontends[0].ID())
			if err != nil || in.Service != "keep" {
				t.Errorf("Inspect after adoption = %+v, %v", in, err)
			}
		})
	}
}

func contains(lines []string, l string) bool {
	for _, x := range lines {
		if x == l {
			return true
		}
	}
	return false
}

// TestPartialFailureFallsBack: when a partial sync cannot be applied (here
// an outsider made one of our NodePort rules jump to a service chain the
// partial sync deletes, so the chain cannot be deleted), the datapath falls
// back to a full sync at once, which rewrites every chain, and counts it.
func TestPartialFailureFallsBack(t *testing.T) {
	for _, f := range flavours {
		t.Run(string(f), func(t *testing.T) {
			ns := testNetns(t)
			ctx := context.Background()
			fallbacks := 0
			d := newTest(t, f, ns, Options{OnFallback: func() { fallbacks++ }})
			doomed := svcState("doomed", []lb.Frontend{clusterIP("198.18.100.1", 80, lb.TCP)}, "198.18.2.10:8080")
			other := svcState("other", []lb.Frontend{clusterIP("198.18.100.2", 80, lb.TCP)}, "198.18.2.11:8080")
			s := (*lb.Snapshot)(nil).With(doomed).With(other)
			if err := d.Sync(ctx, s, full(s)); err != nil {
				t.Fatal(err)
			}
			chain := d.fams[0].state.services["doomed"].chains[0].name
			restoreIn(t, f, ns, false, "*nat\n-A "+chainNodePorts+" -p tcp -m tcp --dport 1 -j "+chain+"\nCOMMIT\n")

			s = s.Without("doomed")
			if err := d.Sync(ctx, s, partial("doomed")); err != nil {
				t.Fatalf("Sync after the fallback: %v", err)
			}
			if fallbacks != 1 {
				t.Errorf("OnFallback called %d times, want 1", fallbacks)
			}
			save := saveAll(t, f, ns)
			if strings.Contains(save, chain) || strings.Contains(save, "--dport 1 ") {
				t.Errorf("after the full sync, the deleted service's chain or the drifted rule remains:\n%s", strings.Join(ourLines(save), "\n"))
			}
			if !strings.Contains(save, "198.18.2.11:8080") {
				t.Errorf("the other service is gone:\n%s", strings.Join(ourLines(save), "\n"))
			}
		})
	}
}

// TestInspect reads back weights, affinity, kinds and both families.
func TestInspect(t *testing.T) {
	ns := testNetns(t)
	d := newTest(t, FlavourNFT, ns, Options{})
	ctx := context.Background()
	np := lb.Frontend{Addr: netip.IPv4Unspecified(), Port: 30080, Protocol: lb.UDP, Kind: lb.NodePort}
	v6 := clusterIP("2001:2:0:100::1", 443, lb.TCP)
	st := svcState("ns/weighted/udp", []lb.Frontend{np, v6}, "198.18.2.10:53", "198.18.2.11:53", "[2001:2:0:2::10]:443")
	st.Service.Affinity = lb.SessionAffinity{Type: lb.AffinityClientIP, Timeout: 90 * time.Second}
	st.Frontends[0].Backends = []lb.Backend{
		{Addr: netip.MustParseAddrPort("198.18.2.10:53"), Weight: 3},
		{Addr: netip.MustParseAddrPort("198.18.2.11:53"), Weight: 9},
	}
	s := (*lb.Snapshot)(nil).With(st)
	if err := d.Sync(ctx, s, full(s)); err != nil {
		t.Fatal(err)
	}
	in, err := d.Inspect(ctx, np.ID())
	if err != nil {
		t.Fatal(err)
	}
	if in.Service != "ns/weighted/udp" || in.Frontend.Kind != lb.NodePort || in.AffinityTimeout != 90*time.Second ||
		in.Scheduler != lb.Random || len(in.Backends) != 2 || in.Backends[0].Weight != 1 || in.Backends[1].Weight != 3 {
		t.Errorf("Inspect(%s) = %+v", np, in)
	}
	if !strings.Contains(strings.Join(in.Details, "\n"), "25.0% of new connections") {
		t.Errorf("details lack the share of the first backend: %q", in.Details)
	}
	in, err = d.Inspect(ctx, v6.ID())
	if err != nil || len(in.Backends) != 1 || in.Backends[0].Addr != netip.MustParseAddrPort("[2001:2:0:2::10]:443") || in.Frontend.Kind != lb.ClusterIP {
		t.Errorf("Inspect(%s) = %+v, %v", v6, in, err)
	}
	if _, err := d.Inspect(ctx, lb.FrontendID{Addr: netip.MustParseAddr("198.18.100.99"), Port: 80, Protocol: lb.TCP}); err == nil ||
		!strings.Contains(err.Error(), "not programmed") {
		t.Errorf("Inspect of an unknown frontend = %v, want not programmed", err)
	}
}

// TestUnsupportedSchedulerIsAServiceError: a service asking for a scheduler
// iptables cannot express fails alone, with an *lb.UnsupportedError; the
// others are programmed.
func TestUnsupportedSchedulerIsAServiceError(t *testing.T) {
	ns := testNetns(t)
	d := newTest(t, FlavourLegacy, ns, Options{})
	ctx := context.Background()
	rr := svcState("rr", []lb.Frontend{clusterIP("198.18.100.1", 80, lb.TCP)}, "198.18.2.10:8080")
	rr.Service.Scheduler = lb.RR
	ok := svcState("ok", []lb.Frontend{clusterIP("198.18.100.2", 80, lb.TCP)}, "198.18.2.11:8080")
	s := (*lb.Snapshot)(nil).With(rr).With(ok)
	err := d.Sync(ctx, s, full(s))
	var errs lb.ServiceErrors
	var uerr *lb.UnsupportedError
	if !errors.As(err, &errs) || len(errs) != 1 || !errors.As(errs["rr"], &uerr) || uerr.Field != "scheduler" || uerr.Datapath != "iptables" {
		t.Fatalf("Sync = %v, want a ServiceErrors with an UnsupportedError for rr", err)
	}
	save := saveAll(t, FlavourLegacy, ns)
	if !strings.Contains(save, "198.18.2.11:8080") || strings.Contains(save, "198.18.2.10:8080") {
		t.Errorf("want only the supported service programmed:\n%s", strings.Join(ourLines(save), "\n"))
	}
}
