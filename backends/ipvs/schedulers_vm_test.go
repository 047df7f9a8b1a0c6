//go:build vmtest

package ipvs_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lbkit/lbkit/backends/ipvs"
	"github.com/lbkit/lbkit/internal/netns"
	"github.com/lbkit/lbkit/lb"
)

// TestSchedulers checks what each IPVS scheduler promises, exactly where it
// is deterministic.
func TestSchedulers(t *testing.T) {
	w := newWorld(t, ipvs.Options{})
	names := func(i int) string { return w.topo.Backends[i].Name }

	t.Run("wrr_exact", func(t *testing.T) {
		svc := service("wrr", lb.WRR, w.vip(1))
		eps := []lb.Endpoint{w.backend(0), w.backend(1)}
		eps[1].Weight = 2
		w.install(w.eng, svc, eps...)
		// 30 connections are ten whole wrr cycles of weights 1 and 2.
		c := w.count(netip.AddrPortFrom(w.vip(1), 80), 30)
		if c[names(0)] != 10 || c[names(1)] != 20 {
			t.Errorf("wrr 1:2 over 30 connections: %v, want exactly 10 and 20", c)
		}
	})
	// Least-connection schedulers send a new connection to an idle real
	// server while others hold open connections.
	for i, sched := range []lb.Scheduler{lb.LC, lb.WLC, lb.SED, lb.NQ} {
		t.Run(string(sched)+"_idle_first", func(t *testing.T) {
			vip := w.vip(10 + i)
			w.install(w.eng, service(string(sched), sched, vip), w.backend(0), w.backend(1), w.backend(2))
			seen := map[string]bool{}
			for range 3 {
				c := w.dial(netip.AddrPortFrom(vip, 80)) // held open
				if seen[c.backend] {
					t.Fatalf("%s: a held connection went to busy %s while another real server was idle (%v)", sched, c.backend, seen)
				}
				seen[c.backend] = true
			}
		})
	}
	t.Run("dh_sticks_to_destination", func(t *testing.T) {
		vip := w.vip(20)
		w.install(w.eng, service("dh", lb.DH, vip), w.backend(0), w.backend(1), w.backend(2))
		clients := extraClientIPs(t, w, 5)
		seen := map[string]int{}
		for _, ip := range clients {
			for range 2 {
				seen[requestFrom(t, w, ip, netip.AddrPortFrom(vip, 80))]++
			}
		}
		if len(seen) != 1 {
			t.Errorf("dh: one destination reached %v from five clients, want one backend", seen)
		}
	})
}

// TestAffinityExpires: ClientIP affinity is IPVS persistence with the
// service's timeout: a client sticks to its backend, and once its
// connections and the persistence template have expired it is scheduled
// afresh. It waits for IPVS's timers (about a minute), so it runs in
// parallel with the other tests.
func TestAffinityExpires(t *testing.T) {
	t.Parallel()
	w := newWorld(t, ipvs.Options{})
	vip := w.vip(21)
	svc := service("affine", lb.RR, vip)
	svc.Affinity = lb.SessionAffinity{Type: lb.AffinityClientIP, Timeout: time.Second}
	w.install(w.eng, svc, w.backend(0), w.backend(1), w.backend(2))
	ip := extraClientIPs(t, w, 1)[0]
	to := netip.AddrPortFrom(vip, 80)
	first := requestFrom(t, w, ip, to)
	for range 5 {
		if got := requestFrom(t, w, ip, to); got != first {
			t.Fatalf("affinity: %s then %s from one client, want the same backend", first, got)
		}
	}
	// Once the client's connections are gone (reset: IPVS keeps them
	// 10 s in CLOSE) and then the 1 s persistence template, the next
	// connection is scheduled afresh: rr picks the backend after
	// first. The wait sends nothing (a connection would renew the
	// template); it watches IPVS's connection table.
	hexIP := fmt.Sprintf("%X", ip.AsSlice())
	eventually(t, 2*time.Minute, "the client's IPVS connections and template expire", func() bool {
		out, err := w.topo.Node.Exec(t.Context(), "cat", "/proc/net/ip_vs_conn")
		if err != nil {
			t.Fatal(err)
		}
		return !strings.Contains(string(out), hexIP)
	})
	if got := requestFrom(t, w, ip, to); got == first {
		t.Errorf("affinity: after it expired the client still reached %s; rr should pick the next backend", first)
	}
}

// extraClientIPs adds n client addresses (198.18.1.100, ...).
func extraClientIPs(t *testing.T, w *world, n int) []netip.Addr {
	t.Helper()
	var out []netip.Addr
	a := netip.MustParseAddr("198.18.1.100")
	for range w.extraIPs {
		a = a.Next()
	}
	w.extraIPs += n
	for range n {
		if _, err := w.topo.Client.Exec(t.Context(), "ip", "addr", "add", a.String()+"/24", "dev", netns.HostLink); err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
		a = a.Next()
	}
	return out
}

// requestFrom sends one TCP request from ip (fresh port, closed with a
// reset) and returns the backend.
func requestFrom(t *testing.T, w *world, ip netip.Addr, to netip.AddrPort) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	r, err := w.topo.Client.RequestFrom(ctx, "tcp", netip.AddrPortFrom(ip, 0), to)
	if err != nil {
		t.Fatalf("request from %s to %s: %v", ip, to, err)
	}
	return r.Backend
}
