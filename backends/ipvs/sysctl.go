package ipvs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/lbkit/lbkit/internal/nsutil"
)

// sysctl is one /proc/sys setting ("net/ipv4/vs/conntrack").
type sysctl struct{ key, value string }

// kernelSettings returns the sysctls the datapath applies (README.md says
// why each).
func kernelSettings(o *Options) []sysctl {
	s := []sysctl{
		// Let netfilter NAT (our masquerade rules) see IPVS traffic.
		{"net/ipv4/vs/conntrack", "1"},
		// A packet for a connection whose real server was deleted expires
		// that connection, so the client's next packets are scheduled to a
		// live real server instead of being blackholed.
		{"net/ipv4/vs/expire_nodest_conn", "1"},
		// Persistence templates pointing at a draining (weight 0) real
		// server expire, so affine clients move on.
		{"net/ipv4/vs/expire_quiescent_template", "1"},
	}
	if o.StrictARP {
		s = append(s, sysctl{"net/ipv4/conf/all/arp_ignore", "1"}, sysctl{"net/ipv4/conf/all/arp_announce", "2"})
	}
	return s
}

// applySysctls writes settings in the namespace.
func applySysctls(netns string, settings []sysctl) error {
	return nsutil.Do(netns, func() error {
		var errs []error
		for _, s := range settings {
			file := filepath.Join("/proc/sys", s.key)
			if cur, err := os.ReadFile(file); err == nil && strings.TrimSpace(string(cur)) == s.value {
				continue
			}
			if err := os.WriteFile(file, []byte(s.value), 0o644); err != nil {
				errs = append(errs, fmt.Errorf("sysctl %s=%s: %w", strings.ReplaceAll(s.key, "/", "."), s.value, err))
			}
		}
		return errors.Join(errs...)
	})
}
