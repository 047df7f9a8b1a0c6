package ebpf

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
)

// batchMin is the number of entries from which a plan step uses batch
// syscalls instead of one syscall per entry.
const batchMin = 8

// apply runs the plan's steps in order: backends, Maglev tables and backend
// slots first, then the service entries that point at them, then the
// removal of what nothing points at any more. Ids are released only after
// every step succeeded.
func (d *Datapath) apply(p *plan) error {
	m := &d.objs.LBMaps
	for _, s := range []struct {
		what string
		fn   func() error
	}{
		{"write backends", func() error { return update(m.LbBackends, p.beKeys, p.beVals) }},
		{"write maglev tables", func() error { return update(m.LbMaglev, p.mgKeys, p.mgVals) }},
		{"write backend slots", func() error { return update(m.LbServices, p.slotKeys, p.slotVals) }},
		{"write service entries", func() error { return update(m.LbServices, p.headKeys, p.headVals) }},
		{"delete service entries", func() error { return remove(m.LbServices, p.delHeads) }},
		{"delete backend slots", func() error { return remove(m.LbServices, p.delSlots) }},
		{"delete maglev tables", func() error { return remove(m.LbMaglev, p.delMaglev) }},
		{"delete backends", func() error { return remove(m.LbBackends, p.delBEs) }},
	} {
		if err := s.fn(); err != nil {
			return fmt.Errorf("ebpf: %s: %w", s.what, err)
		}
	}
	for _, id := range p.freeFE {
		d.ids.fe.put(id)
	}
	for _, id := range p.freeBE {
		d.ids.be.put(id)
	}
	return nil
}

// update writes keys[i] = vals[i], in batches when there are many.
func update[K, V any](m *ebpf.Map, keys []K, vals []V) error {
	if len(keys) >= batchMin {
		n, err := m.BatchUpdate(keys, vals, nil)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ebpf.ErrNotSupported) {
			return fmt.Errorf("%s: batch update of %d entries (%d written): %w", m.String(), len(keys), n, err)
		}
	}
	for i := range keys {
		if err := m.Update(&keys[i], &vals[i], ebpf.UpdateAny); err != nil {
			return fmt.Errorf("%s: update: %w", m.String(), err)
		}
	}
	return nil
}

// remove deletes keys; a key that is already gone is not an error.
func remove[K any](m *ebpf.Map, keys []K) error {
	if len(keys) >= batchMin {
		if _, err := m.BatchDelete(keys, nil); err == nil {
			return nil
		}
		// A missing key stops a batch: delete one by one instead.
	}
	for i := range keys {
		if err := m.Delete(&keys[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("%s: delete: %w", m.String(), err)
		}
	}
	return nil
}
