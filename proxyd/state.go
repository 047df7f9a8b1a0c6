package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.uber.org/zap"

	"github.com/lbkit/lbkit/backends/ebpf"
	"github.com/lbkit/lbkit/backends/iptables"
	"github.com/lbkit/lbkit/backends/ipvs"
	"github.com/lbkit/lbkit/backends/nftables"
	"github.com/lbkit/lbkit/lb"
	"github.com/lbkit/lbkit/proxyd/config"
)

// Kinds of kernel state proxyd finds and removes: a mode's, with the two
// iptables flavours apart (their rulesets are separate, and a node may
// hold both).
const (
	stateIPTablesLegacy = "iptables-legacy"
	stateIPTablesNFT    = "iptables-nft"
	stateNFTables       = config.ModeNFTables
	stateIPVS           = config.ModeIPVS
	stateEBPF           = config.ModeEBPF
)

// stateKind is one kind of lbkit kernel state in the configured network
// namespace: how to list it (one line per object, read-only) and how to
// remove all of it.
type stateKind struct {
	name string
	// scan lists the objects; an error wrapping errNothingToScan says
	// why this kind cannot exist here.
	scan  func(ctx context.Context) ([]string, error)
	clean func(ctx context.Context) error
}

// errNothingToScan marks a kind that cannot exist on this node (its
// programs are not installed).
var errNothingToScan = errors.New("nothing to scan")

// stateKinds returns every kind of state of the namespace cfg programs:
// both iptables flavours, nftables, IPVS, and eBPF at the configured and
// the default pin path.
func stateKinds(cfg *config.Config, log *zap.Logger) ([]stateKind, error) {
	netns := cfg.Lbkit.Netns
	exclude, err := parsePrefixes("ipvs.excludeCIDRs", cfg.IPVS.ExcludeCIDRs)
	if err != nil {
		return nil, err
	}
	var kinds []stateKind
	for _, f := range []iptables.Flavour{iptables.FlavourLegacy, iptables.FlavourNFT} {
		kinds = append(kinds, stateKind{
			name: "iptables-" + string(f),
			scan: func(ctx context.Context) ([]string, error) {
				found, err := iptables.Scan(ctx, iptables.ScanOptions{Netns: netns, Flavour: f})
				if errors.Is(err, iptables.ErrNoTools) {
					return nil, fmt.Errorf("%w: %v", errNothingToScan, err)
				}
				return found, err
			},
			clean: func(ctx context.Context) error {
				dp, err := iptables.New(iptables.Options{Netns: netns, Flavour: f, Logger: slogOf(log.Named("iptables"))})
				return cleanUp(ctx, dp, err)
			},
		})
	}
	kinds = append(kinds, stateKind{
		name: stateNFTables,
		scan: func(ctx context.Context) ([]string, error) {
			return nftables.Scan(ctx, nftables.ScanOptions{Netns: netns})
		},
		clean: func(ctx context.Context) error {
			dp, err := nftables.New(nftables.Options{Netns: netns, Logger: slogOf(log.Named("nftables"))})
			return cleanUp(ctx, dp, err)
		},
	})
	kinds = append(kinds, stateKind{
		name: stateIPVS,
		scan: func(ctx context.Context) ([]string, error) {
			return ipvs.Scan(ctx, ipvs.ScanOptions{Netns: netns, ExcludeCIDRs: exclude, Logger: slogOf(log.Named("ipvs"))})
		},
		clean: func(ctx context.Context) error {
			dp, err := ipvs.New(ipvs.Options{Netns: netns, ExcludeCIDRs: exclude, Logger: slogOf(log.Named("ipvs"))})
			return cleanUp(ctx, dp, err)
		},
	})
	ebpfScan := ebpf.ScanOptions{
		Netns:    netns,
		PinPaths: []string{cfg.Lbkit.EBPF.PinPath, config.DefaultEBPFPinDir},
		Cgroup:   cfg.Lbkit.EBPF.CgroupPath, // empty: the scan looks at the cgroup v2 root
	}
	kinds = append(kinds, stateKind{
		name:  stateEBPF,
		scan:  func(ctx context.Context) ([]string, error) { return ebpf.Scan(ctx, ebpfScan) },
		clean: func(ctx context.Context) error { return ebpf.Remove(ctx, ebpfScan) },
	})
	return kinds, nil
}

// cleanUp takes what a datapath's New returned, removes everything of that
// datapath and releases its handles.
func cleanUp(ctx context.Context, dp lb.Datapath, err error) error {
	if err != nil {
		return err
	}
	return errors.Join(dp.Cleanup(ctx), dp.Close())
}

// stateNamesOfMode returns the kinds of state a mode's datapath installs.
// In iptables mode that is the configured flavour, or both when none is
// configured.
func stateNamesOfMode(cfg *config.Config) []string {
	switch mode := cfg.EffectiveMode(); mode {
	case config.ModeIPTables:
		if f := strings.ToLower(cfg.Lbkit.IPTablesFlavour); f != "" {
			return []string{"iptables-" + f}
		}
		return []string{stateIPTablesLegacy, stateIPTablesNFT}
	case config.ModeNFTables, config.ModeIPVS, config.ModeEBPF:
		return []string{mode}
	}
	return nil
}

// sweep removes every object of one kind that found lists, then scans
// again: it returns the objects removed and those that remain. err is a
// failure to remove or to scan again.
func (k stateKind) sweep(ctx context.Context, found []string) (removed, remain []string, err error) {
	cerr := k.clean(ctx)
	after, serr := k.scan(ctx)
	if serr != nil && !errors.Is(serr, errNothingToScan) {
		return nil, found, errors.Join(cerr, fmt.Errorf("scan after removing: %w", serr))
	}
	left := make(map[string]bool, len(after))
	for _, s := range after {
		left[s] = true
	}
	for _, s := range found {
		if !left[s] {
			removed = append(removed, s)
		}
	}
	return removed, after, cerr
}
