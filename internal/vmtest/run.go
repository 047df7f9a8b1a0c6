package vmtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lbkit/lbkit/internal/testenv"
)

// Result is what a guest run reported.
type Result struct {
	// Booted: /init started; Release is the guest's uname -r.
	Booted  bool
	Release string
	// ModuleErrors names modules that failed to load.
	ModuleErrors []string
	// Tests holds the exit code of every test binary that finished, in
	// run order.
	Tests []TestResult
	// Completed: /init ran every test binary and reached the end.
	Completed bool
	// Duration is the time from QEMU's start to its exit.
	Duration time.Duration
}

// TestResult is the exit code of one test binary in the guest.
type TestResult struct {
	Binary   string
	ExitCode int
}

// Err returns nil when the guest completed and every test binary passed,
// else an error saying what went wrong.
func (r *Result) Err() error {
	var errs []error
	if !r.Booted {
		errs = append(errs, errors.New("the guest never reached /init"))
	}
	if len(r.ModuleErrors) > 0 {
		errs = append(errs, fmt.Errorf("kernel modules failed to load: %s", strings.Join(r.ModuleErrors, ", ")))
	}
	for _, t := range r.Tests {
		if t.ExitCode != 0 {
			errs = append(errs, fmt.Errorf("%s exited with %d", t.Binary, t.ExitCode))
		}
	}
	if r.Booted && !r.Completed {
		errs = append(errs, errors.New("the guest stopped before all test binaries finished (a panic or a hang?)"))
	}
	return errors.Join(errs...)
}

// Check returns an *UnavailableError when guests cannot run here at all:
// LBKIT_VMTEST=0, or QEMU or a static busybox missing. The kernel is
// checked later, by Boot.
func Check() error {
	if v := os.Getenv("LBKIT_VMTEST"); v == "0" || strings.EqualFold(v, "off") {
		return unavailable("LBKIT_VMTEST=%s", v)
	}
	if _, err := exec.LookPath(QEMU); err != nil {
		return missingTool(QEMU, "qemu-system-x86")
	}
	_, err := findBusybox()
	return err
}

// Boot builds the test binaries, prepares the kernel and initramfs, runs
// the guest and returns what it reported. The error is an *UnavailableError
// when the guest cannot run here, any other error when something failed
// before or while the guest ran (a timeout included); a guest that ran but
// whose tests failed returns a Result whose Err is non-nil and a nil error.
func Boot(ctx context.Context, opts Options) (*Result, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := Check(); err != nil {
		return nil, err
	}
	busybox, err := findBusybox()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, o.Timeout, fmt.Errorf("vmtest: Options.Timeout %s", o.Timeout))
	defer cancel()

	kernel, err := PrepareKernel(ctx, o.CacheDir, o.KernelPackage, o.Logf)
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "lbkit-vmtest-")
	if err != nil {
		return nil, fmt.Errorf("vmtest: %w", err)
	}
	defer os.RemoveAll(work)
	tests, err := buildTests(ctx, o, work)
	if err != nil {
		return nil, err
	}
	nonce, err := newNonce()
	if err != nil {
		return nil, err
	}
	img := &initramfs{opts: o, kernel: kernel, tests: tests, nonce: nonce, busybox: busybox}
	initrd := filepath.Join(work, "initramfs.cpio")
	if err := img.build(ctx, initrd); err != nil {
		return nil, err
	}
	tsc := hostTSCkHz()
	o.Logf("vmtest: booting %s (%s, %d CPUs, %d MiB, TSC %d kHz) with %d test binaries", kernel.Package, o.Accel, o.CPUs, o.Memory, tsc, len(tests))
	c := &console{nonce: nonce, out: o.Output}
	start := time.Now()
	qerr := runQEMU(ctx, o, kernel, initrd, tsc, c)
	res, tail := c.snapshot()
	res.Duration = time.Since(start)
	if qerr != nil {
		return &res, fmt.Errorf("%w; last console lines:\n%s", qerr, strings.Join(tail, "\n"))
	}
	return &res, nil
}

// newNonce returns a random marker for /init's report lines.
func newNonce() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("vmtest: nonce: %w", err)
	}
	return "vmtest-" + hex.EncodeToString(b[:]), nil
}

// Run runs the guest for a host test: it skips t when a guest cannot run
// here (with the reason), streams the guest console into the test log, and
// fails t when the guest fails to complete or any test in it fails. It
// returns the result (nil when skipped or when Boot failed).
func Run(t testing.TB, opts Options) *Result {
	t.Helper()
	if err := Check(); err != nil {
		skipUnavailable(t, err)
	}
	if opts.Output == nil {
		opts.Output = &logWriter{t: t}
	}
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	// Stop the guest before go test's own -timeout would kill the test
	// binary, so that the failure says what the guest was doing.
	if dt, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if deadline, ok := dt.Deadline(); ok {
			limit := time.Until(deadline) - 30*time.Second
			if opts.Timeout == 0 {
				opts.Timeout = DefaultTimeout
			}
			if limit > 0 && limit < opts.Timeout {
				opts.Timeout = limit
			}
		}
	}
	res, err := Boot(t.Context(), opts)
	if err != nil {
		skipUnavailable(t, err)
		t.Fatal(err)
	}
	t.Logf("vmtest: guest %s ran %d test binaries in %s", res.Release, len(res.Tests), res.Duration.Round(time.Millisecond))
	if err := res.Err(); err != nil {
		t.Errorf("vmtest: guest run failed: %v", err)
	}
	return res
}

// skipUnavailable ends the test when err is an *UnavailableError: a skip,
// or testenv.MissingTool when a program is missing. It returns for any
// other error.
func skipUnavailable(t testing.TB, err error) {
	t.Helper()
	var unav *UnavailableError
	if !errors.As(err, &unav) {
		return
	}
	if unav.Tool != "" {
		testenv.MissingTool(t, err.Error())
	}
	t.Skip(err)
}

// logWriter sends each line written to it to t.Log.
type logWriter struct{ t testing.TB }

func (w *logWriter) Write(p []byte) (int, error) {
	w.t.Log("guest: " + strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
