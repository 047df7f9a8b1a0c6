package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

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
// left alone, as in kube-proxy.
func conntrackSysctls(c config.ConntrackConfig, cpus int) []sysctl {
	var out []sysctl
	if c.MaxPerCore > 0 || c.Min > 0 {
		if max := max(int64(c.MaxPerCore)*int64(cpus), int64(c.Min)); max > 0 {
			out = append(out, sysctl{"net/netfilter/nf_conntrack_max", max})
		}
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
// network namespace netns ("" = proxyd's own) when its value differs. A
// sysctl that cannot be written (not permitted, not present) is skipped with
// a warning: conntrack tuning never stops proxyd.
func applySysctls(root, netns string, settings []sysctl, log *zap.Logger) {
	_ = nsutil.Do(netns, func() error {
		for _, s := range settings {
			path := filepath.Join(root, s.key)
			want := strconv.FormatInt(s.value, 10)
			if cur, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(cur)) == want {
				continue
			}
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				log.Warn("conntrack setting not applied", zap.String("sysctl", s.key), zap.String("value", want), zap.Error(err))
				continue
			}
			log.Info("conntrack setting applied", zap.String("sysctl", s.key), zap.String("value", want))
		}
		return nil
	})
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
