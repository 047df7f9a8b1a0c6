package ebpf

import (
	"errors"
	"fmt"
	"net"
	"slices"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"go.uber.org/zap"

	"github.com/lbkit/lbkit/internal/nsutil"
)

// attachment is one program attached somewhere; detach undoes it.
type attachment struct {
	desc   string
	link   link.Link // TCX, XDP or cgroup link
	pinned bool
	legacy *legacyFilter
}

// detach removes the attachment.
func (a *attachment) detach(netns string) error {
	if a.link != nil {
		if a.pinned {
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

// iface is an interface of the programmed namespace.
type iface struct {
	name  string
	index int
	// bridged: a bridge or a bridge port, where XDP is not attached
	// (traffic through a bridge is balanced by TC).
	bridged bool
}

// interfaces resolves the configured interfaces in the namespace, or lists
// every non-loopback one when none are configured.
func (d *Datapath) interfaces() ([]iface, error) {
	var out []iface
	err := nsutil.Do(d.opts.Netns, func() error {
		all, err := netlink.LinkList()
		if err != nil {
			return fmt.Errorf("list interfaces: %w", err)
		}
		toIface := func(l netlink.Link) iface {
			a := l.Attrs()
			return iface{name: a.Name, index: a.Index, bridged: a.MasterIndex != 0 || l.Type() == "bridge"}
		}
		if len(d.opts.Interfaces) == 0 {
			for _, l := range all {
				if l.Attrs().Flags&net.FlagLoopback == 0 {
					out = append(out, toIface(l))
				}
			}
			return nil
		}
		for _, name := range d.opts.Interfaces {
			j := slices.IndexFunc(all, func(l netlink.Link) bool { return l.Attrs().Name == name })
			if j < 0 {
				return fmt.Errorf("interface %q (Options.Interfaces) does not exist", name)
			}
			out = append(out, toIface(all[j]))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ebpf: %w", err)
	}
	return out, nil
}

// attachTC attaches ingress and egress programs to ifc: with TCX unless
// the kernel lacks it or Options.LegacyTC is set, else with a clsact qdisc.
func (d *Datapath) attachTC(ifc iface) error {
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
				d.attached = append(d.attached, &attachment{desc: desc + " (tcx)", link: l, pinned: pin != ""})
				continue
			}
			if !errors.Is(err, ebpf.ErrNotSupported) {
				return fmt.Errorf("ebpf: attach %s with tcx: %w", desc, err)
			}
			d.log.Info("no tcx in this kernel: attaching with a clsact qdisc", zap.String("interface", ifc.name))
		}
		f, err := addLegacyFilter(d.opts.Netns, ifc.index, dir.parent, dir.prog)
		if err != nil {
			return fmt.Errorf("ebpf: attach %s with clsact: %w", desc, err)
		}
		d.attached = append(d.attached, &attachment{desc: desc + " (clsact)", legacy: f})
	}
	return nil
}

// attachAll attaches the programs of the configured mode.
func (d *Datapath) attachAll() error {
	if d.opts.Attach == AttachSocket || d.opts.SocketLB {
		if err := d.attachSocket(); err != nil {
			return err
		}
	}
	if d.opts.Attach == AttachSocket {
		return nil
	}
	ifcs, err := d.interfaces()
	if err != nil {
		return err
	}
	for _, ifc := range ifcs {
		if d.opts.Attach == AttachXDP && !ifc.bridged {
			if err := d.attachXDP(ifc); err != nil {
				return err
			}
		}
		if err := d.attachTC(ifc); err != nil {
			return err
		}
	}
	for _, a := range d.attached {
		d.log.Info("attached", zap.String("program", a.desc))
	}
	return nil
}

// detachAll detaches every program, newest first, and reports every
// failure.
func (d *Datapath) detachAll() error {
	var errs []error
	for i := len(d.attached) - 1; i >= 0; i-- {
		if err := d.attached[i].detach(d.opts.Netns); err != nil {
			errs = append(errs, err)
		}
	}
	d.attached = nil
	return errors.Join(errs...)
}

// attachXDP attaches the XDP program to ifc in the configured mode.
func (d *Datapath) attachXDP(ifc iface) error {
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
		return fmt.Errorf("ebpf: attach xdp (%s) on %s: %w", d.opts.XDPMode, ifc.name, err)
	}
	d.attached = append(d.attached, &attachment{desc: fmt.Sprintf("xdp (%s) on %s", d.opts.XDPMode, ifc.name), link: l, pinned: pin != ""})
	return nil
}
