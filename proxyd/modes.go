package main

import (
	"fmt"

	"go.uber.org/zap"

	"github.com/lbkit/lbkit/backends/userspace"
	"github.com/lbkit/lbkit/lb"
	"github.com/lbkit/lbkit/proxyd/config"
)

// notLandedError says a mode's datapath is not part of lbkit yet.
type notLandedError struct{ mode string }

func (e *notLandedError) Error() string {
	return fmt.Sprintf("mode %q: the %s datapath has not landed in lbkit yet (available: %s); use --mode=%s",
		e.mode, e.mode, config.ModeUserspace, config.ModeUserspace)
}

// newDatapath builds the datapath of the configured mode.
func newDatapath(cfg *config.Config, log *zap.Logger) (lb.Datapath, error) {
	switch mode := cfg.EffectiveMode(); mode {
	case config.ModeUserspace:
		return userspace.New(userspace.Options{
			Netns:          cfg.Lbkit.Netns,
			Logger:         log.Named("userspace"),
			UDPIdleTimeout: cfg.Lbkit.Userspace.UDPIdleTimeout.Duration,
		}), nil
	case config.ModeIPTables, config.ModeNFTables, config.ModeIPVS, config.ModeEBPF:
		return nil, &notLandedError{mode}
	default:
		return nil, fmt.Errorf("unknown mode %q", mode)
	}
}

// persistent reports whether a mode's datapath state outlives proxyd (kernel
// state), so that a restart must adopt it and --cleanup must remove it.
func persistent(mode string) bool { return mode != config.ModeUserspace }
