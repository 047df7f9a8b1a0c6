package ebpf

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// ErrNoCgroupPath is the error of a socket-LB datapath without
// Options.CgroupPath: there is no default, because the only one would be
// every process of the machine.
var ErrNoCgroupPath = errors.New("socket-LB needs a cgroup: it translates the connections of every process " +
	"in the cgroup it attaches to, whatever network namespace they use, and the default would be the cgroup v2 root, " +
	"every process of the machine; give the cgroup v2 directory of the clients to balance " +
	"(create one and move them into it), or the root itself to mean every process")

// cgroupRoot returns the cgroup v2 directory the socket-LB programs attach
// to: Options.CgroupPath, or (for scans that have no options) the cgroup
// v2 root.
func (d *Datapath) cgroupRoot() string {
	if d.opts.CgroupPath != "" {
		return d.opts.CgroupPath
	}
	return cgroup2Root()
}

// cgroup2Root returns where the cgroup v2 hierarchy is mounted:
// /sys/fs/cgroup on a unified hierarchy, /sys/fs/cgroup/unified on a
// hybrid one.
func cgroup2Root() string {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return "/sys/fs/cgroup"
	}
	return "/sys/fs/cgroup/unified"
}

// checkCgroup checks that dir is a cgroup v2 directory.
func checkCgroup(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("cgroup %s: %w (create it, e.g. with mkdir under %s, and move the client processes into it)", dir, err, cgroup2Root())
	}
	if st.Type != unix.CGROUP2_SUPER_MAGIC {
		return fmt.Errorf("%s is not a cgroup v2 directory (the cgroup v2 hierarchy is mounted at %s)", dir, cgroup2Root())
	}
	return nil
}

// socketHooks are the cgroup hooks of the socket-LB programs, with the
// program each takes: attachSocket attaches them, the scan looks for them.
var socketHooks = []struct {
	name string
	at   ebpf.AttachType
	prog func(*objects) *ebpf.Program
}{
	{"connect4", ebpf.AttachCGroupInet4Connect, func(o *objects) *ebpf.Program { return o.LbConnect4 }},
	{"connect6", ebpf.AttachCGroupInet6Connect, func(o *objects) *ebpf.Program { return o.LbConnect6 }},
	{"sendmsg4", ebpf.AttachCGroupUDP4Sendmsg, func(o *objects) *ebpf.Program { return o.LbSendmsg4 }},
	{"sendmsg6", ebpf.AttachCGroupUDP6Sendmsg, func(o *objects) *ebpf.Program { return o.LbSendmsg6 }},
	{"recvmsg4", ebpf.AttachCGroupUDP4Recvmsg, func(o *objects) *ebpf.Program { return o.LbRecvmsg4 }},
	{"recvmsg6", ebpf.AttachCGroupUDP6Recvmsg, func(o *objects) *ebpf.Program { return o.LbRecvmsg6 }},
	{"getpeername4", ebpf.AttachCgroupInet4GetPeername, func(o *objects) *ebpf.Program { return o.LbGetpeername4 }},
	{"getpeername6", ebpf.AttachCgroupInet6GetPeername, func(o *objects) *ebpf.Program { return o.LbGetpeername6 }},
}

// attachSocket attaches the socket-LB programs to the cgroup: they apply
// to every socket of every process in it and its descendants, whatever
// network namespace the socket lives in.
func (d *Datapath) attachSocket() error {
	cg := d.cgroupRoot()
	for _, h := range socketHooks {
		prog := h.prog(d.objs)
		pin := d.linkPin("cgroup_" + h.name)
		l, err := d.attachPinned(pin, prog, func() (link.Link, error) {
			return link.AttachCgroup(link.CgroupOptions{Path: cg, Attach: h.at, Program: prog})
		})
		if err != nil {
			return fmt.Errorf("ebpf: attach socket-LB %s to cgroup %s: %w", h.name, cg, err)
		}
		d.attached = append(d.attached, &attachment{desc: fmt.Sprintf("cgroup %s on %s", h.name, cg), link: l, pin: pin})
	}
	return nil
}
