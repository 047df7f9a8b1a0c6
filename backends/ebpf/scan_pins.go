package ebpf

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/lbkit/lbkit/bpf"
)

// markerMap is the pinned map that marks a pin directory of lbkit's.
const markerMap = bpf.LBMapLbServices

// scanDepth bounds how deep Scan looks into a bpffs mount for pin
// directories.
const scanDepth = 4

// scanPins finds the pins under paths and under every directory of a
// mounted bpffs that pins one of maps (the maps of programs found attached
// in the namespace). Links come first, then maps, then the directory.
func scanPins(paths []string, maps map[ebpf.MapID]bool) ([]object, error) {
	var dirs []string
	for _, p := range paths {
		if p != "" {
			dirs = append(dirs, filepath.Clean(p))
		}
	}
	var errs []error
	if len(maps) > 0 {
		found, err := pinDirsOf(maps)
		if err != nil {
			errs = append(errs, err)
		}
		dirs = append(dirs, found...)
	}
	slices.Sort(dirs)
	dirs = slices.Compact(dirs)
	names, err := loadSpecNames()
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	var objs []object
	for _, dir := range dirs {
		if !onBPFFS(dir) {
			continue
		}
		ldir := filepath.Join(dir, linksDir)
		entries, err := os.ReadDir(ldir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("ebpf: scan pinned links: %w", err))
		}
		for _, e := range entries {
			p := filepath.Join(ldir, e.Name())
			objs = append(objs, object{desc: "ebpf: pinned link " + p, remove: func() error { return unpinLink(p) }})
		}
		for _, name := range names {
			p := filepath.Join(dir, name)
			if _, err := os.Lstat(p); err != nil {
				continue
			}
			objs = append(objs, object{desc: "ebpf: pinned map " + p, remove: func() error { return removeFile(p) }})
		}
		objs = append(objs, object{desc: "ebpf: pin directory " + dir, remove: func() error {
			return errors.Join(removeFile(ldir), removeFile(dir))
		}})
	}
	return objs, errors.Join(errs...)
}

// unpinLink removes a link's pin; the link is detached when nothing else
// holds it.
func unpinLink(p string) error {
	if l, err := link.LoadPinnedLink(p, nil); err == nil {
		uerr := l.Unpin()
		cerr := l.Close()
		if err := errors.Join(uerr, cerr); err != nil {
			return err
		}
	}
	return removeFile(p)
}

// removeFile removes p; a missing p is no error.
func removeFile(p string) error {
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// onBPFFS reports whether dir exists on a bpffs.
func onBPFFS(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && uint32(st.Type) == unix.BPF_FS_MAGIC
}

// pinDirsOf returns the directories of every mounted bpffs (this process
// sees) that pin lbkit's marker map with one of the ids in maps.
func pinDirsOf(maps map[ebpf.MapID]bool) ([]string, error) {
	mounts, err := bpffsMounts()
	if err != nil {
		return nil, err
	}
	var out []string
	var walk func(dir string, depth int)
	walk = func(dir string, depth int) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return
		}
		for _, e := range entries {
			p := filepath.Join(dir, e.Name())
			switch {
			case e.IsDir() && depth < scanDepth:
				walk(p, depth+1)
			case e.Name() == markerMap:
				if id, ok := pinnedMapID(p); ok && maps[id] {
					out = append(out, dir)
				}
			}
		}
	}
	for _, m := range mounts {
		walk(m, 0)
	}
	return out, nil
}

// pinnedMapID returns the id of the map pinned at p.
func pinnedMapID(p string) (ebpf.MapID, bool) {
	m, err := ebpf.LoadPinnedMap(p, &ebpf.LoadPinOptions{ReadOnly: true})
	if err != nil {
		return 0, false
	}
	defer m.Close()
	info, err := m.Info()
	if err != nil {
		return 0, false
	}
	return info.ID()
}

// bpffsMounts lists the mount points of bpffs in this process's mount
// namespace.
func bpffsMounts() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("ebpf: list bpffs mounts: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options... - fstype source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields := strings.Fields(pre)
		if !ok || len(fields) < 5 || !strings.HasPrefix(post, "bpf ") {
			continue
		}
		out = append(out, unescapeMount(fields[4]))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("ebpf: list bpffs mounts: %w", err)
	}
	return out, nil
}

// unescapeMount undoes the octal escapes (\040 for a space) of mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
