package ebpf

import (
	"fmt"
)

// recoverMaps reads the bookkeeping back from the maps after a plan failed
// halfway. Map writes are not atomic: the maps may hold any part of the
// plan, which the bookkeeping (unchanged, as nothing was committed) does
// not describe. As after a restart (adoptMaps), every frontend the maps
// hold becomes adopted state that belongs to no service, with its ids;
// backends and slot entries nothing points at are removed; and the next
// Sync is full, so that it claims, rewrites or removes every frontend and
// nothing of the failed plan is left behind.
func (d *Datapath) recoverMaps() error {
	d.resetShadow()
	clear(d.nodeAddrs)
	d.reread, d.forceFull = true, true
	if err := d.adoptMaps(); err != nil {
		return fmt.Errorf("ebpf: read the maps back after a failed sync (the next sync tries again): %w", err)
	}
	d.reread = false
	d.log.Warn("a sync failed halfway; read the maps back, the next sync is full", "frontends", len(d.frontends))
	return nil
}
