package netns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/lbkit/lbkit/internal/nsutil"
)

// cmdTimeout bounds every ip command so that a wedged command cannot hang a
// test forever. It is a safety net, not an assertion.
const cmdTimeout = time.Minute

// runIP runs the ip command with args; the error names the command and
// carries its output.
func runIP(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	return runCmd(ctx, "ip", args...)
}

// runCmd runs a command; the error names it and carries its combined output.
func runCmd(ctx context.Context, name string, args ...string) error {
	_, err := commandOutput(ctx, name, args...)
	return err
}

// commandOutput runs a command and returns its combined output; the error
// names the command and carries that output.
func commandOutput(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return out, nil
}

// sysctl is one /proc/sys setting, key written with slashes
// ("net/ipv4/ip_forward").
type sysctl struct {
	key, value string
	// optional settings are skipped when the key does not exist (e.g. IPv6
	// settings on a kernel without IPv6).
	optional bool
}

// writeSysctls writes settings inside the namespace at path. /proc/sys/net
// shows the namespace of the thread that opens it, so nsutil.Do suffices.
func writeSysctls(path string, settings []sysctl) error {
	return nsutil.Do(path, func() error {
		for _, s := range settings {
			file := filepath.Join("/proc/sys", s.key)
			err := os.WriteFile(file, []byte(s.value), 0o644)
			if s.optional && errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return fmt.Errorf("sysctl %s=%s: %w", strings.ReplaceAll(s.key, "/", "."), s.value, err)
			}
		}
		return nil
	})
}

// disableRPFilter sets rp_filter=0 on every interface present in the
// namespace at path (the kernel uses the larger of "all" and the interface's
// own value, so "all" alone is not enough).
func disableRPFilter(path string) error {
	return nsutil.Do(path, func() error {
		const dir = "/proc/sys/net/ipv4/conf"
		entries, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("list %s: %w", dir, err)
		}
		for _, e := range entries {
			file := filepath.Join(dir, e.Name(), "rp_filter")
			if err := os.WriteFile(file, []byte("0"), 0o644); err != nil {
				return fmt.Errorf("sysctl net.ipv4.conf.%s.rp_filter=0: %w", e.Name(), err)
			}
		}
		return nil
	})
}
