package ipvs

import (
	"context"
	"errors"
	"fmt"
)

// Cleanup removes everything the datapath installs: every virtual server it
// owns (all outside ExcludeCIDRs; never a flush), the dummy device with the
// virtual IPs, and the masquerade tables. It is idempotent. Kernel settings
// (sysctls) are left as they are. On a kernel without IPVS it still
// removes the device and the tables.
func (d *Datapath) Cleanup(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ipvs == nil && Available() != nil {
		return d.cleanupWithoutIPVS()
	}
	if err := d.open(); err != nil {
		return err
	}
	var errs []error
	svcs, err := d.ipvs.services()
	if err != nil {
		errs = append(errs, fmt.Errorf("ipvs: list virtual servers: %w", err))
	}
	for _, s := range svcs {
		v, ok := fromService(s)
		if !ok || d.o.excluded(v.key.Addr) {
			continue
		}
		if err := d.ipvs.delService(svcID(v.key)); err != nil && !notFound(err) {
			errs = append(errs, fmt.Errorf("ipvs: delete virtual server %s: %w", v.key, err))
		}
	}
	errs = append(errs, d.links.remove(), d.nat.remove())
	d.reset()
	return errors.Join(errs...)
}
