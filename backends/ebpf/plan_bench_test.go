package ebpf

import (
	"fmt"
	"testing"

	"github.com/lbkit/lbkit/lb"
)

// BenchmarkPlanFull measures computing a full sync's map writes for N
// services x 3 endpoints into empty maps (no kernel involved).
func BenchmarkPlanFull(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			snap := generated(b, n)
			b.ReportAllocs()
			for b.Loop() {
				d, err := New(Options{})
				if err != nil {
					b.Fatal(err)
				}
				todo := d.services.Work(snap, lb.ChangeSet{Full: true})
				if _, errs := d.planSync(todo, true, snap.Backends()); len(errs) > 0 {
					b.Fatal(errs)
				}
			}
		})
	}
}
