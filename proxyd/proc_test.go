package main

import (
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/lbkit/lbkit/internal/netns"
	"github.com/lbkit/lbkit/internal/testenv"
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

// proxydWithPrivateBPFFS prepares a test that runs the real proxyd with
// pinned eBPF state: the test runs again in a private mount namespace with
// its own bpffs on /sys/fs/bpf (the host's is never touched). In that copy
// it returns the proxyd binary; in the parent, once the copy passed, "".
func proxydWithPrivateBPFFS(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the proxyd binary")
	}
	netns.Require(t)
	if !testenv.InPrivateMountNamespace(t) {
		return ""
	}
	if err := syscall.Mount("bpf", "/sys/fs/bpf", "bpf", 0, ""); err != nil {
		t.Skipf("mount a bpffs on /sys/fs/bpf in the private mount namespace: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount("/sys/fs/bpf", 0) })
	return buildProxyd(t)
}
