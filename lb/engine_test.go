package lb

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func newTestEngine(t *testing.T, r *recorder, cfg Config) *Engine {
	t.Helper()
	if r.caps.Schedulers == nil {
		r.caps = allCaps()
	}
	e, err := NewEngine(r, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func mustFlush(t *testing.T, e *Engine) {
	t.Helper()
	if err := e.Flush(context.Background()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func TestEngineFirstSyncFullThenPartial(t *testing.T) {
	r := &recorder{}
	e := newTestEngine(t, r, Config{})
	for i := range 3 {
		if err := e.Upsert(svc(fmt.Sprint("s", i), fmt.Sprintf("198.18.100.%d", i+1), 80)); err != nil {
			t.Fatal(err)
		}
	}
	mustFlush(t, e)
	cs, snap := r.last()
	if !cs.Full || len(cs.Changed) != 3 || snap.Len() != 3 {
		t.Fatalf("first sync: full=%v changed=%v len=%d", cs.Full, cs.Keys(), snap.Len())
	}
	if err := e.SetEndpoints("s1", []Endpoint{ep("198.18.2.10:8080")}); err != nil {
		t.Fatal(err)
	}
	mustFlush(t, e)
	cs, snap = r.last()
	if cs.Full || len(cs.Changed) != 1 || !cs.Has("s1") {
		t.Fatalf("second sync: full=%v changed=%v", cs.Full, cs.Keys())
	}
	st, ok := snap.Service("s1")
	if !ok || len(st.Frontends[0].Backends) != 1 || snap.Backends() != 1 {
		t.Fatalf("s1 state %+v, backends %d", st, snap.Backends())
	}
	e.Delete("s0")
	mustFlush(t, e)
	cs, snap = r.last()
	if !cs.Has("s0") || snap.Len() != 2 {
		t.Fatalf("delete: changed=%v len=%d", cs.Keys(), snap.Len())
	}
	if _, ok := snap.Service("s0"); ok {
		t.Fatal("deleted service still in snapshot")
	}
	n := r.count()
	mustFlush(t, e) // nothing pending: no sync
	if r.count() != n {
		t.Fatal("Flush with nothing pending called Sync")
	}
}

func TestEngineNoopUpdateYieldsNoChange(t *testing.T) {
	r := &recorder{}
	e := newTestEngine(t, r, Config{})
	s := svc("a", "198.18.100.1", 80)
	_ = e.Upsert(s)
	_ = e.SetEndpoints("a", []Endpoint{ep("198.18.2.10:80")})
	mustFlush(t, e)
	n := r.count()
	_ = e.Upsert(svc("a", "198.18.100.1", 80))
	_ = e.SetEndpoints("a", []Endpoint{ep("198.18.2.10:80")})
	if st := e.Status(); !st.OldestPending.IsZero() {
		t.Fatalf("no-op updates left a pending change: %+v", st)
	}
	mustFlush(t, e)
	if r.count() != n {
		t.Fatal("no-op update caused a sync")
	}
}

func TestEngineEndpointsBeforeService(t *testing.T) {
	r := &recorder{}
	e := newTestEngine(t, r, Config{})
	if err := e.SetEndpoints("a", []Endpoint{ep("198.18.2.10:80")}); err != nil {
		t.Fatal(err)
	}
	mustFlush(t, e)
	if _, snap := r.last(); snap.Len() != 0 {
		t.Fatal("endpoints without a service produced a service")
	}
	_ = e.Upsert(svc("a", "198.18.100.1", 80))
	mustFlush(t, e)
	_, snap := r.last()
	if st, ok := snap.Service("a"); !ok || len(st.Frontends[0].Backends) != 1 {
		t.Fatalf("service after endpoints: %+v", st)
	}
}

func TestEngineRejectsKeepPreviousVersion(t *testing.T) {
	r := &recorder{caps: allCaps()}
	r.caps.Schedulers = []Scheduler{Random}
	r.caps.Weights = false
	var rejected []ServiceKey
	e := newTestEngine(t, r, Config{Hooks: Hooks{Rejected: func(k ServiceKey, _ error) { rejected = append(rejected, k) }}})
	good := svc("a", "198.18.100.1", 80)
	if err := e.Upsert(good); err != nil {
		t.Fatal(err)
	}
	_ = e.SetEndpoints("a", []Endpoint{ep("198.18.2.10:80")})

	bad := svc("a", "198.18.100.1", 80)
	bad.Scheduler = LC
	var ue *UnsupportedError
	if err := e.Upsert(bad); !errors.As(err, &ue) || ue.Field != "scheduler" || ue.Datapath != "recorder" || ue.Service != "a" {
		t.Fatalf("unsupported scheduler: got %v", err)
	}
	invalid := svc("a", "198.18.100.1", 0)
	var ve *ValidationError
	if err := e.Upsert(invalid); !errors.As(err, &ve) || ve.Field != "frontends[0].port" {
		t.Fatalf("invalid port: got %v", err)
	}
	weighted := []Endpoint{ep("198.18.2.10:80"), ep("198.18.2.11:80")}
	weighted[1].Weight = 5
	if err := e.SetEndpoints("a", weighted); !errors.As(err, &ue) || ue.Field != "endpoints[1].weight" {
		t.Fatalf("unequal weights: got %v", err)
	}
	clash := svc("b", "198.18.100.1", 80)
	var ce *ConflictError
	if err := e.Upsert(clash); !errors.As(err, &ce) || ce.Owner != "a" || ce.Field != "frontends[0]" {
		t.Fatalf("duplicate frontend across services: got %v", err)
	}
	if err := e.Upsert(svc("c", "198.18.100.3", 80)); err != nil {
		t.Fatal(err)
	}
	mustFlush(t, e)
	_, snap := r.last()
	st, ok := snap.Service("a")
	if !ok || st.Scheduler() != Random || st.Frontends[0].Port != 80 || len(st.Frontends[0].Backends) != 1 {
		t.Fatalf("previous version of a lost: %+v", st)
	}
	if _, ok := snap.Service("c"); !ok {
		t.Fatal("good service c not synced")
	}
	if len(rejected) != 4 {
		t.Fatalf("Rejected hook called %d times, want 4", len(rejected))
	}
}

func TestEngineFailureMakesNextSyncFull(t *testing.T) {
	r := &recorder{}
	e := newTestEngine(t, r, Config{})
	_ = e.Upsert(svc("a", "198.18.100.1", 80))
	mustFlush(t, e) // full, ok
	_ = e.Upsert(svc("b", "198.18.100.2", 80))
	r.failN = 1
	if err := e.Flush(context.Background()); !errors.Is(err, errTest) {
		t.Fatalf("want injected failure, got %v", err)
	}
	if st := e.Status(); st.LastError == nil || st.OldestPending.IsZero() {
		t.Fatalf("status after failure: %+v", st)
	}
	mustFlush(t, e)
	cs, _ := r.last()
	if !cs.Full || !cs.Has("b") {
		t.Fatalf("after failure: full=%v changed=%v", cs.Full, cs.Keys())
	}
}

func TestEngineServiceErrorsRetryOnlyThatService(t *testing.T) {
	r := &recorder{failKey: "bad"}
	var programmed []ServiceKey
	e := newTestEngine(t, r, Config{Hooks: Hooks{Programmed: func(k ServiceKey, _ time.Duration) { programmed = append(programmed, k) }}})
	_ = e.Upsert(svc("bad", "198.18.100.1", 80))
	_ = e.Upsert(svc("good", "198.18.100.2", 80))
	var se ServiceErrors
	if err := e.Flush(context.Background()); !errors.As(err, &se) || len(se) != 1 {
		t.Fatalf("want ServiceErrors, got %v", err)
	}
	if len(programmed) != 1 || programmed[0] != "good" {
		t.Fatalf("programmed %v, want [good]", programmed)
	}
	r.failKey = ""
	mustFlush(t, e) // retried at once by Flush
	cs, _ := r.last()
	if cs.Full || len(cs.Changed) != 1 || !cs.Has("bad") {
		t.Fatalf("retry: full=%v changed=%v", cs.Full, cs.Keys())
	}
}

func TestEngineRunCoalesces(t *testing.T) {
	r := &recorder{gate: make(chan struct{}), entered: make(chan struct{}, 10), notify: make(chan ChangeSet, 10)}
	e := newTestEngine(t, r, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() { cancel(); close(r.gate); <-done })

	<-r.entered // the initial full sync is running, parked on the gate
	for i := range 100 {
		_ = e.Upsert(svc(fmt.Sprint("s", i), fmt.Sprintf("198.18.100.%d", i+1), 80))
	}
	r.gate <- struct{}{}
	if first := <-r.notify; !first.Full {
		t.Fatal("first sync not full")
	}
	<-r.entered
	r.gate <- struct{}{}
	second := <-r.notify
	if second.Full || len(second.Changed) != 100 {
		t.Fatalf("burst was not coalesced into one sync: full=%v changed=%d", second.Full, len(second.Changed))
	}
}

func TestEngineRunPeriodicFullAndRetry(t *testing.T) {
	r := &recorder{notify: make(chan ChangeSet, 100), failN: 1}
	e := newTestEngine(t, r, Config{SyncPeriod: 20 * time.Millisecond})
	// Upserted before Run, so that no sync can come between Run's first
	// and the change (which would then be a partial sync of its own).
	_ = e.Upsert(svc("a", "198.18.100.1", 80))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	// The first sync fails; the retry (after backoff) and the periodic
	// resyncs after it must all be full.
	fulls := 0
	for fulls < 3 {
		cs := <-r.notify
		if !cs.Full {
			t.Fatalf("unexpected partial sync %v", cs.Keys())
		}
		fulls++
	}
	if st := e.Status(); st.LastError != nil || st.LastSync.IsZero() {
		t.Fatalf("status after recovery: %+v", st)
	}
}
