package lb

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ErrSourcesNotSynced is returned (wrapped) by Flush while the first full
// sync waits for registered sources.
var ErrSourcesNotSynced = errors.New("waiting for sources to sync")

// gate holds the first full sync (the one that prunes state left from
// before) until every registered source has synced once, or until timeout
// has passed since the first registration.
type gate struct {
	timeout  time.Duration
	sources  map[string]bool // name -> synced
	deadline time.Time
	open     bool
}

// RegisterSource tells the engine that a source named name feeds it. The
// first full sync, which removes whatever the datapath holds that the
// engine was not given, waits until every registered source has called the
// returned function (once its initial state is in the engine), or until
// Config.InitialSyncTimeout has passed since the first registration (a
// negative timeout waits for as long as it takes); the timeout is logged
// with the names of the sources that did not sync.
// Registering after the first full sync has no effect.
func (e *Engine) RegisterSource(name string) (synced func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	g := &e.gate
	if g.open {
		return func() {}
	}
	if g.sources == nil {
		g.sources = make(map[string]bool)
		g.deadline = time.Now().Add(g.timeout)
		if g.timeout < 0 {
			g.deadline = time.Time{} // no deadline: see checkGate
		}
	}
	// Two sources of one name are two sources: each must sync.
	for i, base := 2, name; ; i++ {
		if _, taken := g.sources[name]; !taken {
			break
		}
		name = fmt.Sprintf("%s#%d", base, i)
	}
	g.sources[name] = false
	return func() {
		e.mu.Lock()
		if !g.open {
			if _, ok := g.sources[name]; ok && !g.sources[name] {
				g.sources[name] = true
				e.log.Info("source synced", "source", name)
			}
		}
		e.mu.Unlock()
		e.wake()
	}
}

// waiting returns the registered sources that have not synced, sorted;
// nil once the gate is open.
func (g *gate) waiting() []string {
	if g.open {
		return nil
	}
	var out []string
	for name, ok := range g.sources {
		if !ok {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// check opens the gate when every source has synced or the deadline has
// passed; otherwise it returns when to look again. Called with e.mu held.
func (e *Engine) checkGate(now time.Time) (wait time.Time, open bool) {
	g := &e.gate
	if g.open {
		return time.Time{}, true
	}
	waiting := g.waiting()
	if len(waiting) > 0 && g.timeout < 0 {
		return now.Add(24 * time.Hour), false // a source's synced wakes the loop
	}
	if len(waiting) > 0 && now.Before(g.deadline) {
		return g.deadline, false
	}
	if len(waiting) > 0 {
		e.log.Warn("sources did not sync in time; running the first full sync without them",
			"sources", strings.Join(waiting, ","), "timeout", g.timeout)
	}
	g.open = true
	return time.Time{}, true
}

// gateError is the error Flush returns while the gate is closed.
func (e *Engine) gateError() error {
	return fmt.Errorf("lb: %w: %s", ErrSourcesNotSynced, strings.Join(e.gate.waiting(), ", "))
}
