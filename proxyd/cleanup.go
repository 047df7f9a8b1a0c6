package main

import (
	"context"
	"errors"

	"go.uber.org/zap"

	"github.com/lbkit/lbkit/proxyd/config"
)

// cleanupAll removes what the datapath of every mode installed (or only of
// the mode given with --mode). Modes whose datapath keeps no state outside
// the process, or has not landed, have nothing to remove. It is idempotent.
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
		var nl *notLandedError
		if errors.As(err, &nl) {
			log.Info("cleanup: nothing to remove", zap.String("mode", mode), zap.String("why", "datapath not landed yet"))
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
