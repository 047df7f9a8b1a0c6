package ipvs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/google/nftables"
	"github.com/moby/ipvs"
	"golang.org/x/sys/unix"
)

// ScanOptions says where Scan looks: the fields mean what they mean in
// Options.
type ScanOptions struct {
	Netns        string
	Device       string
	ExcludeCIDRs []netip.Prefix
	// Logger is told why virtual servers were not read (a kernel without
	// IPVS); nil logs nothing.
	Logger *slog.Logger
}

// Scan lists the state the datapath installs in the namespace, without
// changing anything: one line per object, such as
//
//	ipvs: virtual server 198.18.0.10:80/TCP
//	ipvs: dummy device lbkit-ipvs0
//	ipvs: nftables table ip lbkit-ipvs
//
// Virtual servers in ExcludeCIDRs are not the datapath's. On a kernel
// without IPVS there are no virtual servers to read (the Logger is told
// so); the device and the tables are still looked for. Datapath.Cleanup
// with the same options removes what Scan finds, IPVS or not.
func Scan(ctx context.Context, so ScanOptions) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ipvs: scan: %w", err)
	}
	o, err := Options{Netns: so.Netns, Device: so.Device, ExcludeCIDRs: so.ExcludeCIDRs, Logger: so.Logger}.withDefaults()
	if err != nil {
		return nil, err
	}
	var found []string
	if err := Available(); err != nil {
		o.Logger.Debug("no IPVS virtual servers to scan", "why", err.Error())
	} else {
		vs, err := scanServices(&o)
		if err != nil {
			return nil, err
		}
		found = append(found, vs...)
	}
	dev, err := scanDevice(&o)
	if err != nil {
		return nil, err
	}
	found = append(found, dev...)
	tables, err := scanNATTables(o.Netns)
	if err != nil {
		return nil, err
	}
	return append(found, tables...), nil
}

// scanServices lists the virtual servers the datapath owns.
func scanServices(o *Options) ([]string, error) {
	h, err := ipvs.New(o.Netns)
	if err != nil {
		return nil, fmt.Errorf("ipvs: scan: open IPVS netlink socket%s: %w", where(o.Netns), err)
	}
	defer h.Close()
	svcs, err := h.GetServices()
	if err != nil {
		return nil, fmt.Errorf("ipvs: scan: list virtual servers%s: %w", where(o.Netns), err)
	}
	var found []string
	for _, s := range svcs {
		v, ok := fromService(s)
		if !ok || o.excluded(v.key.Addr) {
			continue
		}
		found = append(found, "ipvs: virtual server "+v.key.String())
	}
	return found, nil
}

// scanDevice reports the dummy device (a link of that name of another
// type is not the datapath's).
func scanDevice(o *Options) ([]string, error) {
	h, err := routeHandle(o.Netns)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	l := &links{h: h, name: o.Device, c: &counters{}}
	dev, err := l.device()
	if err != nil {
		return nil, err
	}
	if dev == nil || dev.Type() != "dummy" {
		return nil, nil
	}
	return []string{"ipvs: dummy device " + o.Device}, nil
}

// scanNATTables reports the masquerade tables.
func scanNATTables(netns string) ([]string, error) {
	n := &nat{netns: netns, c: &counters{}}
	conn, done, err := n.dial()
	if err != nil {
		return nil, err
	}
	defer done()
	var found []string
	for _, nf := range natFamilies {
		_, err := conn.ListTableOfFamily(natTable, nf.fam)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("ipvs: scan: list nftables table %s: %w", natTable, err)
		}
		fam := "ip"
		if nf.fam == nftables.TableFamilyIPv6 {
			fam = "ip6"
		}
		found = append(found, fmt.Sprintf("ipvs: nftables table %s %s", fam, natTable))
	}
	return found, nil
}

// cleanupWithoutIPVS removes what a kernel without IPVS can still hold of
// the datapath's: the dummy device and the masquerade tables (the module
// may have been unloaded since they were made). d.mu is held.
func (d *Datapath) cleanupWithoutIPVS() error {
	h, err := routeHandle(d.o.Netns)
	if err != nil {
		return err
	}
	defer h.Close()
	l := &links{h: h, name: d.o.Device, c: &d.c}
	n := &nat{netns: d.o.Netns, c: &d.c, elems: newNatElems()}
	err = errors.Join(l.remove(), n.remove())
	d.reset()
	return err
}
