package ebpf

import (
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
)

// Attach modes: where the programs run.
const (
	// AttachTC runs the balancer on TC ingress and the reverse translation
	// on TC egress of every interface (TCX where the kernel has it, else a
	// clsact qdisc). It serves traffic that enters the node.
	AttachTC = "tc"
	// AttachXDP additionally balances on XDP ingress, before the stack
	// allocates an skb; flows XDP cannot finish (masquerading) and every
	// reply are left to the TC programs, which are attached as well.
	AttachXDP = "xdp"
	// AttachSocket translates at connect/sendmsg time in cgroup v2 hooks,
	// for clients in Options.CgroupPath; no TC programs.
	AttachSocket = "socket"
)

// XDP attach flavours for AttachXDP.
const (
	XDPNative  = "native"
	XDPGeneric = "generic"
)

// Default sizes of the maps.
const (
	DefaultMaxServiceEntries = 262144 // frontends plus their backend slots
	DefaultMaxBackends       = 131072 // backend ids (one per frontend and endpoint)
	DefaultMaxMaglev         = 16384  // frontends with the maglev scheduler
	DefaultConntrackSize     = 262144 // flows x 2 (forward and reply entries)
	DefaultAffinitySize      = 65536  // (client, frontend) pairs
)

// Options configures a Datapath. The zero value attaches TC programs to
// every interface of the process's own network namespace.
type Options struct {
	// Netns is the network namespace to program (/var/run/netns/NAME);
	// empty means the process's own.
	Netns string
	// Logger receives attach and sync events; nil logs nothing.
	Logger *slog.Logger
	// Attach is AttachTC (default), AttachXDP or AttachSocket.
	Attach string
	// SocketLB also attaches the socket-LB programs in the TC and XDP
	// modes, so that clients on the node reach frontends too.
	SocketLB bool
	// Interfaces to attach to; empty means every interface of the
	// namespace except loopback. The named interfaces must exist at the
	// first Sync; from then on interfaces that appear, come back or go
	// away are followed (see AttachStatus).
	Interfaces []string
	// XDPMode is XDPNative (default) or XDPGeneric.
	XDPMode string
	// LegacyTC attaches with a clsact qdisc and direct-action filters even
	// where TCX is available.
	LegacyTC bool
	// CgroupPath is the cgroup v2 directory the socket-LB programs attach
	// to (Attach is AttachSocket, or SocketLB is set). They translate the
	// connections of every process in that cgroup and its descendants,
	// whatever network namespace the process uses: Netns does not narrow
	// them. It must be set when socket-LB is on; the cgroup v2 root (e.g.
	// /sys/fs/cgroup), which holds every process of the machine, is used
	// only when given here explicitly.
	CgroupPath string
	// MasqueradeAll masquerades every flow to a frontend (kube-proxy's
	// masqueradeAll).
	MasqueradeAll bool
	// ClusterCIDRs: flows to a ClusterIP from outside these prefixes are
	// masqueraded (kube-proxy's clusterCIDR); empty: none are for that
	// reason.
	ClusterCIDRs []netip.Prefix
	// NodePortAddresses limits the node addresses NodePort frontends on
	// the unspecified address are served on; empty means every address of
	// the namespace.
	NodePortAddresses []netip.Prefix
	// PinPath, when set, pins the maps and the program links under this
	// directory of a mounted bpffs (e.g. /sys/fs/bpf/lbkit), so that
	// traffic keeps flowing after the process exits and the next process
	// adopts the state (lb.Adopter) without dropping established flows.
	// Cleanup removes the pins. Empty: nothing is pinned and everything
	// goes away with the process.
	PinPath string
	// Map sizes; zero means the Default* constants.
	MaxServiceEntries int
	MaxBackends       int
	MaxMaglev         int
	ConntrackSize     int
	AffinitySize      int
}

// withDefaults checks o and fills in defaults.
func (o Options) withDefaults() (Options, error) {
	switch o.Attach {
	case "":
		o.Attach = AttachTC
	case AttachTC, AttachXDP, AttachSocket:
	default:
		return o, fmt.Errorf("ebpf: Options.Attach is %q, want %q, %q or %q", o.Attach, AttachTC, AttachXDP, AttachSocket)
	}
	switch o.XDPMode {
	case "":
		o.XDPMode = XDPNative
	case XDPNative, XDPGeneric:
	default:
		return o, fmt.Errorf("ebpf: Options.XDPMode is %q, want %q or %q", o.XDPMode, XDPNative, XDPGeneric)
	}
	for i, name := range o.Interfaces {
		if name == "" || strings.ContainsAny(name, "/ \t") {
			return o, fmt.Errorf("ebpf: Options.Interfaces[%d] is %q, not an interface name", i, name)
		}
	}
	if o.PinPath != "" && !filepath.IsAbs(o.PinPath) {
		return o, fmt.Errorf("ebpf: Options.PinPath is %q, want an absolute path on a bpffs", o.PinPath)
	}
	if o.Attach == AttachSocket || o.SocketLB {
		if o.CgroupPath == "" {
			return o, fmt.Errorf("ebpf: Options.CgroupPath is empty: %w", ErrNoCgroupPath)
		}
		if !filepath.IsAbs(o.CgroupPath) {
			return o, fmt.Errorf("ebpf: Options.CgroupPath is %q, want an absolute path of a cgroup v2 directory", o.CgroupPath)
		}
	}
	o.ClusterCIDRs = slices.Clone(o.ClusterCIDRs)
	for i, p := range o.ClusterCIDRs {
		if !p.IsValid() {
			return o, fmt.Errorf("ebpf: Options.ClusterCIDRs[%d] is not a valid prefix", i)
		}
		o.ClusterCIDRs[i] = p.Masked()
	}
	for i, p := range o.NodePortAddresses {
		if !p.IsValid() {
			return o, fmt.Errorf("ebpf: Options.NodePortAddresses[%d] is not a valid prefix", i)
		}
	}
	for _, s := range []struct {
		name string
		v    *int
		def  int
	}{
		{"MaxServiceEntries", &o.MaxServiceEntries, DefaultMaxServiceEntries},
		{"MaxBackends", &o.MaxBackends, DefaultMaxBackends},
		{"MaxMaglev", &o.MaxMaglev, DefaultMaxMaglev},
		{"ConntrackSize", &o.ConntrackSize, DefaultConntrackSize},
		{"AffinitySize", &o.AffinitySize, DefaultAffinitySize},
	} {
		if *s.v < 0 || *s.v > 1<<24 {
			return o, fmt.Errorf("ebpf: Options.%s is %d, want 0 (default %d) to %d", s.name, *s.v, s.def, 1<<24)
		}
		if *s.v == 0 {
			*s.v = s.def
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}
