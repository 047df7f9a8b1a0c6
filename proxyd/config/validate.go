package config

import (
	"k8s.io/apimachinery/pkg/util/validation"

	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// FieldError is one rejected value of a Config.
type FieldError struct {
	Field  string // field path, e.g. "iptables.masqueradeBit"
	Value  string // the value as YAML would write it: 40, "10.0.0.0/33", 1m0s
	Reason string // why it is rejected
	// Source is where the value came from: "kube-proxy.yaml:9",
	// "flag --iptables-masquerade-bit", or "" for a default or a value set
	// by code.
	Source string

	line int // the file line, 0 if none: errors are listed in file order
}

// Error formats the problem as
// `SOURCE: FIELD: invalid value VALUE: REASON`.
func (e *FieldError) Error() string {
	s := fmt.Sprintf("%s: invalid value %s: %s", e.Field, e.Value, e.Reason)
	if e.Source != "" {
		s = e.Source + ": " + s
	}
	return s
}

// ValidationError lists every rejected value of a Config.
type ValidationError struct {
	Errors []*FieldError
}

// Error lists the problems, one per line.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		lines[i] = fe.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the individual problems, for errors.As.
func (e *ValidationError) Unwrap() []error {
	errs := make([]error, len(e.Errors))
	for i, fe := range e.Errors {
		errs[i] = fe
	}
	return errs
}

// IPVSSchedulers lists the scheduler names the Linux IPVS code knows.
func IPVSSchedulers() []string {
	return []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"}
}

// validator collects FieldErrors.
type validator struct {
	c    *Config
	errs []*FieldError
}

// bad records that the value at path is rejected; value is any Go value,
// formatted as YAML would write it.
func (v *validator) bad(path string, value any, reason string, args ...any) {
	var s string
	switch x := value.(type) {
	case string:
		s = strconv.Quote(x)
	case Duration:
		s = x.Duration.String()
	default:
		s = fmt.Sprint(x)
	}
	src, line := v.c.origin.source(path)
	v.errs = append(v.errs, &FieldError{Field: path, Value: s,
		Reason: fmt.Sprintf(reason, args...), Source: src, line: line})
}

// Validate checks every value and reports every rejected one, each with its
// field path, value, reason and (for a Config from Parse or Flags.Resolve)
// the file line or flag it came from. The error is a *ValidationError.
func (c *Config) Validate() error {
	v := &validator{c: c}
	if c.APIVersion != APIVersion {
		v.bad("apiVersion", c.APIVersion, "must be %q", APIVersion)
	}
	if c.Kind != Kind {
		v.bad("kind", c.Kind, "must be %q", Kind)
	}
	if c.Mode != "" && !slices.Contains(Modes(), c.Mode) {
		v.bad("mode", c.Mode, "must be one of %s (empty means iptables)", strings.Join(Modes(), ", "))
	}
	v.clusterCIDR(c.ClusterCIDR)
	if _, err := netip.ParseAddr(c.BindAddress); err != nil {
		v.bad("bindAddress", c.BindAddress, "not an IP address")
	}
	v.hostPort("metricsBindAddress", c.MetricsBindAddress)
	v.hostPort("healthzBindAddress", c.HealthzBindAddress)
	v.nodePortAddresses(c.NodePortAddresses)

	v.sync("ipvs", c.IPVS.SyncPeriod, c.IPVS.MinSyncPeriod)
	if !slices.Contains(IPVSSchedulers(), c.IPVS.Scheduler) {
		v.bad("ipvs.scheduler", c.IPVS.Scheduler, "unknown IPVS scheduler (want one of %s)", strings.Join(IPVSSchedulers(), ", "))
	}
	for i, s := range c.IPVS.ExcludeCIDRs {
		if _, err := netip.ParsePrefix(s); err != nil {
			v.bad(fmt.Sprintf("ipvs.excludeCIDRs[%d]", i), s, "%s", cidrReason(s, err))
		}
	}
	v.notNegative("ipvs.tcpTimeout", c.IPVS.TCPTimeout)
	v.notNegative("ipvs.tcpFinTimeout", c.IPVS.TCPFinTimeout)
	v.notNegative("ipvs.udpTimeout", c.IPVS.UDPTimeout)

	v.masqueradeBit("iptables.masqueradeBit", c.IPTables.MasqueradeBit)
	v.sync("iptables", c.IPTables.SyncPeriod, c.IPTables.MinSyncPeriod)
	v.masqueradeBit("nftables.masqueradeBit", c.NFTables.MasqueradeBit)
	v.sync("nftables", c.NFTables.SyncPeriod, c.NFTables.MinSyncPeriod)

	if c.Conntrack.MaxPerCore < 0 {
		v.bad("conntrack.maxPerCore", c.Conntrack.MaxPerCore, "must not be negative (0 leaves the limit as it is)")
	}
	if c.Conntrack.Min < 0 {
		v.bad("conntrack.min", c.Conntrack.Min, "must not be negative")
	}
	v.notNegative("conntrack.tcpEstablishedTimeout", c.Conntrack.TCPEstablishedTimeout)
	v.notNegative("conntrack.tcpCloseWaitTimeout", c.Conntrack.TCPCloseWaitTimeout)

	v.clientConnection(&c.ClientConnection)
	v.notNegative("configSyncPeriod", c.ConfigSyncPeriod)

	v.lbkit(&c.Lbkit)
	// File order reads best; values from flags or defaults come last, in the
	// order of the checks.
	slices.SortStableFunc(v.errs, func(a, b *FieldError) int {
		switch {
		case a.line == b.line:
			return 0
		case a.line == 0:
			return 1
		case b.line == 0:
			return -1
		}
		return a.line - b.line
	})
	if len(v.errs) > 0 {
		return &ValidationError{Errors: v.errs}
	}
	return nil
}

// clientConnection checks kube-proxy's clientConnection section.
func (v *validator) clientConnection(cc *ClientConnectionConfig) {
	switch cc.ContentType {
	case "", ContentTypeProtobuf, ContentTypeJSON:
	default:
		v.bad("clientConnection.contentType", cc.ContentType, "must be %q or %q", ContentTypeProtobuf, ContentTypeJSON)
	}
	if cc.QPS < 0 {
		v.bad("clientConnection.qps", cc.QPS, "must not be negative")
	}
	if cc.Burst < 0 {
		v.bad("clientConnection.burst", cc.Burst, "must not be negative")
	}
}

// lbkit checks the lbkit section.
func (v *validator) lbkit(l *LbkitConfig) {
	if l.Netns != "" && !filepath.IsAbs(l.Netns) {
		v.bad("lbkit.netns", l.Netns, "must be an absolute path such as /var/run/netns/NAME")
	}
	if l.LogFormat != LogFormatJSON && l.LogFormat != LogFormatConsole {
		v.bad("lbkit.logFormat", l.LogFormat, "must be %q or %q", LogFormatJSON, LogFormatConsole)
	}
	if n := l.ServiceProxyName; n != "" {
		if errs := validation.IsValidLabelValue(n); len(errs) > 0 {
			v.bad("lbkit.serviceProxyName", n, "not a valid label value: %s", strings.Join(errs, "; "))
		}
	}
	if l.Verbosity < 0 {
		v.bad("lbkit.verbosity", l.Verbosity, "must not be negative")
	}
	v.sync("lbkit.userspace", l.Userspace.SyncPeriod, l.Userspace.MinSyncPeriod)
	if l.Userspace.UDPIdleTimeout.Duration <= 0 {
		v.bad("lbkit.userspace.udpIdleTimeout", l.Userspace.UDPIdleTimeout, "must be greater than 0")
	}
	v.sync("lbkit.ebpf", l.EBPF.SyncPeriod, l.EBPF.MinSyncPeriod)
	switch l.EBPF.Attach {
	case EBPFAttachTC, EBPFAttachXDP, EBPFAttachSocket:
	default:
		v.bad("lbkit.ebpf.attach", l.EBPF.Attach, "must be %q, %q or %q", EBPFAttachTC, EBPFAttachXDP, EBPFAttachSocket)
	}
	if l.EBPF.XDPMode != EBPFXDPNative && l.EBPF.XDPMode != EBPFXDPGeneric {
		v.bad("lbkit.ebpf.xdpMode", l.EBPF.XDPMode, "must be %q or %q", EBPFXDPNative, EBPFXDPGeneric)
	}
	if f := l.IPTablesFlavour; f != "" && f != "legacy" && f != "nft" {
		v.bad("lbkit.iptablesFlavour", f, "must be \"legacy\", \"nft\" or empty (the system's iptables)")
	}
	if l.EBPF.PinPath != "" && !filepath.IsAbs(l.EBPF.PinPath) {
		v.bad("lbkit.ebpf.pinPath", l.EBPF.PinPath, "must be an absolute path in a bpffs, such as %s", DefaultEBPFPinDir)
	}
	if l.EBPF.CgroupPath != "" && !filepath.IsAbs(l.EBPF.CgroupPath) {
		v.bad("lbkit.ebpf.cgroupPath", l.EBPF.CgroupPath, "must be an absolute path of a cgroup v2 directory, such as /sys/fs/cgroup/lbkit-clients")
	}
}

// sync checks a section's syncPeriod and minSyncPeriod.
func (v *validator) sync(section string, sync, minSync Duration) {
	if sync.Duration <= 0 {
		v.bad(section+".syncPeriod", sync, "must be greater than 0")
	}
	switch {
	case minSync.Duration < 0:
		v.bad(section+".minSyncPeriod", minSync, "must not be negative")
	case sync.Duration > 0 && minSync.Duration > sync.Duration:
		v.bad(section+".minSyncPeriod", minSync, "must not exceed %s.syncPeriod (%s)", section, sync.Duration)
	}
}

// notNegative rejects a negative duration.
func (v *validator) notNegative(path string, d Duration) {
	if d.Duration < 0 {
		v.bad(path, d, "must not be negative (0 leaves the kernel's value)")
	}
}

// masqueradeBit checks a fwmark bit number.
func (v *validator) masqueradeBit(path string, bit int32) {
	if bit < 0 || bit > 31 {
		v.bad(path, bit, "must be within 0-31")
	}
}

// clusterCIDR accepts one CIDR or an IPv4,IPv6 pair.
func (v *validator) clusterCIDR(s string) {
	if s == "" {
		return
	}
	parts := strings.Split(s, ",")
	if len(parts) > 2 {
		v.bad("clusterCIDR", s, "must be one CIDR or a comma-separated IPv4,IPv6 pair")
		return
	}
	var v4, v6 int
	for _, p := range parts {
		pfx, err := netip.ParsePrefix(strings.TrimSpace(p))
		if err != nil {
			v.bad("clusterCIDR", s, "%s", cidrReason(strings.TrimSpace(p), err))
			return
		}
		if pfx.Addr().Is4() {
			v4++
		} else {
			v6++
		}
	}
	if len(parts) == 2 && (v4 != 1 || v6 != 1) {
		v.bad("clusterCIDR", s, "a pair must be one IPv4 and one IPv6 CIDR")
	}
}

// nodePortAddresses accepts CIDRs, or "primary" alone.
func (v *validator) nodePortAddresses(list []string) {
	for i, s := range list {
		path := fmt.Sprintf("nodePortAddresses[%d]", i)
		if s == NodePortAddressesPrimary {
			if len(list) > 1 {
				v.bad(path, s, "%q must be the only entry", NodePortAddressesPrimary)
			}
			continue
		}
		if _, err := netip.ParsePrefix(s); err != nil {
			v.bad(path, s, "%s, nor %q", cidrReason(s, err), NodePortAddressesPrimary)
		}
	}
}

// hostPort accepts "" (the server is off) or IP:port.
func (v *validator) hostPort(path, s string) {
	if s == "" {
		return
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		v.bad(path, s, "must be IP:port, like 0.0.0.0:10256 or [::]:10256")
		return
	}
	if _, err := netip.ParseAddr(host); err != nil {
		v.bad(path, s, "host %q is not an IP address", host)
	}
	// Port 0 is allowed: the server takes a free port (tests use it).
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		v.bad(path, s, "port %q is not a number 0-65535", port)
	}
}

// cidrReason explains why s is not a CIDR.
func cidrReason(s string, err error) string {
	msg := strings.TrimPrefix(err.Error(), fmt.Sprintf("netip.ParsePrefix(%q): ", s))
	return "not a CIDR (" + msg + ")"
}
