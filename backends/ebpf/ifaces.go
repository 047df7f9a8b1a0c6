package ebpf

import (
	"errors"
	"fmt"
	"net"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/lbkit/lbkit/internal/nsutil"
)

// ifaceState is what the datapath attached to one interface of the
// namespace. The datapath keeps one per selected interface, from the first
// Sync on, and the link watcher (watch.go) keeps them current.
type ifaceState struct {
	iface
	// tc holds the ingress and egress attachments, or nothing.
	tc []*attachment
	// xdp is the XDP attachment (AttachXDP on an interface that is not
	// bridged).
	xdp *attachment
	// err is the last failure to attach here, nil once attached.
	err error
}

// programs describes the attachments of st.
func (st *ifaceState) programs() []string {
	var out []string
	if st.xdp != nil {
		out = append(out, st.xdp.desc)
	}
	for _, a := range st.tc {
		out = append(out, a.desc)
	}
	return out
}

// toIface converts a netlink link.
func toIface(l netlink.Link) iface {
	a := l.Attrs()
	return iface{name: a.Name, index: a.Index, bridged: a.MasterIndex != 0 || l.Type() == "bridge"}
}

// covers reports whether the options select l: the interfaces named in
// Options.Interfaces, or every interface but loopback when none are.
func (d *Datapath) covers(l netlink.Link) bool {
	a := l.Attrs()
	if len(d.opts.Interfaces) == 0 {
		return a.Flags&net.FlagLoopback == 0
	}
	return slices.Contains(d.opts.Interfaces, a.Name)
}

