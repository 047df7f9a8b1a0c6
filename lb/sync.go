package lb

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"
)

// Run runs the sync loop until ctx is done and returns ctx's error. A change
// is synced as soon as MinSyncPeriod has passed since the previous sync
// started; a full sync runs every SyncPeriod; after a failure the engine
// retries with exponential backoff (from 1 s up to SyncPeriod) and the
// retry is a full sync.
func (e *Engine) Run(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		now := time.Now()
		due := e.nextDue(now)
		if !due.After(now) {
			_ = e.syncOnce(ctx, false) // errors are logged, counted and retried
			continue
		}
		wait := due.Sub(now)
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-e.kick:
		case <-timer.C:
		}
	}
}

// nextDue returns when the next sync should start: the periodic full sync
// at the latest.
func (e *Engine) nextDue(now time.Time) time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	due := e.lastFull.Add(e.cfg.SyncPeriod)
	if e.lastFull.IsZero() {
		due = now
	}
	switch {
	case e.broken:
		// The datapath failed as a whole: everything waits for the retry.
		return minTime(due, e.retryAt)
	case e.tracker.HasPending() || e.needFull:
		due = minTime(due, e.lastStart.Add(e.cfg.MinSyncPeriod))
	}
	if len(e.failed) > 0 {
		due = minTime(due, e.retryAt)
	}
	return due
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Flush syncs now, without waiting for MinSyncPeriod, and returns the
// sync's error: nil, a ServiceErrors naming services the datapath could not
// program, or the datapath's failure. Services that failed before are retried
// at once. If nothing changed and no full sync is due it returns nil at once.
func (e *Engine) Flush(ctx context.Context) error {
	return e.syncOnce(ctx, true)
}

// syncOnce runs one sync of whatever is pending; retryNow retries failed
// services even before their backoff has passed.
func (e *Engine) syncOnce(ctx context.Context, retryNow bool) error {
	e.syncMu.Lock()
	defer e.syncMu.Unlock()

	start := time.Now()
	e.mu.Lock()
	if len(e.failed) > 0 && (retryNow || !start.Before(e.retryAt)) {
		// Services the datapath failed to program are due for a retry.
		for key, p := range e.failed {
			e.tracker.restore(key, p)
		}
		clear(e.failed)
	}
	full := e.needFull || start.Sub(e.lastFull) >= e.cfg.SyncPeriod
	if !full && !e.tracker.HasPending() {
		e.mu.Unlock()
		return nil
	}
	taken := e.tracker.take()
	cs := ChangeSet{Full: full, Changed: make(map[ServiceKey]struct{}, len(taken))}
	b := e.desired.builder()
	for key := range taken {
		cs.Changed[key] = struct{}{}
		b.set(key, e.tracker.state(key, e.cfg.NodeName))
	}
	snap := b.snapshot()
	e.desired = snap
	e.lastStart = start
	adopt := !e.adopted
	e.mu.Unlock()

	var err error
	if a, ok := e.dp.(Adopter); ok && adopt {
		if err = a.Adopt(ctx); err != nil {
			err = errors.Join(errors.New("adopt existing state"), err)
		}
	}
	if err == nil {
		err = e.dp.Sync(ctx, snap, cs)
	}
	end := time.Now()
	e.finish(snap, cs, taken, start, end, err, adopt)
	return err
}

// finish records the outcome of a sync and schedules a retry if needed.
func (e *Engine) finish(snap *Snapshot, cs ChangeSet, taken map[ServiceKey]*pending, start, end time.Time, err error, adopt bool) {
	var svcErrs ServiceErrors
	partialFailure := errors.As(err, &svcErrs)

	e.mu.Lock()
	e.broken = err != nil && !partialFailure
	if e.broken {
		e.needFull = true
		for key, p := range taken {
			e.tracker.restore(key, p)
		}
	} else {
		if adopt {
			e.adopted = true
		}
		if cs.Full {
			e.lastFull = start
			e.needFull = false
		}
		e.status.LastSync = end
		for key, p := range taken {
			if _, failed := svcErrs[key]; failed {
				e.failed[key] = p
				continue
			}
			if h := e.cfg.Hooks.Programmed; h != nil {
				h(key, end.Sub(p.since))
			}
		}
	}
	if err != nil {
		e.retryDelay = min(max(2*e.retryDelay, retryBase), e.cfg.SyncPeriod)
		e.retryAt = end.Add(e.retryDelay)
	} else if len(e.failed) == 0 {
		e.retryDelay, e.retryAt = 0, time.Time{}
	}
	e.status.LastError = err
	res := SyncResult{
		Datapath: e.dp.Name(), Full: cs.Full, Changed: len(cs.Changed),
		Start: start, Duration: end.Sub(start), Err: err, Services: snap.Len(),
	}
	res.PendingServices, res.PendingEndpoints = e.tracker.Pending()
	res.Backends = snap.Backends()
	if h := e.cfg.Hooks.SyncDone; h != nil {
		// Under the lock, so that pending counts cannot be overtaken by a
		// ChangeQueued hook of a change accepted meanwhile.
		h(res)
	}
	e.mu.Unlock()

	fields := []zap.Field{
		zap.Bool("full", cs.Full), zap.Int("servicesChanged", len(cs.Changed)),
		zap.Int("services", res.Services), zap.Duration("duration", res.Duration),
	}
	if err != nil {
		e.log.Error("sync failed", append(fields, zap.Error(err))...)
	} else {
		e.log.Info("synced", fields...)
	}
}
