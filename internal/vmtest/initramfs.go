package vmtest

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// guestModuleDir is where the initramfs keeps the .ko files it loads.
const guestModuleDir = "/lib/modules/vmtest"

// initramfs is what goes into one guest's initramfs.
type initramfs struct {
	opts    Options
	kernel  *Kernel
	tests   []testBinary
	nonce   string
	busybox string
}

// build writes the initramfs to dst as an uncompressed newc cpio (the
// kernel unpacks that fastest; under TCG decompression is slow).
func (f *initramfs) build(ctx context.Context, dst string) error {
	a := newArchive()
	for _, d := range []string{"proc", "sys", "dev", "run", "tmp", "root", "etc", "bin", "tests", "usr/local/bin"} {
		a.dir(d)
	}
	a.symlink("var/run", "../run")
	a.copyFile("bin/busybox", f.busybox, 0o755)

	idx, err := loadModuleIndex(f.kernel.ModulesDir)
	if err != nil {
		return err
	}
	order, err := idx.loadOrder(f.opts.Modules)
	if err != nil {
		return fmt.Errorf("%w (kernel %s)", err, f.kernel.Release)
	}
	var mods []string
	for _, p := range order {
		name := moduleName(p) + ".ko"
		a.copyFile(guestModuleDir+"/"+name, filepath.Join(f.kernel.ModulesDir, p), 0o644)
		mods = append(mods, name)
	}
	for _, prog := range f.opts.Programs {
		if err := addProgram(ctx, a, prog); err != nil {
			return err
		}
	}
	for _, t := range f.tests {
		a.copyFile("tests/"+t.name, t.path, 0o755)
	}
	a.file("init", 0o755, []byte(f.initScript(mods)))

	out, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("vmtest: initramfs: %w", err)
	}
	if err := a.writeTo(out); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// initScript is the guest's /init: mount the pseudo file systems, load the
// modules, run every test binary, report, power off.
func (f *initramfs) initScript(mods []string) string {
	var b strings.Builder
	m := f.nonce
	fmt.Fprintf(&b, `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/usr/local/bin:/bin HOME=/root TMPDIR=/tmp LBKIT_VMTEST_GUEST=1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs tmpfs /tmp
for m in %s; do
	insmod %s/$m || echo "%s insmod-failed $m"
done
ip link set lo up
echo "%s booted $(uname -r)"
cd /tmp
`, strings.Join(mods, " "), guestModuleDir, m, m)
	for _, e := range f.opts.Env {
		fmt.Fprintf(&b, "export %s\n", shellQuoteEnv(e))
	}
	args := []string{"-test.v"}
	args = append(args, f.opts.Args...)
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = shellQuote(a)
	}
	for _, t := range f.tests {
		fmt.Fprintf(&b, "echo \"%s start %s\"\n/tests/%s %s\necho \"%s exit %s $?\"\n",
			m, t.name, t.name, strings.Join(quoted, " "), m, t.name)
	}
	fmt.Fprintf(&b, "echo \"%s done\"\nsync\npoweroff -f\n", m)
	return b.String()
}

// shellQuote quotes s for sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// shellQuoteEnv quotes the value of KEY=VALUE.
func shellQuoteEnv(kv string) string {
	k, v, _ := strings.Cut(kv, "=")
	return k + "=" + shellQuote(v)
}

// findBusybox returns a statically linked busybox from the host.
func findBusybox() (string, error) {
	p, err := exec.LookPath("busybox")
	if err != nil {
		return "", missingTool("busybox", "busybox-static")
	}
	static, err := isStatic(p)
	if err != nil {
		return "", fmt.Errorf("vmtest: %s: %w", p, err)
	}
	if !static {
		return "", &UnavailableError{Reason: fmt.Sprintf("%s is dynamically linked; the guest needs busybox-static (apt-get install busybox-static, or make deps)", p), Tool: "busybox-static"}
	}
	return p, nil
}

// isStatic reports whether the ELF file at p has no program interpreter.
func isStatic(p string) (bool, error) {
	f, err := elf.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return false, nil
		}
	}
	return true, nil
}

// addProgram copies a host program into /usr/local/bin with the shared
// libraries ldd lists, at their own paths.
func addProgram(ctx context.Context, a *archive, prog string) error {
	p, err := exec.LookPath(prog)
	if err != nil {
		return &UnavailableError{Reason: fmt.Sprintf("program %q for the guest is not installed: %v", prog, err), Tool: prog}
	}
	a.copyFile("usr/local/bin/"+filepath.Base(p), p, 0o755)
	static, err := isStatic(p)
	if err != nil {
		return fmt.Errorf("vmtest: %s: %w", p, err)
	}
	if static {
		return nil
	}
	libs, err := sharedLibs(ctx, p)
	if err != nil {
		return err
	}
	for _, lib := range libs {
		if !a.has(lib) {
			a.copyFile(lib, lib, 0o755)
		}
	}
	return nil
}

// sharedLibs returns the absolute library paths `ldd p` prints, the
// dynamic loader included.
func sharedLibs(ctx context.Context, p string) ([]string, error) {
	out, err := exec.CommandContext(ctx, "ldd", p).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("vmtest: ldd %s: %v: %s", p, err, bytes.TrimSpace(out))
	}
	return parseLdd(out), nil
}

// parseLdd extracts absolute paths from ldd output lines such as
// "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and
// "/lib64/ld-linux-x86-64.so.2 (0x...)"; the vDSO has none.
func parseLdd(out []byte) []string {
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		for i, w := range f {
			if strings.HasPrefix(w, "/") && (i == 0 || f[i-1] == "=>") {
				libs = append(libs, w)
				break
			}
		}
	}
	return libs
}
