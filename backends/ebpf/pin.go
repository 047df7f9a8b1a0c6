package ebpf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// linksDir is the subdirectory of Options.PinPath that holds pinned links.
const linksDir = "links"

// checkBPFFS creates dir if needed and checks that it is on a bpffs.
func checkBPFFS(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("ebpf: Options.PinPath: %w", err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("ebpf: Options.PinPath: %w", err)
	}
	if uint32(st.Type) != unix.BPF_FS_MAGIC {
		return fmt.Errorf("ebpf: Options.PinPath %s is not on a bpffs (mount -t bpf bpf /sys/fs/bpf)", dir)
	}
	return nil
}

// CheckPinPath checks, without creating anything, that dir can hold
// pinned maps and links: an absolute path whose nearest existing directory
// (dir itself, else its parent, and so on) is on a bpffs. The error says
// how to mount one.
func CheckPinPath(dir string) error {
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("pin path %q is not an absolute path on a bpffs such as /sys/fs/bpf", dir)
	}
	p := filepath.Clean(dir)
	for {
		var st unix.Statfs_t
		err := unix.Statfs(p, &st)
		if err == nil {
			if uint32(st.Type) == unix.BPF_FS_MAGIC {
				return nil
			}
			return fmt.Errorf("pin path %s is not on a bpffs (%s is on a file system of type %#x): "+
				"mount one with `mount -t bpf bpffs /sys/fs/bpf` (`ip netns exec` remounts /sys without it: "+
				"mount it there too, or program the namespace with --netns / Options.Netns instead), "+
				"pin elsewhere on a bpffs, or pin nothing", dir, p, st.Type)
		}
		if !errors.Is(err, unix.ENOENT) || p == "/" {
			return fmt.Errorf("pin path %s: %w", dir, err)
		}
		p = filepath.Dir(p)
	}
}

// linkPin returns the pin path of a link named name ("" when not pinning).
func (d *Datapath) linkPin(name string) string {
	if d.opts.PinPath == "" {
		return ""
	}
	return filepath.Join(d.opts.PinPath, linksDir, strings.NewReplacer("/", "_", " ", "_").Replace(name))
}

// attachPinned returns the link pinned at pin with its program replaced by
// prog (a previous process attached it: replacing keeps the hook occupied
// without a gap), or attaches anew with attach and pins the result.
func (d *Datapath) attachPinned(pin string, prog *ebpf.Program, attach func() (link.Link, error)) (link.Link, error) {
	if pin != "" {
		if l, err := link.LoadPinnedLink(pin, nil); err == nil {
			if err := l.Update(prog); err == nil {
				return l, nil
			}
			// A link whose hook went away (the interface was
			// deleted) or that cannot be updated: start over.
			_ = l.Unpin()
			_ = l.Close()
		} else if !errors.Is(err, os.ErrNotExist) {
			_ = os.Remove(pin)
		}
	}
	l, err := attach()
	if err != nil {
		return nil, err
	}
	if pin == "" {
		return l, nil
	}
	if err := os.MkdirAll(filepath.Dir(pin), 0o700); err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("pin link: %w", err)
	}
	if err := l.Pin(pin); err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("pin link to %s: %w", pin, err)
	}
	return l, nil
}

// removePins detaches every link pinned under PinPath and removes every
// pinned map, also those a previous process left; the directories go too.
func (d *Datapath) removePins() error {
	if d.opts.PinPath == "" {
		return nil
	}
	var errs []error
	ldir := filepath.Join(d.opts.PinPath, linksDir)
	entries, err := os.ReadDir(ldir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	for _, e := range entries {
		p := filepath.Join(ldir, e.Name())
		if l, err := link.LoadPinnedLink(p, nil); err == nil {
			_ = l.Unpin()
			_ = l.Close()
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := os.Remove(ldir); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	spec, err := loadSpecNames()
	if err != nil {
		errs = append(errs, err)
	}
	for _, name := range spec {
		if err := os.Remove(filepath.Join(d.opts.PinPath, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := os.Remove(d.opts.PinPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("remove %s (not empty?): %w", d.opts.PinPath, err))
	}
	if len(errs) > 0 {
		return fmt.Errorf("ebpf: remove pins: %w", errors.Join(errs...))
	}
	return nil
}

// pruneLinkPins detaches the links a previous process pinned that this one
// did not take over: those of interfaces that went away while no process
// ran, or that the options no longer select, and of hooks the attach mode
// no longer uses.
func (d *Datapath) pruneLinkPins() error {
	if d.opts.PinPath == "" {
		return nil
	}
	ours := make(map[string]bool)
	for _, a := range d.attached {
		ours[a.pin] = true
	}
	for _, st := range d.ifaces {
		for _, a := range append(slices.Clone(st.tc), st.xdp) {
			if a != nil {
				ours[a.pin] = true
			}
		}
	}
	ldir := filepath.Join(d.opts.PinPath, linksDir)
	entries, err := os.ReadDir(ldir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ebpf: list pinned links: %w", err)
	}
	for _, e := range entries {
		p := filepath.Join(ldir, e.Name())
		if ours[p] {
			continue
		}
		if l, err := link.LoadPinnedLink(p, nil); err == nil {
			_ = l.Unpin()
			_ = l.Close()
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("ebpf: remove stale pinned link: %w", err)
		}
		d.log.Info("removed a stale pinned link", "pin", p)
	}
	return nil
}
