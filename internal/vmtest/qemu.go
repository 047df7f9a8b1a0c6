package vmtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// QEMU is the emulator binary a guest runs in.
const QEMU = "qemu-system-x86_64"

// kernelCmdline: serial console, quiet, and on a panic reboot at once,
// which -no-reboot turns into QEMU exiting.
const kernelCmdline = "console=ttyS0 quiet panic=-1 reboot=t"

// cmdline returns the kernel command line. Under TCG the guest's TSC runs
// at the host's rate, and the guest's own calibration against the
// emulated PIT fails when the host is busy ("tsc: Unable to calibrate
// against PIT"), after which the boot often hangs for good. Telling the
// kernel the rate (tsc_early_khz) and that the TSC is reliable skips the
// calibration and the clocksource watchdog.
func cmdline(tscKHz uint64) string {
	if tscKHz == 0 {
		return kernelCmdline
	}
	return fmt.Sprintf("%s tsc_early_khz=%d tsc=reliable", kernelCmdline, tscKHz)
}

// qemuArgs returns the command line that boots kernel with initrd.
func qemuArgs(o Options, k *Kernel, initrd string, tscKHz uint64) []string {
	return []string{
		"-M", "microvm,rtc=on",
		"-accel", o.Accel,
		"-cpu", "max",
		"-m", strconv.Itoa(o.Memory),
		"-smp", strconv.Itoa(o.CPUs),
		"-nographic", "-no-reboot", "-nic", "none",
		"-kernel", k.VMLinux,
		"-initrd", initrd,
		"-append", cmdline(tscKHz),
	}
}

// console follows the guest's serial output: it copies every line to the
// caller's writer and interprets the lines /init prints with the run's
// nonce.
type console struct {
	nonce string
	out   io.Writer

	mu     sync.Mutex
	result Result
	tail   []string // the last lines, for error messages
}

// maxTail is how many console lines an error message quotes.
const maxTail = 20

// follow reads r until EOF.
func (c *console) follow(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		c.line(line)
		if _, err := io.WriteString(c.out, line+"\n"); err != nil {
			return err
		}
	}
	return sc.Err()
}

// line records one console line.
func (c *console) line(line string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tail = append(c.tail, line)
	if len(c.tail) > maxTail {
		c.tail = c.tail[1:]
	}
	rest, ok := strings.CutPrefix(line, c.nonce+" ")
	if !ok {
		return
	}
	f := strings.Fields(rest)
	switch {
	case len(f) >= 1 && f[0] == "booted":
		c.result.Booted = true
		if len(f) > 1 {
			c.result.Release = f[1]
		}
	case len(f) == 2 && f[0] == "insmod-failed":
		c.result.ModuleErrors = append(c.result.ModuleErrors, f[1])
	case len(f) == 3 && f[0] == "exit":
		code, err := strconv.Atoi(f[2])
		if err != nil {
			code = -1
		}
		c.result.Tests = append(c.result.Tests, TestResult{Binary: f[1], ExitCode: code})
	case len(f) == 1 && f[0] == "done":
		c.result.Completed = true
	}
}

// snapshot returns the result so far and the console tail.
func (c *console) snapshot() (Result, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.result
	r.Tests = append([]TestResult(nil), r.Tests...)
	return r, append([]string(nil), c.tail...)
}

// runQEMU boots the guest and follows its console until QEMU exits or ctx
// ends.
func runQEMU(ctx context.Context, o Options, k *Kernel, initrd string, tscKHz uint64, c *console) error {
	cmd := exec.CommandContext(ctx, QEMU, qemuArgs(o, k, initrd, tscKHz)...)
	cmd.Stdin = nil // /dev/null: the guest reads no input
	// QEMU must not outlive a test binary that dies (e.g. on go test's
	// -timeout): the kernel kills it when our thread goes away.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("vmtest: start %s: %w", QEMU, err)
	}
	done := make(chan error, 1)
	go func() { done <- c.follow(pr) }()
	werr := cmd.Wait()
	pw.Close()
	ferr := <-done
	if ctx.Err() != nil {
		return fmt.Errorf("vmtest: guest stopped after the timeout: %w", context.Cause(ctx))
	}
	if werr != nil {
		return fmt.Errorf("vmtest: %s: %w", QEMU, werr)
	}
	if ferr != nil && !errors.Is(ferr, io.ErrClosedPipe) {
		return fmt.Errorf("vmtest: guest console: %w", ferr)
	}
	return nil
}
