package vmtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// MetaPackage is the Debian package whose kernel image dependency is the
// guest kernel unless Options.KernelPackage names one.
const MetaPackage = "linux-image-amd64"

// Kernel is a guest kernel unpacked in the cache.
type Kernel struct {
	// Package is the Debian package it came from
	// ("linux-image-6.1.0-56-amd64").
	Package string
	// Release is the kernel release (uname -r, "6.1.0-56-amd64").
	Release string
	// VMLinux is the uncompressed ELF kernel that QEMU boots.
	VMLinux string
	// ModulesDir is lib/modules/<Release>, with a modules.dep.
	ModulesDir string
}

// readyFile marks a complete kernel directory; it holds the release.
const readyFile = "ready"

// UnavailableError says why a guest cannot be run here (no QEMU, no
// kernel package, LBKIT_VMTEST=0). Run skips the test with it, or, when
// the reason is a missing program, treats it as testenv.MissingTool does
// (a failure under LBKIT_REQUIRE_TOOLS=1).
type UnavailableError struct {
	Reason string
	// Tool is the missing program when that is the reason, else "".
	Tool string
}

func (e *UnavailableError) Error() string { return "vmtest: cannot run a guest here: " + e.Reason }

func unavailable(format string, args ...any) error {
	return &UnavailableError{Reason: fmt.Sprintf(format, args...)}
}

// missingTool is an UnavailableError for a program that is not installed;
// pkg is the Debian package that provides it.
func missingTool(tool, pkg string) error {
	return &UnavailableError{Reason: fmt.Sprintf("%s is not installed (apt-get install --no-install-recommends %s, or make deps)", tool, pkg), Tool: tool}
}

// DefaultCacheDir returns os.UserCacheDir()/lbkit/vmtest.
func DefaultCacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("vmtest: no cache directory: %w", err)
	}
	return filepath.Join(dir, "lbkit", "vmtest"), nil
}

// PrepareKernel returns the kernel of package pkg (empty: the one
// MetaPackage depends on) from cacheDir, fetching and unpacking it first if
// it is not there. Concurrent callers are serialized with a lock file. When
// the package cannot be resolved or downloaded it returns an
// *UnavailableError (and falls back to a cached kernel when pkg was empty).
func PrepareKernel(ctx context.Context, cacheDir, pkg string, logf func(string, ...any)) (*Kernel, error) {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("vmtest: kernel cache: %w", err)
	}
	unlock, err := lockDir(cacheDir)
	if err != nil {
		return nil, err
	}
	defer unlock()

	if pkg == "" {
		var rerr error
		pkg, rerr = resolveKernelPackage(ctx)
		if rerr != nil {
			if k, ok := newestCached(cacheDir); ok {
				logf("vmtest: %v; using cached kernel %s", rerr, k.Package)
				return k, nil
			}
			return nil, unavailable("%v", rerr)
		}
	}
	if k, ok := cachedKernel(cacheDir, pkg); ok {
		return k, nil
	}
	logf("vmtest: fetching kernel package %s into %s (once per kernel version)", pkg, cacheDir)
	return fetchKernel(ctx, cacheDir, pkg)
}

// lockDir takes an exclusive flock on dir/.lock and returns its release.
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("vmtest: lock kernel cache: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("vmtest: lock kernel cache %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

// resolveKernelPackage asks apt which kernel image MetaPackage depends on.
func resolveKernelPackage(ctx context.Context) (string, error) {
	if _, err := exec.LookPath("apt-cache"); err != nil {
		return "", fmt.Errorf("apt-cache is not installed, so the kernel package behind %s cannot be resolved", MetaPackage)
	}
	out, err := exec.CommandContext(ctx, "apt-cache", "depends", MetaPackage).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("apt-cache depends %s: %v: %s (run apt-get update?)", MetaPackage, err, bytes.TrimSpace(out))
	}
	if pkg := parseDepends(out); pkg != "" {
		return pkg, nil
	}
	return "", fmt.Errorf("apt-cache depends %s names no linux-image package (run apt-get update?)", MetaPackage)
}

// parseDepends returns the first linux-image-* dependency in apt-cache
// depends output.
func parseDepends(out []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(strings.TrimLeft(sc.Text(), " |"))
		if len(f) == 2 && f[0] == "Depends:" && strings.HasPrefix(f[1], "linux-image-") {
			return f[1]
		}
	}
	return ""
}

