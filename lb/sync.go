package lb

import (
	"context"
	"errors"
	"time"
)

// Run runs the sync loop until ctx is done and returns ctx's error. A change
// is synced at once unless two syncs started within the last MinSyncPeriod,
// else as soon as the older of them is MinSyncPeriod old; a full sync runs every SyncPeriod; after a failure the engine
// retries with exponential backoff (from 1 s up to SyncPeriod) and the
// retry is a full sync. The first full sync waits for registered sources
// (RegisterSource).
func (e *Engine) Run(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		now := time.Now()
		due := e.nextDue(now)
		if !due.After(now) {
			_ = e.syncOnce(ctx, false) // errors are logged, counted and retried
			continue
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(due.Sub(now))
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
	if wait, open := e.checkGate(now); !open {
		return wait
	}
	if e.broken {
		// The datapath failed as a whole: everything, the first sync
		// included, waits for the backoff to pass.
		return e.retryAt
	}
	due := e.lastFull.Add(e.cfg.SyncPeriod)
	if e.lastFull.IsZero() {
		due = now
	}
	if e.tracker.hasPending() || e.needFull {
		// A burst of two: a change right after a sync (a periodic full
		// one, say) is synced at once; a third waits (kube-proxy's
		// bounded-frequency runner also allows two).
		due = minTime(due, e.prevStart.Add(e.cfg.MinSyncPeriod))
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

// Flush syncs now, without waiting for MinSyncPeriod or a backoff, and
// returns the sync's error: nil, a ServiceErrors naming services the
// datapath could not program, or the datapath's failure. Services that
// failed before are retried at once. If nothing changed and no full sync is
// due it returns nil at once. Before the first full sync it returns an
// error wrapping ErrSourcesNotSynced while registered sources have not
// synced.
func (e *Engine) Flush(ctx context.Context) error {
	e.mu.Lock()
	_, open := e.checkGate(time.Now())
	e.mu.Unlock()
	if !open {
		return e.gateError()
	}
	return e.syncOnce(ctx, true)
}

// syncOnce runs one sync of whatever is pending; retryNow retries failed
// services even before their backoff has passed.
func (e *Engine) syncOnce(ctx context.Context, retryNow bool) error {
	e.syncMu.Lock()
	defer e.syncMu.Unlock()
	return e.syncLocked(ctx, retryNow, false)
}

// syncLocked is syncOnce with e.syncMu held; forceFull makes it a full sync
// even when nothing is pending.
func (e *Engine) syncLocked(ctx context.Context, retryNow, forceFull bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	start := time.Now()
	e.mu.Lock()
	if len(e.failed) > 0 && (retryNow || forceFull || !start.Before(e.retryAt)) {
		// Services the datapath failed to program are due for a retry.
		for key, p := range e.failed {
			e.tracker.restore(key, p)
		}
		clear(e.failed)
	}
	full := forceFull || e.needFull || start.Sub(e.lastFull) >= e.cfg.SyncPeriod
	if !full && !e.tracker.hasPending() {
		e.mu.Unlock()
		return nil
	}
	taken := e.tracker.take()
	cs := ChangeSet{Full: full, Changed: make(map[ServiceKey]struct{}, len(taken))}
	b := e.desired.builder()
	var oldest time.Time
	for key, p := range taken {
		cs.Changed[key] = struct{}{}
		b.set(key, e.tracker.state(key, Node{Name: e.cfg.NodeName, Zone: e.cfg.NodeZone}))
		if oldest.IsZero() || p.since.Before(oldest) {
			oldest = p.since
		}
	}
	snap := b.snapshot()
	e.desired = snap
	e.prevStart, e.lastStart = e.lastStart, start
	e.inflight = oldest
	dp := e.dp
	adopt := !e.adopted
	e.mu.Unlock()

	var err error
	if a, ok := dp.(Adopter); ok && adopt {
		if err = a.Adopt(ctx); err != nil {
			err = errors.Join(errors.New("adopt existing state"), err)
		}
	}
	if err == nil {
		err = dp.Sync(ctx, snap, cs)
	}
	end := time.Now()
	e.finish(ctx, dp, snap, cs, taken, start, end, err, adopt)
	if err == nil || isPartial(err) {
		if full {
			e.retireOld(ctx)
		}
	}
	return err
}

func isPartial(err error) bool {
	var svcErrs ServiceErrors
	return errors.As(err, &svcErrs)
}

// finish records the outcome of a sync and schedules a retry if needed.
func (e *Engine) finish(ctx context.Context, dp Datapath, snap *Snapshot, cs ChangeSet, taken map[ServiceKey]*pending, start, end time.Time, err error, adopt bool) {
	var svcErrs ServiceErrors
	partialFailure := errors.As(err, &svcErrs)

	e.mu.Lock()
	e.inflight = time.Time{}
	e.broken = err != nil && !partialFailure
	if e.broken {
		e.needFull = true
		for key, p := range taken {
			e.tracker.restore(key, p)
		}
		if e.status.FailingSince.IsZero() {
			e.status.FailingSince = start
		}
	} else {
		e.status.FailingSince = time.Time{}
		if adopt {
			e.adopted = true
		}
		if cs.Full {
			e.lastFull = start
			e.needFull = false
			e.status.LastFullSync = end
		}
		e.status.LastSync = end
		for key, p := range taken {
			if serr, failed := svcErrs[key]; failed {
				e.failed[key] = p
				e.tracker.synced(key, serr, end)
				continue
			}
			e.tracker.synced(key, nil, end)
			if h := e.cfg.Hooks.Programmed; h != nil {
				h(key, end.Sub(p.latencyStart()))
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
		Datapath: dp.Name(), Full: cs.Full, Changed: len(cs.Changed),
		Start: start, Duration: end.Sub(start), Err: err, Services: snap.Len(),
	}
	res.PendingServices, res.PendingEndpoints = e.tracker.Pending()
	res.Backends = snap.Backends()
	if h := e.cfg.Hooks.SyncDone; h != nil {
		// Under the lock, so that pending counts cannot be overtaken by a
		// ChangeQueued hook of a change accepted meanwhile.
		h(res)
	}
	attrs := []any{
		"datapath", dp.Name(), "full", cs.Full, "servicesChanged", len(cs.Changed),
		"services", res.Services, "duration", res.Duration,
	}
	switch {
	case err != nil && ctx.Err() != nil:
		e.log.Info("sync interrupted by shutdown", append(attrs, "error", err)...)
	case err != nil:
		e.failures.fail(e.log, "sync", err, end, append(attrs, "retryIn", e.retryDelay)...)
	default:
		e.failures.succeed(e.log, "sync", end)
		e.log.Info("synced", attrs...)
	}
	e.mu.Unlock()
}
