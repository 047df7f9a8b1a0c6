package main

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// proxydProc is a proxyd a test started.
type proxydProc struct {
	cmd    *exec.Cmd
	logs   *safeBuffer
	exited chan error
}

// startProc starts cmd (the proxyd binary with its arguments and, if set,
// credentials) with its output in logs. It is killed when the test ends,
// and its output is shown if the test failed.
func startProc(t *testing.T, cmd *exec.Cmd) *proxydProc {
	t.Helper()
	p := &proxydProc{cmd: cmd, logs: &safeBuffer{}, exited: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("proxyd %v output:\n%s", cmd.Args[1:], p.logs.String())
		}
	})
	return p
}

// stop sends SIGTERM and requires a clean exit.
func (p *proxydProc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("proxyd exited with %v after SIGTERM", err)
		}
	case <-time.After(e2eWait):
		t.Fatal("proxyd did not stop after SIGTERM")
	}
}
