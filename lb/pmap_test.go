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

// TestSnapshotBuilderLeavesOldSnapshotsAlone applies batches through the
// mutating builder and checks every earlier snapshot is unchanged.
func TestSnapshotBuilderLeavesOldSnapshotsAlone(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var snap *Snapshot
	model := map[ServiceKey]*ServiceState{}
	var snaps []*Snapshot
	var models []map[ServiceKey]*ServiceState
	for range 40 {
		b := snap.builder()
		for range 1 + rng.IntN(300) {
			key := ServiceKey(fmt.Sprint("svc-", rng.IntN(2000)))
			if rng.IntN(4) == 0 {
				b.set(key, nil)
				delete(model, key)
			} else {
				st := &ServiceState{Service: &Service{Key: key}, Frontends: make([]FrontendState, 1)}
				st.Frontends[0].Backends = make([]Backend, rng.IntN(4))
				b.set(key, st)
				model[key] = st
			}
		}
		snap = b.snapshot()
		cp := make(map[ServiceKey]*ServiceState, len(model))
		for k, v := range model {
			cp[k] = v
		}
		snaps, models = append(snaps, snap), append(models, cp)
	}
	for i, s := range snaps {
		backends := 0
		for k, v := range models[i] {
			if got, ok := s.Service(k); !ok || got != v {
				t.Fatalf("snapshot %d changed after later batches: %s", i, k)
			}
			backends += len(v.Frontends[0].Backends)
		}
		if s.Len() != len(models[i]) || s.Backends() != backends {
			t.Fatalf("snapshot %d: len %d backends %d, want %d %d", i, s.Len(), s.Backends(), len(models[i]), backends)
		}
	}
}
