package iptables

import (
	"fmt"
	"testing"

	"github.com/lbkit/lbkit/bench"
	"github.com/lbkit/lbkit/lb"
)

// benchSnapshot returns the generated world of n services x 3 endpoints as
// the engine would select it.
func benchSnapshot(b *testing.B, n int) *lb.Snapshot {
	b.Helper()
	items, err := bench.Generate(n, 3)
	if err != nil {
		b.Fatal(err)
	}
	var s *lb.Snapshot
	for _, it := range items {
		s = s.With(lb.Select(it.Service, it.Endpoints, lb.Node{Name: "node-a"}))
	}
	return s
}

// BenchmarkGenerate measures rule generation alone (no privileges): a full
// plan from scratch (every service chain generated), a full plan over an
// unchanged state (the periodic resync reuses every service's text), and a
// partial plan for one changed service.
func BenchmarkGenerate(b *testing.B) {
	for _, n := range benchSizes {
		s := benchSnapshot(b, n)
		g := goldenConfig(false, Options{})
		b.Run(fmt.Sprintf("full/services=%d", n), func(b *testing.B) {
			for b.Loop() {
				_ = newFamState().planFull(g, s, nil).render(g, nil, jumpTail{})
			}
		})
		fs := newFamState()
		fs = fs.apply(fs.planFull(g, s, nil))
		b.Run(fmt.Sprintf("resync/services=%d", n), func(b *testing.B) {
			var buf []byte
			for b.Loop() {
				buf = fs.planFull(g, s, nil).render(g, buf, checkAll())
			}
		})
		b.Run(fmt.Sprintf("partial/services=%d", n), func(b *testing.B) {
			i := 0
			for b.Loop() {
				i++
				svc := (i * 7919) % n
				it := lb.Select(&lb.Service{Key: bench.ServiceKey(svc), Frontends: mustService(s, svc).Service.Frontends},
					bench.Endpoints(svc, 3, i), lb.Node{Name: "node-a"})
				s2 := s.With(it)
				_ = fs.planPartial(g, s2, []lb.ServiceKey{it.Key()}, nil).input()
			}
		})
	}
}

func mustService(s *lb.Snapshot, i int) *lb.ServiceState {
	st, _ := s.Service(bench.ServiceKey(i))
	return st
}
