package iptables

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lbkit/lbkit/internal/nsutil"
)

// runner runs iptables programs in the datapath's network namespace: the
// command is started from an OS thread switched into the namespace, so the
// child process lives there (a forked process inherits the namespace of the
// thread that forks it).
type runner struct {
	netns string
}

// run runs path with args, feeding stdin (which may be nil), and returns its
// standard output. The error carries the program's standard error.
// It also returns the CPU time (user and system) the program used.
func (r runner) run(ctx context.Context, stdin []byte, path string, args ...string) ([]byte, time.Duration, error) {
	var stdout, stderr bytes.Buffer
	var cpu time.Duration
	var in *os.File
	if stdin != nil {
		var err error
		if in, err = inputFile(stdin); err != nil {
			return nil, 0, fmt.Errorf("%s: %w", path, err)
		}
		defer in.Close()
	}
	err := nsutil.Do(r.netns, func() error {
		cmd := exec.CommandContext(ctx, path, args...)
		if in != nil {
			cmd.Stdin = in
		}
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if ps := cmd.ProcessState; ps != nil {
			cpu = ps.UserTime() + ps.SystemTime()
		}
		return err
	})
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			return nil, cpu, fmt.Errorf("%s %s: %w", path, strings.Join(args, " "), err)
		}
		return nil, cpu, fmt.Errorf("%s %s: %w: %s", path, strings.Join(args, " "), err, msg)
	}
	return stdout.Bytes(), cpu, nil
}

// inputFile returns an in-memory file (memfd) holding data, positioned at
// its start, to be a child's standard input. A restore input is megabytes:
// written through a pipe it costs this process a wake-up per pipe buffer
// while the child reads; one write into a memfd costs a copy.
func inputFile(data []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate("lbkit-restore-input", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd for the input: %w", err)
	}
	f := os.NewFile(uintptr(fd), "lbkit-restore-input")
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, fmt.Errorf("write the input: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("rewind the input: %w", err)
	}
	return f, nil
}

// restore feeds input to iptables-restore without flushing the tables it
// names: only chains the input declares are flushed. It returns the CPU
// time iptables-restore used. A failure is a *RestoreError.
func (r runner) restore(ctx context.Context, t tools, input []byte) (time.Duration, error) {
	_, cpu, err := r.run(ctx, input, t.restore, "--noflush", "--wait")
	if err != nil {
		re := &RestoreError{Err: err, Line: failedLine(err.Error())}
		if re.Line > 0 {
			if lines := bytes.SplitN(input, []byte("\n"), re.Line+1); len(lines) >= re.Line {
				re.Input = string(lines[re.Line-1])
			}
		}
		return cpu, re
	}
	return cpu, nil
}

// RestoreError is a failed iptables-restore run, with the input line it
// failed at when the program said which.
type RestoreError struct {
	Err   error
	Line  int    // 1-based; 0 when unknown
	Input string // the text of that line
}

func (e *RestoreError) Error() string {
	if e.Line == 0 {
		return "restore: " + e.Err.Error()
	}
	return fmt.Sprintf("restore: %v (line %d: %q)", e.Err, e.Line, e.Input)
}

// Unwrap returns the program's error.
func (e *RestoreError) Unwrap() error { return e.Err }

// failedLine reads the input line number from iptables-restore's messages:
// "Error occurred at line: N" for a line it could not parse, "line N
// failed" for a command the kernel (or cache) refused.
func failedLine(msg string) int {
	for _, pat := range []string{"line: %d", "line %d failed"} {
		prefix, _, _ := strings.Cut(pat, "%d")
		for i := strings.LastIndex(msg, prefix); i >= 0; {
			var n int
			if _, err := fmt.Sscanf(msg[i:], pat, &n); err == nil && n > 0 {
				return n
			}
			i = strings.LastIndex(msg[:i], prefix)
		}
	}
	return 0
}

// save returns iptables-save output of one table.
func (r runner) save(ctx context.Context, t tools, table string) ([]byte, error) {
	out, _, err := r.run(ctx, nil, t.save, "-t", table)
	return out, err
}

// listChain returns the rules of one chain, as `iptables -S` prints them.
func (r runner) listChain(ctx context.Context, t tools, table, chain string) ([]byte, error) {
	out, _, err := r.run(ctx, nil, t.iptables, "--wait", "-t", table, "-S", chain)
	return out, err
}
