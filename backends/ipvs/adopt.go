package ipvs

import (
	"context"
)

// Adopt takes over what a previous process left: it reads the virtual
// servers the datapath owns (everything outside ExcludeCIDRs) and keeps
// them, so that the first (full) sync only repairs differences — a restart
// flushes nothing and drops no established connection. Real servers left
// at weight 0 are taken to be draining.
func (d *Datapath) Adopt(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.open(); err != nil {
		return err
	}
	kernel, err := d.readKernel()
	if err != nil {
		return err
	}
	dests, zero := 0, 0
	now := d.now()
	for k, v := range kernel {
		for dest, w := range v.dests {
			dests++
			if w == 0 {
				zero++
				d.draining[drainKey{k, dest}] = drainState{since: now}
			}
		}
	}
	d.adopted, d.kvs = kernel, kernel
	d.log.Info("adopted IPVS state", "virtualServers", len(kernel), "realServers", dests, "draining", zero)
	return nil
}
