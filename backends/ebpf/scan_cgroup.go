package ebpf

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

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
		// An error means not a cgroup v2 directory, or no such hook.
		for _, p := range queryOurs(int(f.Fd()), hook.at, names, maps) {
			id, at := p.id, hook.at
			objs = append(objs, p.object(fmt.Sprintf("ebpf: cgroup %s program %s", hook.name, p.name), "on "+dir,
				func() error { return detachFromCgroup(dir, id, at) }))
		}
	}
	return objs, nil
}

// attachedProgram is one of lbkit's programs found attached at a hook.
type attachedProgram struct {
	name    string
	id      ebpf.ProgramID
	link    link.ID
	hasLink bool
}

// queryOurs lists lbkit's programs attached to target (an interface index
// or a cgroup fd) at the hook at; a hook the kernel does not know, or a
// target without it, holds none. The maps they use are added to maps.
func queryOurs(target int, at ebpf.AttachType, names map[string]bool, maps map[ebpf.MapID]bool) []attachedProgram {
	res, err := link.QueryPrograms(link.QueryOptions{Target: target, Attach: at})
	if err != nil {
		return nil
	}
	var out []attachedProgram
	for _, p := range res.Programs {
		name, mapIDs, ok := ourProgram(p.ID, names)
		if !ok {
			continue
		}
		addMaps(maps, mapIDs)
		lid, hasLink := p.LinkID()
		out = append(out, attachedProgram{name: name, id: p.ID, link: lid, hasLink: hasLink})
	}
	return out
}

// object describes p as "WHAT (id N[, link L]) WHERE"; it is removed
// through its link when it has one, else with detach.
func (p attachedProgram) object(what, where string, detach func() error) object {
	if p.hasLink {
		lid := p.link
		return object{
			desc:   fmt.Sprintf("%s (id %d, link %d) %s", what, p.id, lid, where),
			remove: func() error { return detachLink(lid) },
		}
	}
	return object{desc: fmt.Sprintf("%s (id %d) %s", what, p.id, where), remove: detach}
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
