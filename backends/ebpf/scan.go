package ebpf

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/lbkit/lbkit/bpf"
)

// ScanOptions says where Scan and Remove look for lbkit's eBPF state.
type ScanOptions struct {
	// Netns is the network namespace whose interfaces are read (e.g.
	// /var/run/netns/X); empty means the process's own.
	Netns string
	// PinPaths are pin directories (Options.PinPath) to look at, such as
	// the configured and the default one; empty ones are ignored. Any
	// other directory of a mounted bpffs that holds the maps of a program
	// found attached in Netns or Cgroup is found as well.
	PinPaths []string
	// Cgroup is the cgroup v2 directory of the socket-LB programs
	// (Options.Cgroup); empty means the one the datapath uses by default.
	Cgroup string
	// Logger receives what Remove removes; nil logs nothing.
	Logger *slog.Logger
}

// object is one piece of lbkit's eBPF state, and how to remove it.
type object struct {
	desc   string
	remove func() error
}

// Scan lists lbkit's eBPF state without changing anything, one line per
// object:
//
//	ebpf: tcx ingress program lb_tc_ingress (id 41, link 7) on eth0
//	ebpf: xdp program lb_xdp (id 43, link 9) on eth0
//	ebpf: clsact egress filter lb_tc_egress (id 42) on eth0
//	ebpf: cgroup connect4 program lb_connect4 (id 44, link 10) on /sys/fs/cgroup
//	ebpf: pinned link /sys/fs/bpf/lbkit/links/tcx_ingress_eth0
//	ebpf: pinned map /sys/fs/bpf/lbkit/lb_services
//
// Programs are recognised by their names (those of bpf/lb.c), so that
// programs a process attached without pinning anything are found too.
func Scan(ctx context.Context, o ScanOptions) ([]string, error) {
	objs, err := scanObjects(ctx, o)
	descs := make([]string, len(objs))
	for i, ob := range objs {
		descs[i] = ob.desc
	}
	return descs, err
}

// Remove detaches and unpins everything Scan finds: attachments first
// (so that traffic stops being balanced at once, even when a running
// process or a pin elsewhere holds the link), then the pins. Unlike
// Datapath.Cleanup it needs neither the options of the datapath that
// attached the programs nor a pin: it is what proxyd --cleanup uses. It
// is idempotent; the error names every object it could not remove.
func Remove(ctx context.Context, o ScanOptions) error {
	objs, err := scanObjects(ctx, o)
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	for _, ob := range objs {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, fmt.Errorf("ebpf: remove: %w", err))...)
		}
		if err := ob.remove(); err != nil {
			errs = append(errs, fmt.Errorf("ebpf: remove %s: %w", strings.TrimPrefix(ob.desc, "ebpf: "), err))
			continue
		}
		log.Info("removed", "object", ob.desc)
	}
	return errors.Join(errs...)
}

// scanObjects finds every object: attachments, then pins.
func scanObjects(ctx context.Context, o ScanOptions) ([]object, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ebpf: scan: %w", err)
	}
	names, err := programNames()
	if err != nil {
		return nil, err
	}
	var errs []error
	var objs []object
	// The maps used by the programs found attached: they identify pin
	// directories of this namespace's datapath outside PinPaths.
	maps := make(map[ebpf.MapID]bool)
	ifaceObjs, err := scanIfaces(o.Netns, names, maps)
	objs = append(objs, ifaceObjs...)
	if err != nil {
		errs = append(errs, err)
	}
	cgObjs, err := scanCgroup(o.Cgroup, names, maps)
	objs = append(objs, cgObjs...)
	if err != nil {
		errs = append(errs, err)
	}
	pinObjs, err := scanPins(o.PinPaths, maps)
	objs = append(objs, pinObjs...)
	if err != nil {
		errs = append(errs, err)
	}
	return objs, errors.Join(errs...)
}

// programNames returns the names of lbkit's programs.
func programNames() (map[string]bool, error) {
	spec, err := bpf.LoadLB()
	if err != nil {
		return nil, fmt.Errorf("ebpf: read the BPF object: %w", err)
	}
	names := make(map[string]bool, len(spec.Programs))
	for name := range spec.Programs {
		names[name] = true
	}
	return names, nil
}

// ourProgram reports whether the program with the given id is one of
// lbkit's, with its name and the maps it uses; false also when it is gone.
// The kernel keeps 15 characters of a name; a truncated name matches the
// full one it starts.
func ourProgram(id ebpf.ProgramID, names map[string]bool) (string, []ebpf.MapID, bool) {
	prog, err := ebpf.NewProgramFromID(id)
	if err != nil {
		return "", nil, false
	}
	defer prog.Close()
	info, err := prog.Info()
	if err != nil {
		return "", nil, false
	}
	name := info.Name
	if !names[name] {
		full := ""
		if len(name) == ebpfNameLen {
			for n := range names {
				if strings.HasPrefix(n, name) {
					full = n
				}
			}
		}
		if full == "" {
			return "", nil, false
		}
		name = full
	}
	mapIDs, _ := info.MapIDs()
	return name, mapIDs, true
}

// detachProgram detaches the program with the given id from target (an
// ifindex or a cgroup fd, in the caller's namespace) when it was attached
// without a link.
func detachProgram(id ebpf.ProgramID, target int, at ebpf.AttachType) error {
	prog, err := ebpf.NewProgramFromID(id)
	if errors.Is(err, os.ErrNotExist) {
		return nil // gone, and detached with it
	}
	if err != nil {
		return fmt.Errorf("open program %d: %w", id, err)
	}
	defer prog.Close()
	err = link.RawDetachProgram(link.RawDetachProgramOptions{Target: target, Program: prog, Attach: at})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("detach program %d: %w", id, err)
	}
	return nil
}

// detachLink detaches the link with the given id from its hook, whoever
// holds it (a process or a pin): the link stays, defunct, until its last
// holder lets go.
func detachLink(id link.ID) error {
	l, err := link.NewFromID(id)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open link %d: %w", id, err)
	}
	defer l.Close()
	if err := l.Detach(); err != nil {
		return fmt.Errorf("detach link %d: %w", id, err)
	}
	return nil
}

// ebpfNameLen is how many characters of an object name the kernel keeps.
const ebpfNameLen = 15
