package main

import (
	"context"
	"errors"

	"go.uber.org/zap"

	"github.com/lbkit/lbkit/backends/ipvs"
	"github.com/lbkit/lbkit/proxyd/config"
)

// cleanupAll removes what the datapath of every mode installed (or only of
// the mode given with --mode). A mode whose datapath keeps no state outside
// the process, or IPVS on a kernel without it, has nothing to remove. It is
// idempotent.
func cleanupAll(ctx context.Context, cfg *config.Config, modeGiven bool, log *zap.Logger) error {
	modes := config.Modes()
	if modeGiven {
		modes = []string{cfg.EffectiveMode()}
	}
	var errs []error
	for _, mode := range modes {
		if !persistent(mode) {
			log.Info("cleanup: nothing to remove", zap.String("mode", mode), zap.String("why", "state lives only in the proxyd process"))
			continue
		}
		c := *cfg
		c.Mode = mode
		dp, err := newDatapath(&c, log, datapathHooks{})
		if errors.Is(err, ipvs.ErrNoIPVS) {
			log.Info("cleanup: nothing to remove", zap.String("mode", mode), zap.String("why", "the kernel has no IPVS"))
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := dp.Cleanup(ctx); err != nil {
			errs = append(errs, err)
			continue
		}
		log.Info("cleanup: removed", zap.String("mode", mode))
	}
	return errors.Join(errs...)
}
