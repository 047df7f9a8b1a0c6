package ebpf

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/lbkit/lbkit/internal/nsutil"
)

// attachment is one program attached somewhere; detach undoes it.
type attachment struct {
	desc string
	link link.Link // TCX, XDP or cgroup link
	// pin is where link is pinned ("" when it is not).
	pin    string
	legacy *legacyFilter
}

// detach removes the attachment.
func (a *attachment) detach(netns string) error {
	if a.link != nil {
		if a.pin != "" {
			if err := a.link.Unpin(); err != nil {
				return fmt.Errorf("unpin %s: %w", a.desc, err)
			}
		}
		if err := a.link.Close(); err != nil {
			return fmt.Errorf("detach %s: %w", a.desc, err)
		}
		return nil
	}
	if err := a.legacy.remove(netns); err != nil {
		return fmt.Errorf("detach %s: %w", a.desc, err)
	}
	return nil
}

// forget releases the attachment of an interface that left the namespace:
// the kernel detached it with the interface, so only the link's pin and
// file descriptor remain (closing them also detaches a link whose
// interface moved to another namespace). A clsact filter needs nothing:
// its interface index may already name another interface.
func (a *attachment) forget() error {
	if a.link == nil {
		return nil
	}
	var err error
	if a.pin != "" {
		if uerr := a.link.Unpin(); uerr != nil {
			err = fmt.Errorf("unpin %s: %w", a.desc, uerr)
		}
	}
	if cerr := a.link.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close %s: %w", a.desc, cerr))
	}
	return err
}

// iface is an interface of the programmed namespace.
type iface struct {
	name  string
	index int
	// bridged: a bridge or a bridge port, where XDP is not attached
	// (traffic through a bridge is balanced by TC).
	bridged bool
}

// attachTC attaches ingress and egress programs to ifc: with TCX unless
// the kernel lacks it or Options.LegacyTC is set, else with a clsact qdisc.
// It attaches both or neither.
func (d *Datapath) attachTC(ifc iface) ([]*attachment, error) {
	var out []*attachment
	fail := func(err error) ([]*attachment, error) {
		for i := len(out) - 1; i >= 0; i-- {
			if derr := out[i].detach(d.opts.Netns); derr != nil {
				err = errors.Join(err, derr)
			}
		}
		return nil, err
	}
	for _, dir := range []struct {
		name   string
		prog   *ebpf.Program
		tcx    ebpf.AttachType
		parent uint32
	}{
		{"ingress", d.objs.LbTcIngress, ebpf.AttachTCXIngress, parentIngress},
		{"egress", d.objs.LbTcEgress, ebpf.AttachTCXEgress, parentEgress},
	} {
		desc := fmt.Sprintf("tc %s on %s", dir.name, ifc.name)
		if !d.opts.LegacyTC {
			pin := d.linkPin("tcx_" + dir.name + "_" + ifc.name)
			var l link.Link
			err := nsutil.Do(d.opts.Netns, func() error {
				var err error
				l, err = d.attachPinned(pin, dir.prog, func() (link.Link, error) {
					return link.AttachTCX(link.TCXOptions{Interface: ifc.index, Program: dir.prog, Attach: dir.tcx})
				})
				return err
			})
			if err == nil {
				out = append(out, &attachment{desc: desc + " (tcx)", link: l, pin: pin})
				continue
			}
			if !errors.Is(err, ebpf.ErrNotSupported) {
				return fail(fmt.Errorf("ebpf: attach %s with tcx: %w", desc, err))
			}
			d.log.Info("no tcx in this kernel: attaching with a clsact qdisc", "interface", ifc.name)
		}
		f, err := addLegacyFilter(d.opts.Netns, ifc.index, dir.parent, dir.prog)
		if err != nil {
			return fail(fmt.Errorf("ebpf: attach %s with clsact: %w", desc, err))
		}
		out = append(out, &attachment{desc: desc + " (clsact)", legacy: f})
	}
	return out, nil
}

// attachAll attaches the programs of the configured mode: the socket-LB
// programs, and the TC and XDP programs on every interface the options
// select. Any failure is returned (the first Sync fails).
func (d *Datapath) attachAll() error {
	if d.opts.Attach == AttachSocket || d.opts.SocketLB {
		if err := d.attachSocket(); err != nil {
			return err
		}
		for _, a := range d.attached {
			d.log.Info("attached", "program", a.desc)
		}
	}
	if d.opts.Attach == AttachSocket {
		return d.pruneLinkPins()
	}
	if err := d.reconcileLinks(true); err != nil {
		return err
	}
	return d.pruneLinkPins()
}

// detachAll detaches every program, the interfaces' newest first, then
// the socket-LB ones, and reports every failure.
func (d *Datapath) detachAll() error {
	var errs []error
	for _, st := range d.ifaceList() {
		if err := d.detachIface(st); err != nil {
			errs = append(errs, err)
		}
	}
	for i := len(d.attached) - 1; i >= 0; i-- {
		if err := d.attached[i].detach(d.opts.Netns); err != nil {
			errs = append(errs, err)
		}
	}
	d.attached = nil
	return errors.Join(errs...)
}

// attachXDP attaches the XDP program to ifc in the configured mode.
func (d *Datapath) attachXDP(ifc iface) (*attachment, error) {
	flags := link.XDPDriverMode
	if d.opts.XDPMode == XDPGeneric {
		flags = link.XDPGenericMode
	}
	pin := d.linkPin("xdp_" + ifc.name)
	var l link.Link
	err := nsutil.Do(d.opts.Netns, func() error {
		var err error
		l, err = d.attachPinned(pin, d.objs.LbXdp, func() (link.Link, error) {
			return link.AttachXDP(link.XDPOptions{Program: d.objs.LbXdp, Interface: ifc.index, Flags: flags})
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ebpf: attach xdp (%s) on %s: %w", d.opts.XDPMode, ifc.name, err)
	}
	return &attachment{desc: fmt.Sprintf("xdp (%s) on %s", d.opts.XDPMode, ifc.name), link: l, pin: pin}, nil
}
