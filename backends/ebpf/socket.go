package ebpf

import (
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// cgroupRoot returns the cgroup v2 directory the socket-LB programs attach
// to: Options.Cgroup, or the cgroup v2 root (/sys/fs/cgroup on a unified
// hierarchy, /sys/fs/cgroup/unified on a hybrid one).
func (d *Datapath) cgroupRoot() string {
	if d.opts.Cgroup != "" {
		return d.opts.Cgroup
	}
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return "/sys/fs/cgroup"
	}
	return "/sys/fs/cgroup/unified"
}

// attachSocket attaches the socket-LB programs to the cgroup: they apply
// to every socket of every process in it and its descendants, whatever
// network namespace the socket lives in.
func (d *Datapath) attachSocket() error {
	cg := d.cgroupRoot()
	for _, h := range []struct {
		name string
		prog *ebpf.Program
		at   ebpf.AttachType
	}{
		{"connect4", d.objs.LbConnect4, ebpf.AttachCGroupInet4Connect},
		{"connect6", d.objs.LbConnect6, ebpf.AttachCGroupInet6Connect},
		{"sendmsg4", d.objs.LbSendmsg4, ebpf.AttachCGroupUDP4Sendmsg},
		{"sendmsg6", d.objs.LbSendmsg6, ebpf.AttachCGroupUDP6Sendmsg},
		{"recvmsg4", d.objs.LbRecvmsg4, ebpf.AttachCGroupUDP4Recvmsg},
		{"recvmsg6", d.objs.LbRecvmsg6, ebpf.AttachCGroupUDP6Recvmsg},
		{"getpeername4", d.objs.LbGetpeername4, ebpf.AttachCgroupInet4GetPeername},
		{"getpeername6", d.objs.LbGetpeername6, ebpf.AttachCgroupInet6GetPeername},
	} {
		pin := d.linkPin("cgroup_" + h.name)
		l, err := d.attachPinned(pin, h.prog, func() (link.Link, error) {
			return link.AttachCgroup(link.CgroupOptions{Path: cg, Attach: h.at, Program: h.prog})
		})
		if err != nil {
			return fmt.Errorf("ebpf: attach socket-LB %s to cgroup %s: %w", h.name, cg, err)
		}
		d.attached = append(d.attached, &attachment{desc: fmt.Sprintf("cgroup %s on %s", h.name, cg), link: l, pin: pin})
	}
	return nil
}
