package main

import (
	"fmt"
	"net/netip"

	"go.uber.org/zap"

	"github.com/lbkit/lbkit/backends/ebpf"
	"github.com/lbkit/lbkit/backends/iptables"
	"github.com/lbkit/lbkit/backends/ipvs"
	"github.com/lbkit/lbkit/backends/nftables"
	"github.com/lbkit/lbkit/backends/userspace"
	"github.com/lbkit/lbkit/lb"
	"github.com/lbkit/lbkit/proxyd/config"
)

// datapathDeps is what the daemon gives a datapath beyond the config.
type datapathDeps struct {
	// partialFallback is called when a partial sync fell back to a full one.
	partialFallback func()
	// nodeIPs are the node's primary IPs as its Kubernetes Node says
	// (empty without the Kubernetes source); nodePortAddresses "primary"
	// uses them when set.
	nodeIPs []netip.Addr
}

// newDatapath builds the datapath of the configured mode.
func newDatapath(cfg *config.Config, log *zap.Logger, hooks datapathDeps) (lb.Datapath, error) {
	mode := cfg.EffectiveMode()
	if mode == config.ModeUserspace {
		return userspace.New(userspace.Options{
			Netns:          cfg.Lbkit.Netns,
			Logger:         slogOf(log.Named("userspace")),
			UDPIdleTimeout: cfg.Lbkit.Userspace.UDPIdleTimeout.Duration,
		})
	}
	if mode == config.ModeIPVS {
		if err := ipvs.Available(); err != nil {
			return nil, err
		}
	}
	k, err := kernelOptionsOf(cfg, hooks.nodeIPs)
	if err != nil {
		return nil, err
	}
	log = log.Named(mode)
	switch mode {
	case config.ModeNFTables:
		return newNFTables(cfg, log, k)
	case config.ModeEBPF:
		return newEBPF(cfg, log, k)
	case config.ModeIPTables:
		return newIPTables(cfg, log, k, hooks)
	case config.ModeIPVS:
		return newIPVS(cfg, log, k)
	}
	return nil, fmt.Errorf("unknown mode %q", mode)
}

// kernelOptions are the settings every kernel datapath takes, parsed once.
type kernelOptions struct {
	clusterCIDRs, nodePortAddresses []netip.Prefix
}

func kernelOptionsOf(cfg *config.Config, nodeIPs []netip.Addr) (kernelOptions, error) {
	cluster, err := clusterCIDRs(cfg)
	if err != nil {
		return kernelOptions{}, err
	}
	nodePorts, err := nodePortPrefixes(cfg, nodeIPs)
	if err != nil {
		return kernelOptions{}, err
	}
	return kernelOptions{clusterCIDRs: cluster, nodePortAddresses: nodePorts}, nil
}

// persistent reports whether a mode's datapath state outlives proxyd (kernel
// state), so that a restart must adopt it and --cleanup must remove it.
func persistent(mode string) bool { return mode != config.ModeUserspace }

func newNFTables(cfg *config.Config, log *zap.Logger, k kernelOptions) (lb.Datapath, error) {
	return nftables.New(nftables.Options{
		Netns:             cfg.Lbkit.Netns,
		Logger:            slogOf(log),
		MasqueradeBit:     int(cfg.NFTables.MasqueradeBit),
		MasqueradeAll:     cfg.NFTables.MasqueradeAll,
		ClusterCIDRs:      k.clusterCIDRs,
		NodePortAddresses: k.nodePortAddresses,
	})
}

// newEBPF builds the eBPF datapath. ebpf.New fails at once, with what to
// do, when the pin path is not on a bpffs or socket-LB has no cgroup,
// rather than failing every sync; the error names its options, so this
// adds their flags.
func newEBPF(cfg *config.Config, log *zap.Logger, k kernelOptions) (lb.Datapath, error) {
	e := cfg.Lbkit.EBPF
	d, err := ebpf.New(ebpf.Options{
		Netns:             cfg.Lbkit.Netns,
		Logger:            slogOf(log),
		Attach:            e.Attach,
		SocketLB:          e.SocketLB,
		Interfaces:        e.Interfaces,
		XDPMode:           e.XDPMode,
		PinPath:           e.PinPath,
		CgroupPath:        e.CgroupPath,
		MasqueradeAll:     cfg.IPTables.MasqueradeAll || cfg.NFTables.MasqueradeAll,
		ClusterCIDRs:      k.clusterCIDRs,
		NodePortAddresses: k.nodePortAddresses,
	})
	if err != nil {
		return nil, fmt.Errorf("%w (Options.PinPath is --ebpf-pin-path or lbkit.ebpf.pinPath, empty to pin nothing; "+
			"Options.CgroupPath is --ebpf-cgroup-path or lbkit.ebpf.cgroupPath)", err)
	}
	return d, nil
}

func newIPTables(cfg *config.Config, log *zap.Logger, k kernelOptions, hooks datapathDeps) (lb.Datapath, error) {
	flavour, err := iptables.ParseFlavour(cfg.Lbkit.IPTablesFlavour)
	if err != nil {
		return nil, err
	}
	return iptables.New(iptables.Options{
		Netns:             cfg.Lbkit.Netns,
		Logger:            slogOf(log),
		Flavour:           flavour,
		MasqueradeBit:     int(cfg.IPTables.MasqueradeBit),
		MasqueradeAll:     cfg.IPTables.MasqueradeAll,
		ClusterCIDRs:      k.clusterCIDRs,
		NodePortAddresses: k.nodePortAddresses,
		NodeName:          nodeName(cfg),
		OnFallback:        hooks.partialFallback,
	})
}

func newIPVS(cfg *config.Config, log *zap.Logger, k kernelOptions) (lb.Datapath, error) {
	exclude, err := parsePrefixes("ipvs.excludeCIDRs", cfg.IPVS.ExcludeCIDRs)
	if err != nil {
		return nil, err
	}
	return ipvs.New(ipvs.Options{
		Netns:             cfg.Lbkit.Netns,
		Logger:            slogOf(log),
		Scheduler:         cfg.IPVS.Scheduler,
		StrictARP:         cfg.IPVS.StrictARP,
		ExcludeCIDRs:      exclude,
		TCPTimeout:        cfg.IPVS.TCPTimeout.Duration,
		TCPFinTimeout:     cfg.IPVS.TCPFinTimeout.Duration,
		UDPTimeout:        cfg.IPVS.UDPTimeout.Duration,
		MasqueradeAll:     cfg.IPTables.MasqueradeAll,
		ClusterCIDRs:      k.clusterCIDRs,
		NodePortAddresses: k.nodePortAddresses,
	})
}
