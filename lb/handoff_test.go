package lb

import (
	"context"
	"errors"
	"testing"
)

func TestHandoffSyncsNewThenCleansOld(t *testing.T) {
	old := &recorder{name: "old"}
	e := newTestEngine(t, old, Config{})
	lc := svc("lc", "198.18.100.1", 80)
	lc.Scheduler = LC
	_ = e.Upsert(lc)
	_ = e.Upsert(svc("plain", "198.18.100.2", 80))
	mustFlush(t, e)

	next := &recorder{name: "next", caps: allCaps()}
	next.caps.Schedulers = []Scheduler{Random}
	if err := e.Handoff(context.Background(), next); err != nil {
		t.Fatal(err)
	}
	if e.Datapath() != next || old.cleanups() != 1 || old.closed != 1 || next.closed != 0 {
		t.Fatalf("datapath %s, old cleaned %d times", e.Datapath().Name(), old.cleanups())
	}
	cs, snap := next.last()
	if !cs.Full || snap.Len() != 1 {
		t.Fatalf("new datapath's first sync: full=%v services=%d", cs.Full, snap.Len())
	}
	var ue *UnsupportedError
	if st := phaseOf(t, e, "lc"); st.Phase != PhaseUnsupported || !errors.As(st.Err, &ue) || ue.Datapath != "next" {
		t.Fatalf("lc on a datapath without lc: %+v", st)
	}
	if st := phaseOf(t, e, "plain"); st.Phase != PhaseProgrammed {
		t.Fatalf("plain: %+v", st)
	}
}

func TestHandoffFailureKeepsOld(t *testing.T) {
	old := &recorder{name: "old"}
	e := newTestEngine(t, old, Config{})
	_ = e.Upsert(svc("a", "198.18.100.1", 80))
	mustFlush(t, e)
	n := old.count()
	next := &recorder{name: "next", failN: 1}
	if err := e.Handoff(context.Background(), next); !errors.Is(err, errTest) {
		t.Fatalf("want the new datapath's failure, got %v", err)
	}
	if e.Datapath() != old || old.cleanups() != 0 {
		t.Fatalf("after a failed handoff: datapath %s, old cleaned %d times", e.Datapath().Name(), old.cleanups())
	}
	mustFlush(t, e)
	if cs, _ := old.last(); old.count() != n+1 || !cs.Full {
		t.Fatal("the old datapath was not resynced in full after the failed handoff")
	}
}

func TestRetireAfterFirstFullSync(t *testing.T) {
	r := &recorder{failN: 1}
	e := newTestEngine(t, r, Config{})
	gone := &recorder{name: "iptables-legacy"}
	e.Retire(gone)
	_ = e.Flush(context.Background())
	if gone.cleanups() != 0 {
		t.Fatal("old state removed before the new datapath was programmed")
	}
	mustFlush(t, e)
	if gone.cleanups() != 1 {
		t.Fatalf("old state cleaned %d times after the first full sync", gone.cleanups())
	}
	e.RequestFullSync()
	mustFlush(t, e)
	if gone.cleanups() != 1 {
		t.Fatal("retired datapath cleaned again")
	}
}
