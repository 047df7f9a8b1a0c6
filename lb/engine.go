package lb

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"
)

// Config configures an Engine.
type Config struct {
	// NodeName is this node's name, for Local traffic policies.
	NodeName string
	// MinSyncPeriod is the least time between two syncs, so bursts of
	// changes coalesce. Zero syncs as soon as a change is seen.
	MinSyncPeriod time.Duration
	// SyncPeriod is the interval of full resyncs; zero means 30 s.
	SyncPeriod time.Duration
	Logger     *zap.Logger
}

// Engine (stub; being written).
type Engine struct{}

// NewEngine returns an engine driving dp.
func NewEngine(dp Datapath, cfg Config) (*Engine, error) { return nil, errors.New("not yet") }

// Upsert adds or replaces a service.
func (e *Engine) Upsert(svc *Service) error { return errors.New("not yet") }

// Delete removes a service.
func (e *Engine) Delete(key ServiceKey) {}

// SetEndpoints replaces the endpoints of a service.
func (e *Engine) SetEndpoints(key ServiceKey, eps []Endpoint) error { return errors.New("not yet") }

// Run runs the sync loop until ctx ends.
func (e *Engine) Run(ctx context.Context) error { return errors.New("not yet") }

// Flush syncs now and returns the sync's error.
func (e *Engine) Flush(ctx context.Context) error { return errors.New("not yet") }
