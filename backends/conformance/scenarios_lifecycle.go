package conformance

import (
	"errors"
	"slices"

	"github.com/lbkit/lbkit/lb"
)

func lifecycleScenarios() []scenario {
	return []scenario{
		{name: "rejected_changes", run: rejectedChanges},
		{name: "cleanup", run: cleanup},
		{name: "full_resync", run: fullResync},
	}
}

// rejectedChanges: an invalid service (port 0) and one the datapath cannot
// express (its first undeclared scheduler) are rejected with the typed
// errors; the previous version of the same key keeps serving, another
// service keeps working, and a rejected new key never reaches the datapath.
func rejectedChanges(h *harness) {
	sched := h.spreadScheduler()
	good := service("good", sched, h.frontend(lb.TCP))
	kept := service("kept", sched, h.frontend(lb.TCP))
	h.install(good, h.ready())
	h.install(kept, h.ready())

	invalid := kept.Clone()
	invalid.Frontends[0].Port = 0
	var verr *lb.ValidationError
	if err := h.eng.Upsert(invalid); !errors.As(err, &verr) {
		h.t.Errorf("Upsert(%s with port 0) = %v, want a *lb.ValidationError", kept.Key, err)
	} else if verr.Service != kept.Key {
		h.t.Errorf("Upsert(%s with port 0): ValidationError names service %q", kept.Key, verr.Service)
	}
	broken := service("broken", sched, lb.Frontend{Addr: good.Frontends[0].Addr, Port: 0, Protocol: lb.TCP, Kind: lb.ClusterIP})
	if err := h.eng.Upsert(broken); !errors.As(err, &verr) {
		h.t.Errorf("Upsert(new service %s with port 0) = %v, want a *lb.ValidationError", broken.Key, err)
	}

	unsupported, ok := h.firstUndeclaredScheduler()
	if ok {
		u := kept.Clone()
		u.Scheduler = unsupported
		var uerr *lb.UnsupportedError
		if err := h.eng.Upsert(u); !errors.As(err, &uerr) {
			h.t.Errorf("Upsert(%s with scheduler %s) = %v, want an *lb.UnsupportedError", kept.Key, unsupported, err)
		} else if uerr.Service != kept.Key || uerr.Datapath != h.dp.Name() {
			h.t.Errorf("Upsert(%s with scheduler %s): UnsupportedError names service %q and datapath %q, want %q and %q",
				kept.Key, unsupported, uerr.Service, uerr.Datapath, kept.Key, h.dp.Name())
		}
	} else {
		h.t.Logf("datapath %s declares every scheduler: no unsupported service to try", h.dp.Name())
	}

	h.mustFlush("rejected changes")
	for _, svc := range []*lb.Service{good, kept} {
		fe := svc.Frontends[0]
		c := h.count(fe, sampleRequests)
		h.assertOnly(fe, c, h.names()...)
		h.assertSeen(fe, c, h.names()...)
	}
	snap := h.eng.Snapshot()
	if _, ok := snap.Service(broken.Key); ok {
		h.t.Errorf("rejected service %s is in the engine's snapshot", broken.Key)
	}
	if st, ok := snap.Service(kept.Key); !ok || !st.Service.Equal(kept) {
		h.t.Errorf("snapshot of %s after rejected changes: %+v, want the previous version %+v", kept.Key, st, kept)
	}
}

// firstUndeclaredScheduler returns the first of lb.Schedulers() the datapath
// does not declare.
func (h *harness) firstUndeclaredScheduler() (lb.Scheduler, bool) {
	i := slices.IndexFunc(lb.Schedulers(), func(s lb.Scheduler) bool { return !h.caps.SupportsScheduler(s) })
	if i < 0 {
		return "", false
	}
	return lb.Schedulers()[i], true
}

// cleanup: after Cleanup nothing answers on the frontends, the datapath
// leaves no kernel state behind (Options.Leftovers), and a second Cleanup
// succeeds too.
func cleanup(h *harness) {
	sched := h.spreadScheduler()
	svc := service("cleaned", sched, h.frontends(false, h.protocols()...)...)
	h.install(svc, h.ready())
	for _, fe := range svc.Frontends {
		h.request(fe)
	}
	if err := h.eng.Cleanup(h.ctx); err != nil {
		h.t.Fatalf("Cleanup: %v", err)
	}
	for _, fe := range svc.Frontends {
		h.expectNoAnswer(fe, 2, "Cleanup")
	}
	h.checkLeftovers("Cleanup")
	if err := h.eng.Cleanup(h.ctx); err != nil {
		h.t.Errorf("second Cleanup: %v", err)
	}
	h.checkLeftovers("a second Cleanup")
}

// checkLeftovers fails if Options.Leftovers reports anything.
func (h *harness) checkLeftovers(after string) {
	h.t.Helper()
	if h.opts.Leftovers == nil {
		return
	}
	if left := h.opts.Leftovers(h.t, h.env); len(left) > 0 {
		h.t.Errorf("after %s, datapath %s left %d things behind: %q", after, h.dp.Name(), len(left), left)
	}
}

// fullResync: after an outsider wipes the datapath's kernel state
// (Options.Disrupt), which must break the service, a full resync restores
// it.
func fullResync(h *harness) {
	if h.opts.Disrupt == nil {
		h.skipf("has no Options.Disrupt: the suite does not know how to wipe its state from outside")
	}
	sched := h.spreadScheduler()
	svc := service("resynced", sched, h.frontends(false, h.protocols()...)...)
	h.install(svc, h.ready())
	for _, fe := range svc.Frontends {
		h.request(fe)
	}
	h.opts.Disrupt(h.t, h.env)
	for _, fe := range svc.Frontends {
		h.expectNoAnswer(fe, 1, "Options.Disrupt wiped the datapath's state (if this fails, Disrupt did not break the service and the scenario proves nothing)")
	}
	h.eng.RequestFullSync()
	h.mustFlush("a full resync")
	for _, fe := range svc.Frontends {
		c := h.count(fe, sampleRequests)
		h.assertOnly(fe, c, h.names()...)
		h.assertSeen(fe, c, h.names()...)
	}
}
