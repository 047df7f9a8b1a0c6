package lb

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Cleaner is anything whose state the engine can remove: a Datapath, or a
// handle on the state another datapath (or an earlier process in another
// mode) left behind.
type Cleaner interface {
	Name() string
	Cleanup(ctx context.Context) error
}

// Retire asks the engine to remove the state of old once its own datapath
// has completed a full sync, so that traffic moves from the old state to
// the new without a gap in between. proxyd uses it at start for the state
// of other modes it finds. A cleanup that fails is logged and tried again
// after the next full sync.
func (e *Engine) Retire(old ...Cleaner) {
	e.mu.Lock()
	e.retire = append(e.retire, old...)
	e.mu.Unlock()
}

// retireOld cleans up the retired datapaths after a successful full sync.
// Called with e.syncMu held.
func (e *Engine) retireOld(ctx context.Context) {
	e.mu.Lock()
	old := e.retire
	e.retire = nil
	e.mu.Unlock()
	var keep []Cleaner
	for _, c := range old {
		if err := c.Cleanup(ctx); err != nil {
			e.log.Warn("could not remove the state of a previous datapath; retrying after the next full sync",
				"datapath", c.Name(), "error", err)
			keep = append(keep, c)
			continue
		}
		e.log.Info("removed the state of a previous datapath", "datapath", c.Name())
	}
	if len(keep) > 0 {
		e.mu.Lock()
		e.retire = append(keep, e.retire...)
		e.mu.Unlock()
	}
}

// Handoff makes dp the engine's datapath at run time. Every service is
// re-evaluated against dp's capabilities (a service dp cannot express
// becomes unsupported, with the reason), dp is offered the existing state
// (Adopter) and gets a full sync, and only when that sync succeeded (a
// ServiceErrors for some services counts as success) is the old datapath
// cleaned up. If dp's sync fails as a whole, the old datapath stays in
// place and keeps serving, the engine resyncs it in full, and Handoff
// returns the error (dp is left to the caller to Cleanup and Close). After
// a successful cleanup the old datapath is closed. An error cleaning up
// the old datapath is returned after dp took over; the cleanup is retried
// after the next full sync.
func (e *Engine) Handoff(ctx context.Context, dp Datapath) error {
	if dp == nil {
		return errors.New("lb: Handoff: nil datapath")
	}
	e.syncMu.Lock()
	defer e.syncMu.Unlock()
	e.mu.Lock()
	old, oldAdopted := e.dp, e.adopted
	if dp == old {
		e.mu.Unlock()
		return fmt.Errorf("lb: Handoff: %s is already the engine's datapath", dp.Name())
	}
	e.switchTo(dp, time.Now())
	e.mu.Unlock()

	err := e.syncLocked(ctx, true, true)
	if err != nil && !isPartial(err) {
		e.mu.Lock()
		e.switchTo(old, time.Now())
		e.adopted = oldAdopted
		e.mu.Unlock()
		e.wake()
		return fmt.Errorf("lb: handoff from %s to %s: %w (%s keeps serving)", old.Name(), dp.Name(), err, old.Name())
	}
	e.log.Info("datapath handed over", "from", old.Name(), "to", dp.Name())
	if cerr := old.Cleanup(ctx); cerr != nil {
		e.Retire(old)
		return fmt.Errorf("lb: handoff from %s to %s: %s took over, but cleaning up %s failed (retried after the next full sync): %w",
			old.Name(), dp.Name(), dp.Name(), old.Name(), cerr)
	}
	e.log.Info("removed the state of a previous datapath", "datapath", old.Name())
	if cerr := old.Close(); cerr != nil {
		e.log.Warn("could not release the previous datapath's handles", "datapath", old.Name(), "error", cerr)
	}
	return nil
}

// switchTo makes dp the engine's datapath and re-evaluates every service
// for it; the next sync is full. Called with e.mu held.
func (e *Engine) switchTo(dp Datapath, now time.Time) {
	e.dp = dp
	e.adopted = false
	e.needFull = true
	e.broken = false
	e.retryAt, e.retryDelay = time.Time{}, 0
	e.tracker.setCapabilities(dp.Capabilities(), dp.Name(), now)
}
