package ebpf

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
)

// batchMin is the number of entries from which a plan step uses batch
// syscalls instead of one syscall per entry.
const batchMin = 8

// applySteps is the number of steps of apply.
const applySteps = 8

// apply runs the plan's steps in order: backends, Maglev tables and backend
// slots first, then the service entries that point at them, then the
// removal of what nothing points at any more. It changes no bookkeeping:
// commit does, once apply succeeded.
func (d *Datapath) apply(p *plan) error {
	m := &d.objs.LBMaps
	for step := range applySteps {
		var what string
		var err error
		switch step {
		case 0:
			what, err = "write backends", update(m.LbBackends, p.beKeys, p.beVals)
		case 1:
			what, err = "write maglev tables", update(m.LbMaglev, p.mgKeys, p.mgVals)
		case 2:
			what, err = "write backend slots", update(m.LbServices, p.slotKeys, p.slotVals)
		case 3:
			what, err = "write service entries", update(m.LbServices, p.headKeys, p.headVals)
		case 4:
			what, err = "delete service entries", remove(m.LbServices, p.delHeads)
		case 5:
			what, err = "delete backend slots", remove(m.LbServices, p.delSlots)
		case 6:
			what, err = "delete maglev tables", remove(m.LbMaglev, p.delMaglev)
		case 7:
			what, err = "delete backends", remove(m.LbBackends, p.delBEs)
		}
		if err == nil && d.applyFault != nil {
			err = d.applyFault(what)
		}
		if err != nil {
			return fmt.Errorf("ebpf: %s: %w", what, err)
		}
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
