package ipvs

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Defaults for Options.
const (
	// DefaultDevice is the dummy device that holds the virtual IPs.
	DefaultDevice = "lbkit-ipvs0"
	// DefaultGracefulTerminationTimeout bounds how long a removed TCP or
	// SCTP real server drains before it is deleted anyway.
	DefaultGracefulTerminationTimeout = 60 * time.Second
	// natTable names the nftables tables (families ip and ip6) that hold
	// the masquerade rules.
	natTable = "lbkit-ipvs"
)

// KernelSchedulers lists the scheduler names Linux IPVS knows; Options.Scheduler
// must be one of them.
var KernelSchedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"}

// Options configures a Datapath. The zero value is usable (services that
// ask for lb.Random are then rejected; see Scheduler).
type Options struct {
	// Netns, when set (e.g. /var/run/netns/X), is the network namespace the
	// datapath programs; empty means the process's own.
	Netns string
	// Logger receives sync details at debug level and drain events; nil
	// logs nothing.
	Logger *slog.Logger
	// Scheduler is the IPVS scheduler of services whose scheduler is
	// lb.Random, lbkit's default when a source sets none (Kubernetes
	// services never do). IPVS has no random scheduler, so the datapath
	// declares lb.Random only when Scheduler is set, and Inspect reports
	// the IPVS scheduler actually used. proxyd passes kube-proxy's
	// ipvs.scheduler (default "rr"). Empty: services asking for random are
	// rejected with an *lb.UnsupportedError.
	Scheduler string
	// Device is the dummy device for virtual IPs; empty means
	// DefaultDevice.
	Device string
	// StrictARP sets arp_ignore=1 and arp_announce=2 (net.ipv4.conf.all), so
	// that the node does not answer ARP for the virtual IPs on its other
	// interfaces (needed with MetalLB-style L2 announcements).
	StrictARP bool
	// ExcludeCIDRs protects virtual servers of other programs: the datapath
	// owns every IPVS virtual server of its namespace except those whose
	// address is in one of these prefixes (kube-proxy's ipvs.excludeCIDRs).
	ExcludeCIDRs []netip.Prefix
	// TCPTimeout, TCPFinTimeout and UDPTimeout set IPVS's connection
	// timeouts (ipvsadm --set); zero leaves a value alone.
	TCPTimeout, TCPFinTimeout, UDPTimeout time.Duration
	// MasqueradeAll source-NATs all service traffic to the node's address.
	MasqueradeAll bool
	// ClusterCIDRs: ClusterIP traffic from outside these prefixes is
	// masqueraded (kube-proxy's clusterCIDR). Empty: no such rule.
	ClusterCIDRs []netip.Prefix
	// NodePortAddresses limits the node addresses a NodePort frontend on
	// an unspecified address (0.0.0.0 or ::) is served on; empty means
	// every address of the node except loopback, link-local and the
	// virtual IPs.
	NodePortAddresses []netip.Prefix
	// GracefulTerminationTimeout bounds how long a removed TCP or SCTP real
	// server drains (weight 0) before it is deleted even with connections
	// left; zero means DefaultGracefulTerminationTimeout.
	GracefulTerminationTimeout time.Duration
}

// withDefaults checks o and fills in the defaults.
func (o Options) withDefaults() (Options, error) {
	if o.Scheduler != "" && !slices.Contains(KernelSchedulers, o.Scheduler) {
		return o, fmt.Errorf("ipvs: Options.Scheduler %q is not an IPVS scheduler (want one of %s)", o.Scheduler, strings.Join(KernelSchedulers, ", "))
	}
	if o.Device == "" {
		o.Device = DefaultDevice
	}
	if len(o.Device) > 15 || strings.ContainsAny(o.Device, "/ \t\n:") {
		return o, fmt.Errorf("ipvs: Options.Device %q is not a valid interface name (at most 15 characters, no '/', ':' or spaces)", o.Device)
	}
	for name, d := range map[string]time.Duration{
		"TCPTimeout": o.TCPTimeout, "TCPFinTimeout": o.TCPFinTimeout, "UDPTimeout": o.UDPTimeout,
		"GracefulTerminationTimeout": o.GracefulTerminationTimeout,
	} {
		if d < 0 {
			return o, fmt.Errorf("ipvs: Options.%s is negative (%s)", name, d)
		}
		if d > 0 && d < time.Second && name != "GracefulTerminationTimeout" {
			return o, fmt.Errorf("ipvs: Options.%s is %s; IPVS counts whole seconds, want at least 1s", name, d)
		}
	}
	if o.GracefulTerminationTimeout == 0 {
		o.GracefulTerminationTimeout = DefaultGracefulTerminationTimeout
	}
	for field, ps := range map[string][]netip.Prefix{"ExcludeCIDRs": o.ExcludeCIDRs, "ClusterCIDRs": o.ClusterCIDRs, "NodePortAddresses": o.NodePortAddresses} {
		for i, p := range ps {
			if !p.IsValid() {
				return o, fmt.Errorf("ipvs: Options.%s[%d] is not a valid prefix", field, i)
			}
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// excluded reports whether a virtual server address is in ExcludeCIDRs.
func (o *Options) excluded(a netip.Addr) bool { return inAny(o.ExcludeCIDRs, a) }

// inAny reports whether a is in one of ps.
func inAny(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
