package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/lbkit/lbkit/proxyd/config"
)

// cleanupAll finds and removes lbkit's kernel state in the namespace: of
// every mode (both iptables flavours, nftables, IPVS, eBPF at the
// configured and the default pin path), or only of the mode given with
// --mode (in iptables mode both flavours unless one is configured). It
// logs every object it removed, scans again, and fails listing what
// remains. It is idempotent: a second run finds nothing.
func cleanupAll(ctx context.Context, cfg *config.Config, modeGiven bool, log *zap.Logger) error {
	log = log.Named("cleanup")
	kinds, err := stateKinds(cfg, log)
	if err != nil {
		return err
	}
	if modeGiven {
		want := stateNamesOfMode(cfg)
		if len(want) == 0 {
			log.Info("nothing to remove", zap.String("mode", cfg.EffectiveMode()), zap.String("why", "its state lives only in the proxyd process"))
			return nil
		}
		kinds = slices.DeleteFunc(kinds, func(k stateKind) bool { return !slices.Contains(want, k.name) })
	}
	return cleanupKinds(ctx, kinds, log)
}

// cleanupKinds scans, removes and scans again every kind of state.
func cleanupKinds(ctx context.Context, kinds []stateKind, log *zap.Logger) error {
	var errs []error
	var remain []string
	total := 0
	for _, k := range kinds {
		found, err := k.scan(ctx)
		if errors.Is(err, errNothingToScan) {
			log.Info("nothing to scan", zap.String("state", k.name), zap.String("why", err.Error()))
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: scan: %w", k.name, err))
			continue
		}
		if len(found) == 0 {
			log.Info("nothing found", zap.String("state", k.name))
			continue
		}
		removed, left, err := k.sweep(ctx, found)
		for _, s := range removed {
			log.Info("removed", zap.String("object", s))
		}
		total += len(removed)
		if err != nil && len(left) == 0 {
			log.Warn("a step of the removal failed, but nothing remains", zap.String("state", k.name), zap.Error(err))
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("remove %s state: %w", k.name, err))
		}
		remain = append(remain, left...)
	}
	for _, s := range remain {
		log.Error("still present", zap.String("object", s))
	}
	if len(remain) > 0 {
		errs = append(errs, fmt.Errorf("%d objects remain after cleanup (each logged as \"still present\"): %s",
			len(remain), abridge(remain)))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	log.Info("done", zap.Int("removed", total))
	return nil
}

// abridge joins the first few lines of a list, saying how many it left out.
func abridge(lines []string) string {
	const most = 10
	if len(lines) <= most {
		return strings.Join(lines, "; ")
	}
	return fmt.Sprintf("%s; and %d more", strings.Join(lines[:most], "; "), len(lines)-most)
}