// cachedKernel returns the kernel of pkg if the cache holds a complete one.
func cachedKernel(cacheDir, pkg string) (*Kernel, bool) {
	dir := filepath.Join(cacheDir, pkg)
	b, err := os.ReadFile(filepath.Join(dir, readyFile))
	if err != nil {
		return nil, false
	}
	rel := strings.TrimSpace(string(b))
	return &Kernel{
		Package:    pkg,
		Release:    rel,
		VMLinux:    filepath.Join(dir, "vmlinux"),
		ModulesDir: filepath.Join(dir, "root", "lib", "modules", rel),
	}, true
}

// newestCached returns the cached kernel with the greatest package name.
func newestCached(cacheDir string) (*Kernel, bool) {
	entries, err := os.ReadDir(cacheDir)
	if err != nil {
		return nil, false
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), "linux-image-") && !strings.Contains(e.Name(), ".tmp") {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	for i := len(names) - 1; i >= 0; i-- {
		if k, ok := cachedKernel(cacheDir, names[i]); ok {
			return k, true
		}
	}
	return nil, false
}

// fetchKernel downloads pkg, unpacks it, runs depmod and extracts vmlinux,
// in a temporary directory renamed into place when complete.
func fetchKernel(ctx context.Context, cacheDir, pkg string) (*Kernel, error) {
	depmod, err := lookTool("depmod")
	if err != nil {
		return nil, missingTool("depmod", "kmod")
	}
	for _, tool := range []string{"apt-get", "dpkg-deb"} {
		if _, err := lookTool(tool); err != nil {
			return nil, missingTool(tool, "dpkg apt")
		}
	}
	tmp, err := os.MkdirTemp(cacheDir, pkg+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("vmtest: %w", err)
	}
	keep := false
	defer func() {
		if !keep {
			os.RemoveAll(tmp)
		}
	}()
	if out, err := runIn(ctx, tmp, "apt-get", "download", pkg); err != nil {
		return nil, unavailable("apt-get download %s: %v: %s", pkg, err, lastLines(out, 3))
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return nil, fmt.Errorf("vmtest: apt-get download %s left %d .deb files, want 1", pkg, len(debs))
	}
	root := filepath.Join(tmp, "root")
	if out, err := runIn(ctx, tmp, "dpkg-deb", "-x", debs[0], root); err != nil {
		return nil, fmt.Errorf("vmtest: dpkg-deb -x %s: %v: %s", filepath.Base(debs[0]), err, lastLines(out, 3))
	}
	if err := os.Remove(debs[0]); err != nil {
		return nil, fmt.Errorf("vmtest: %w", err)
	}
	mods, _ := filepath.Glob(filepath.Join(root, "lib", "modules", "*"))
	if len(mods) != 1 {
		return nil, fmt.Errorf("vmtest: package %s holds %d lib/modules directories, want 1", pkg, len(mods))
	}
	rel := filepath.Base(mods[0])
	if out, err := runIn(ctx, tmp, depmod, "-b", root, rel); err != nil {
		return nil, fmt.Errorf("vmtest: depmod -b %s %s: %v: %s", root, rel, err, lastLines(out, 3))
	}
	vmlinuz := filepath.Join(root, "boot", "vmlinuz-"+rel)
	if err := extractVMLinux(ctx, vmlinuz, filepath.Join(tmp, "vmlinux")); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, readyFile), []byte(rel+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("vmtest: %w", err)
	}
	dir := filepath.Join(cacheDir, pkg)
	if err := os.RemoveAll(dir); err != nil { // an incomplete earlier attempt
		return nil, fmt.Errorf("vmtest: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, fmt.Errorf("vmtest: %w", err)
	}
	keep = true
	k, ok := cachedKernel(cacheDir, pkg)
	if !ok {
		return nil, errors.New("vmtest: internal error: kernel missing right after unpacking")
	}
	return k, nil
}

// lookTool finds a program in PATH or, for users whose PATH lacks them,
// in /usr/sbin and /sbin.
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in PATH, /usr/sbin or /sbin", name)
}

// runIn runs a command in dir and returns its combined output.
func runIn(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	return cmd.CombinedOutput()
}

// lastLines returns the last n non-empty lines of out, joined by " | ".
func lastLines(out []byte, n int) string {
	var lines []string
	for l := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
