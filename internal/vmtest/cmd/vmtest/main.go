// Command vmtest runs Go test packages inside a QEMU guest booted from the
// distribution's kernel package (see package internal/vmtest). It is what
// `make vmtest` runs:
//
//	go run ./internal/vmtest/cmd/vmtest [flags] PACKAGE... [-- TEST-BINARY-ARGS]
//
// for example
//
//	go run ./internal/vmtest/cmd/vmtest ./backends/ipvs -- -test.run TestConformance
//	go run ./internal/vmtest/cmd/vmtest -timeout 30m ./backends/ipvs -- -test.run '^$' -test.bench . -test.benchtime 1x
//
// The guest console streams to standard output. The exit status is 0 when
// every test binary passed, 1 when any failed or the guest did not
// complete, 2 on bad usage, and 3 when a guest cannot run here (no QEMU,
// no kernel package), with the reason.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/lbkit/lbkit/internal/vmtest"
)

func main() {
	os.Exit(run())
}

func run() int {
	fs := flag.NewFlagSet("vmtest", flag.ContinueOnError)
	timeout := fs.Duration("timeout", vmtest.DefaultTimeout, "bound for the whole run: build, boot and every test")
	mem := fs.Int("mem", vmtest.DefaultMemory, "guest memory in MiB")
	cpus := fs.Int("smp", vmtest.DefaultCPUs, "guest CPUs")
	accel := fs.String("accel", "", "QEMU -accel value (default $LBKIT_VMTEST_ACCEL, else "+vmtest.DefaultAccel+")")
	kernel := fs.String("kernel-package", "", "Debian kernel image package (default: what "+vmtest.MetaPackage+" depends on)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: vmtest [flags] PACKAGE... [-- TEST-BINARY-ARGS]")
		fs.PrintDefaults()
	}
	args := os.Args[1:]
	var testArgs []string
	if i := slices.Index(args, "--"); i >= 0 {
		args, testArgs = args[:i], args[i+1:]
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	res, err := vmtest.Boot(ctx, vmtest.Options{
		Packages:      fs.Args(),
		Args:          testArgs,
		Timeout:       *timeout,
		Memory:        *mem,
		CPUs:          *cpus,
		Accel:         *accel,
		KernelPackage: *kernel,
		Output:        os.Stdout,
		Logf: func(format string, a ...any) {
			fmt.Fprintf(os.Stderr, format+"\n", a...)
		},
	})
	var unav *vmtest.UnavailableError
	switch {
	case errors.As(err, &unav):
		fmt.Fprintln(os.Stderr, err)
		return 3
	case err != nil:
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := res.Err(); err != nil {
		fmt.Fprintf(os.Stderr, "vmtest: FAIL after %s: %v\n", time.Since(start).Round(time.Second), err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "vmtest: PASS: %d test binaries in guest %s, guest %s, total %s\n",
		len(res.Tests), res.Release, res.Duration.Round(time.Second), time.Since(start).Round(time.Second))
	return 0
}
