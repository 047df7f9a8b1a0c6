package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"go.uber.org/zap"

	"github.com/lbkit/lbkit/internal/nsutil"
	"github.com/lbkit/lbkit/proxyd/config"
)

// sysctl is one conntrack setting to apply.
type sysctl struct {
	key   string // relative to /proc/sys, with slashes
	value int64
}

// conntrackSysctls turns the conntrack section into sysctls; zero fields are
// left alone, as in kube-proxy. nf_conntrack_max is maxPerCore x CPUs, at
// least min, and only set when maxPerCore is positive: min alone never
// writes it.
func conntrackSysctls(c config.ConntrackConfig, cpus int) []sysctl {
	var out []sysctl
	if c.MaxPerCore > 0 {
		max := max(int64(c.MaxPerCore)*int64(cpus), int64(c.Min))
		out = append(out, sysctl{"net/netfilter/nf_conntrack_max", max})
	}
	if d := c.TCPEstablishedTimeout.Duration; d > 0 {
		out = append(out, sysctl{"net/netfilter/nf_conntrack_tcp_timeout_established", int64(d.Seconds())})
	}
	if d := c.TCPCloseWaitTimeout.Duration; d > 0 {
		out = append(out, sysctl{"net/netfilter/nf_conntrack_tcp_timeout_close_wait", int64(d.Seconds())})
	}
	return out
}

// applySysctls writes each sysctl under root (normally /proc/sys) inside the
// network namespace netns ("" = proxyd's own) when its value differs.
// Conntrack tuning never stops proxyd: a sysctl that is read-only here (in a
// network namespace other than the initial one the kernel makes
// nf_conntrack_max read-only; a container may mount /proc/sys read-only) is
// left alone and said once, at info level, for all of them; any other
// failure (not present) is a warning.
func applySysctls(root, netns string, settings []sysctl, log *zap.Logger) {
	var readOnly []string
	_ = nsutil.Do(netns, func() error {
		for _, s := range settings {
			path := filepath.Join(root, s.key)
			want := strconv.FormatInt(s.value, 10)
			if cur, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(cur)) == want {
				continue
			}
			if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o222 == 0 {
				readOnly = append(readOnly, s.key)
				continue
			}
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
					readOnly = append(readOnly, s.key)
					continue
				}
				log.Warn("conntrack setting not applied", zap.String("sysctl", s.key), zap.String("value", want), zap.Error(err))
				continue
			}
			log.Info("conntrack setting applied", zap.String("sysctl", s.key), zap.String("value", want))
		}
		return nil
	})
	if len(readOnly) > 0 {
		log.Info("conntrack settings left as they are: read-only in this network namespace (only the initial namespace, or a writable /proc/sys, can change them)",
			zap.Strings("sysctls", readOnly))
	}
}

// applyConntrack applies the conntrack section for datapaths that rely on
// kernel conntrack (every mode but userspace).
func applyConntrack(cfg *config.Config, log *zap.Logger) {
	if !persistent(cfg.EffectiveMode()) {
		log.Debug("conntrack settings not applied: the userspace datapath does not use kernel NAT")
		return
	}
	applySysctls("/proc/sys", cfg.Lbkit.Netns, conntrackSysctls(cfg.Conntrack, runtime.NumCPU()), log)
}
