package main

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.uber.org/zap"

	"github.com/lbkit/lbkit/backends/iptables"
	"github.com/lbkit/lbkit/proxyd/config"
)

// cleaner removes one kind of state.
type cleaner interface {
	Name() string
	Cleanup(ctx context.Context) error
}

// leftover is the state another mode left in the namespace: what was found
// (one line per object) and what removes exactly that mode's state.
type leftover struct {
	// Mode is the kind of state: "iptables-legacy", "iptables-nft",
	// "nftables", "ipvs" or "ebpf".
	Mode  string
	Found []string
	// Cleaner removes the mode's state and fails, naming what remains,
	// unless a scan afterwards finds none.
	Cleaner cleaner
}

// detectOtherModes returns the lbkit state of every mode other than the
// configured one: the other iptables flavour counts as another mode, eBPF
// state counts unless the mode is ebpf. Nothing is changed; the returned
// Cleaners never touch the configured mode's state. A kind that could not
// be scanned is reported in the error, and the others are still returned.
func detectOtherModes(ctx context.Context, cfg *config.Config, log *zap.Logger) ([]leftover, error) {
	log = log.Named("detect")
	kinds, err := stateKinds(cfg, log)
	if err != nil {
		return nil, err
	}
	own, err := ownStateNames(ctx, cfg)
	if err != nil {
		return nil, err
	}
	var out []leftover
	var errs []error
	for _, k := range kinds {
		if slices.Contains(own, k.name) {
			continue
		}
		found, err := k.scan(ctx)
		if errors.Is(err, errNothingToScan) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("detect %s state: %w", k.name, err))
			continue
		}
		if len(found) > 0 {
			out = append(out, leftover{Mode: k.name, Found: found, Cleaner: kindCleaner{k}})
		}
	}
	return out, errors.Join(errs...)
}

// ownStateNames returns the kinds of state the configured mode installs;
// in iptables mode without a configured flavour, the system's flavour
// (the one the datapath will use).
func ownStateNames(ctx context.Context, cfg *config.Config) ([]string, error) {
	if cfg.EffectiveMode() != config.ModeIPTables || cfg.Lbkit.IPTablesFlavour != "" {
		return stateNamesOfMode(cfg), nil
	}
	f, err := iptables.DetectFlavour(ctx)
	if err != nil {
		return nil, err
	}
	return []string{"iptables-" + string(f)}, nil
}

// kindCleaner is the Cleaner of a leftover.
type kindCleaner struct{ k stateKind }

// Name returns the kind of state, such as "iptables-legacy".
func (c kindCleaner) Name() string { return c.k.name }

// Cleanup removes every object of the kind and scans again: an error
// names what remains.
func (c kindCleaner) Cleanup(ctx context.Context) error {
	found, err := c.k.scan(ctx)
	if errors.Is(err, errNothingToScan) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: scan: %w", c.k.name, err)
	}
	if len(found) == 0 {
		return nil
	}
	_, remain, err := c.k.sweep(ctx, found)
	if len(remain) > 0 {
		return errors.Join(err, fmt.Errorf("%s: %d objects remain: %s", c.k.name, len(remain), abridge(remain)))
	}
	return nil
}
