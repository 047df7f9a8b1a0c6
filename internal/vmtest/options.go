package vmtest

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Defaults for Options.
const (
	DefaultTimeout = 15 * time.Minute
	DefaultMemory  = 1024 // MiB
	DefaultCPUs    = 2
	// DefaultAccel is QEMU's TCG: the build machine's /dev/kvm, when there
	// is one, is nested and cannot run a stock kernel.
	DefaultAccel = "tcg,thread=multi"
	// DefaultBuildTags selects the guest-only test files.
	DefaultBuildTags = "vmtest"
)

// DefaultPrograms are host programs copied into the guest with their
// shared libraries: iproute2's ip, which internal/netns needs (busybox's
// ip has no `netns`).
var DefaultPrograms = []string{"ip"}

// Options describe one guest run. Packages is required; everything else
// has a default.
type Options struct {
	// Packages are the Go packages whose tests run in the guest, as `go
	// test` takes them ("./backends/ipvs", relative to Dir, or import
	// paths). Each is built with `go test -c -tags <BuildTags>` and
	// CGO_ENABLED=0 and run with -test.v and Args, one after another.
	Packages []string
	// Args are passed to every test binary after -test.v, e.g.
	// {"-test.run", "TestIPVS", "-test.count", "1"}.
	Args []string
	// Env are extra "KEY=VALUE" settings for the test binaries. The guest
	// always sets LBKIT_VMTEST_GUEST=1, so tests can tell they run there.
	Env []string
	// Dir is the module root the packages are built from; empty finds the
	// go.mod above the current directory.
	Dir string
	// BuildTags replaces DefaultBuildTags.
	BuildTags string
	// Timeout bounds the whole run: building, booting and every test.
	// Zero means DefaultTimeout; Run also stops 30 s before the test's own
	// deadline (go test -timeout).
	Timeout time.Duration
	// Memory (MiB) and CPUs of the guest; zero means the defaults.
	Memory, CPUs int
	// Accel is QEMU's -accel value; empty means LBKIT_VMTEST_ACCEL from the
	// environment, else DefaultAccel.
	Accel string
	// Modules are the kernel modules loaded, with their dependencies,
	// before any test runs; nil means DefaultModules.
	Modules []string
	// Programs are host programs (names looked up in PATH, or paths) copied
	// into the guest's /usr/local/bin with their shared libraries; nil
	// means DefaultPrograms.
	Programs []string
	// KernelPackage is the Debian kernel image package; empty means the one
	// MetaPackage depends on.
	KernelPackage string
	// CacheDir holds unpacked kernels; empty means DefaultCacheDir().
	CacheDir string
	// Output receives the guest console, line by line, as it arrives; nil
	// discards it (Run sends it to the test log).
	Output io.Writer
	// Logf receives progress messages (building, fetching, booting); nil
	// discards them.
	Logf func(format string, args ...any)
}

// withDefaults checks o and fills in the defaults.
func (o Options) withDefaults() (Options, error) {
	if len(o.Packages) == 0 {
		return o, fmt.Errorf("vmtest: Options.Packages is empty: name at least one package to test in the guest")
	}
	for i, e := range o.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" || strings.ContainsAny(k, " \t\n'\"$") {
			return o, fmt.Errorf("vmtest: Options.Env[%d] = %q: want KEY=VALUE with a plain key", i, e)
		}
	}
	if o.Timeout < 0 || o.Memory < 0 || o.CPUs < 0 {
		return o, fmt.Errorf("vmtest: negative Options.Timeout (%s), Memory (%d) or CPUs (%d)", o.Timeout, o.Memory, o.CPUs)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Memory == 0 {
		o.Memory = DefaultMemory
	}
	if o.CPUs == 0 {
		o.CPUs = DefaultCPUs
	}
	if o.Accel == "" {
		o.Accel = os.Getenv("LBKIT_VMTEST_ACCEL")
	}
	if o.Accel == "" {
		o.Accel = DefaultAccel
	}
	if o.BuildTags == "" {
		o.BuildTags = DefaultBuildTags
	}
	if o.Modules == nil {
		o.Modules = DefaultModules
	}
	if o.Programs == nil {
		o.Programs = DefaultPrograms
	}
	if o.CacheDir == "" {
		dir, err := DefaultCacheDir()
		if err != nil {
			return o, err
		}
		o.CacheDir = dir
	}
	if o.Dir == "" {
		dir, err := moduleRoot()
		if err != nil {
			return o, err
		}
		o.Dir = dir
	}
	if o.Output == nil {
		o.Output = io.Discard
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return o, nil
}

// moduleRoot returns the nearest directory at or above the working
// directory that holds a go.mod.
func moduleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("vmtest: %w", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("vmtest: no go.mod at or above %s: set Options.Dir", wd)
		}
	}
}