// listLinks lists the interfaces of the namespace.
func (d *Datapath) listLinks() ([]netlink.Link, error) {
	var links []netlink.Link
	err := nsutil.Do(d.opts.Netns, func() error {
		h, err := netlink.NewHandle()
		if err != nil {
			return fmt.Errorf("netlink: %w", err)
		}
		defer h.Close()
		links, err = h.LinkList()
		if err != nil {
			return fmt.Errorf("list interfaces: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ebpf: %w", err)
	}
	return links, nil
}

// reconcileLinks makes the attachments match the namespace's interfaces:
// it attaches to selected interfaces that lack programs, detaches from
// those no longer selected and forgets those that are gone. strict (the
// first Sync) fails on the first error, and on a configured interface that
// does not exist; otherwise errors are logged and counted and the other
// interfaces are still reconciled. d.mu is held.
func (d *Datapath) reconcileLinks(strict bool) error {
	links, err := d.listLinks()
	if err != nil {
		if strict {
			return err
		}
		d.attachFailed("", err)
		return err
	}
	present := make(map[int]bool, len(links))
	for _, l := range links {
		present[l.Attrs().Index] = true
	}
	for _, st := range d.ifaceList() {
		if !present[st.index] {
			d.forgetIface(st)
		}
	}
	if strict {
		for _, name := range d.opts.Interfaces {
			if !slices.ContainsFunc(links, func(l netlink.Link) bool { return l.Attrs().Name == name }) {
				return fmt.Errorf("ebpf: interface %q (Options.Interfaces) does not exist", name)
			}
		}
	}
	var errs []error
	for _, l := range links {
		if err := d.syncLink(l); err != nil {
			if strict {
				return err
			}
			d.attachFailed(l.Attrs().Name, err)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// onLinkUpdate applies one link event. Bridge (AF_BRIDGE) messages are
// about bridge ports, not about the interfaces themselves, and are
// skipped. d.mu is held.
func (d *Datapath) onLinkUpdate(u netlink.LinkUpdate) {
	if u.Family != unix.AF_UNSPEC || u.Link == nil {
		return
	}
	switch u.Header.Type {
	case unix.RTM_DELLINK:
		if st := d.ifaces[u.Link.Attrs().Index]; st != nil {
			d.forgetIface(st)
		}
	case unix.RTM_NEWLINK:
		if err := d.syncLink(u.Link); err != nil {
			d.attachFailed(u.Link.Attrs().Name, err)
		}
	}
}

// syncLink makes the attachments of one interface what the options want:
// TC programs when it is selected, and XDP too in AttachXDP mode unless it
// is a bridge or a bridge port. Failures are returned (and kept for
// AttachStatus); what could be attached stays, and the next event or full
// Sync retries the rest. d.mu is held.
func (d *Datapath) syncLink(l netlink.Link) error {
	ifc := toIface(l)
	st := d.ifaces[ifc.index]
	if st != nil && st.name != ifc.name {
		// Renamed: pins and descriptions carry the old name.
		d.log.Info("interface renamed: attaching anew", "from", st.name, "interface", ifc.name)
		if err := d.detachIface(st); err != nil {
			return err
		}
		st = nil
	}
	if !d.covers(l) {
		if st != nil {
			d.log.Info("interface no longer selected: detaching", "interface", ifc.name)
			return d.detachIface(st)
		}
		return nil
	}
	if st == nil {
		st = &ifaceState{iface: ifc}
		d.ifaces[ifc.index] = st
	}
	st.bridged = ifc.bridged
	var errs []error
	wantXDP := d.opts.Attach == AttachXDP && !ifc.bridged
	if st.xdp != nil && !wantXDP {
		if err := st.xdp.detach(d.opts.Netns); err != nil {
			errs = append(errs, err)
		} else {
			d.log.Info("detached: the interface is bridged now", "program", st.xdp.desc)
			st.xdp = nil
		}
	}
	if wantXDP && st.xdp == nil {
		a, err := d.attachXDP(ifc)
		if err != nil {
			errs = append(errs, err)
		} else {
			st.xdp = a
			d.log.Info("attached", "program", a.desc)
		}
	}
	if st.tc == nil {
		as, err := d.attachTC(ifc)
		if err != nil {
			errs = append(errs, err)
		} else {
			st.tc = as
			for _, a := range as {
				d.log.Info("attached", "program", a.desc)
			}
		}
	}
	st.err = errors.Join(errs...)
	return st.err
}

// attachFailed logs and counts a failure to follow the interfaces after
// the first Sync; it never stops the datapath.
func (d *Datapath) attachFailed(ifname string, err error) {
	d.attachErrors++
	d.log.Warn("cannot attach the datapath to an interface", "interface", ifname, "error", err)
}

// detachIface detaches everything from an interface that still exists and
// forgets it.
func (d *Datapath) detachIface(st *ifaceState) error {
	var errs []error
	for i := len(st.tc) - 1; i >= 0; i-- {
		if err := st.tc[i].detach(d.opts.Netns); err != nil {
			errs = append(errs, err)
		}
	}
	if st.xdp != nil {
		if err := st.xdp.detach(d.opts.Netns); err != nil {
			errs = append(errs, err)
		}
	}
	delete(d.ifaces, st.index)
	return errors.Join(errs...)
}

// forgetIface drops the bookkeeping of an interface that left the
// namespace (the kernel removed its attachments with it).
func (d *Datapath) forgetIface(st *ifaceState) {
	var errs []error
	for _, a := range append(slices.Clone(st.tc), st.xdp) {
		if a != nil {
			if err := a.forget(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	delete(d.ifaces, st.index)
	if err := errors.Join(errs...); err != nil {
		d.log.Warn("interface gone: releasing its links", "interface", st.name, "error", err)
		return
	}
	d.log.Info("interface gone: dropped its attachments", "interface", st.name, "programs", st.programs())
}

// ifaceList returns the interfaces with attachments, newest index first.
func (d *Datapath) ifaceList() []*ifaceState {
	out := make([]*ifaceState, 0, len(d.ifaces))
	for _, st := range d.ifaces {
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b *ifaceState) int { return b.index - a.index })
	return out
}
