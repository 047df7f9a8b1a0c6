package ebpf

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// socketHooks are the cgroup hooks the socket-LB programs attach to.
var socketHooks = []struct {
	name string
	at   ebpf.AttachType
}{
	{"connect4", ebpf.AttachCGroupInet4Connect},
	{"connect6", ebpf.AttachCGroupInet6Connect},
	{"sendmsg4", ebpf.AttachCGroupUDP4Sendmsg},
	{"sendmsg6", ebpf.AttachCGroupUDP6Sendmsg},
	{"recvmsg4", ebpf.AttachCGroupUDP4Recvmsg},
	{"recvmsg6", ebpf.AttachCGroupUDP6Recvmsg},
	{"getpeername4", ebpf.AttachCgroupInet4GetPeername},
	{"getpeername6", ebpf.AttachCgroupInet6GetPeername},
}

// scanCgroup finds lbkit's socket-LB programs attached directly to the
// cgroup dir (empty: the datapath's default). The maps the programs use
// are added to maps. A missing cgroup holds nothing.
func scanCgroup(dir string, names map[string]bool, maps map[ebpf.MapID]bool) ([]object, error) {
	if dir == "" {
		dir = (&Datapath{}).cgroupRoot()
	}
	f, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ebpf: scan cgroup: %w", err)
	}
	defer f.Close()
	var objs []object
	for _, hook := range socketHooks {
		res, err := link.QueryPrograms(link.QueryOptions{Target: int(f.Fd()), Attach: hook.at})
		if err != nil {
			continue // not a cgroup v2 directory, or no such hook
		}
		for _, p := range res.Programs {
			name, mapIDs, ok := ourProgram(p.ID, names)
			if !ok {
				continue
			}
			addMaps(maps, mapIDs)
			id, at := p.ID, hook.at
			if lid, ok := p.LinkID(); ok {
				objs = append(objs, object{
					desc:   fmt.Sprintf("ebpf: cgroup %s program %s (id %d, link %d) on %s", hook.name, name, id, lid, dir),
					remove: func() error { return detachLink(lid) },
				})
				continue
			}
			objs = append(objs, object{
				desc:   fmt.Sprintf("ebpf: cgroup %s program %s (id %d) on %s", hook.name, name, id, dir),
				remove: func() error { return detachFromCgroup(dir, id, at) },
			})
		}
	}
	return objs, nil
}

// detachFromCgroup detaches a program from a cgroup when the kernel did not
// say by which link it is attached: through the link when one of the
// machine's links attaches it there (the cgroup id is the directory's
// inode number), else as a program attached without a link.
func detachFromCgroup(dir string, id ebpf.ProgramID, at ebpf.AttachType) error {
	f, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("stat %s: %w", dir, err)
	}
	var it link.Iterator
	defer it.Close()
	for it.Next() {
		info, err := it.Link.Info()
		if err != nil || info.Type != link.CgroupType || info.Program != id {
			continue
		}
		if cg := info.Cgroup(); cg != nil && cg.CgroupId == st.Ino {
			if err := it.Link.Detach(); err != nil {
				return fmt.Errorf("detach link %d: %w", info.ID, err)
			}
			return nil
		}
	}
	return detachProgram(id, int(f.Fd()), at)
}
