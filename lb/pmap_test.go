package lb

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestSnapshotMatchesMapModel applies random sets and deletes to a Snapshot
// and to a plain map, and checks that they agree and that every older
// snapshot still shows exactly its own state.
func TestSnapshotMatchesMapModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var snap *Snapshot
	model := map[ServiceKey]*ServiceState{}
	type saved struct {
		snap  *Snapshot
		model map[ServiceKey]*ServiceState
	}
	var history []saved
	for step := range 5000 {
		key := ServiceKey(fmt.Sprint("svc-", rng.IntN(700)))
		if rng.IntN(3) == 0 {
			snap = snap.Without(key)
			delete(model, key)
		} else {
			st := &ServiceState{Service: &Service{Key: key}}
			snap = snap.With(st)
			model[key] = st
		}
		if step%500 == 0 {
			cp := make(map[ServiceKey]*ServiceState, len(model))
			for k, v := range model {
				cp[k] = v
			}
			history = append(history, saved{snap, cp})
		}
	}
	history = append(history, saved{snap, model})
	for i, h := range history {
		if h.snap.Len() != len(h.model) {
			t.Fatalf("snapshot %d: Len %d, model %d", i, h.snap.Len(), len(h.model))
		}
		for k, v := range h.model {
			if got, ok := h.snap.Service(k); !ok || got != v {
				t.Fatalf("snapshot %d: %s = %v, want %v", i, k, got, v)
			}
		}
		n := 0
		h.snap.Range(func(st *ServiceState) bool {
			n++
			if h.model[st.Key()] != st {
				t.Fatalf("snapshot %d: Range yielded stale %s", i, st.Key())
			}
			return true
		})
		if n != len(h.model) {
			t.Fatalf("snapshot %d: Range saw %d, want %d", i, n, len(h.model))
		}
	}
	if _, ok := (*Snapshot)(nil).Service("x"); ok {
		t.Fatal("nil snapshot has a service")
	}
}
