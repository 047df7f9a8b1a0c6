package lb

import (
	"errors"
	"testing"
)

func phaseOf(t *testing.T, e *Engine, key ServiceKey) ServiceStatus {
	t.Helper()
	st, ok := e.ServiceStatus(key)
	if !ok {
		t.Fatalf("no status for %q", key)
	}
	return st
}

func TestStatusPendingThenProgrammed(t *testing.T) {
	var changes []ServiceStatus
	r := &recorder{}
	e := newTestEngine(t, r, Config{Hooks: Hooks{StatusChanged: func(s ServiceStatus) { changes = append(changes, s) }}})
	if err := e.Upsert(svc("a", "198.18.100.1", 80)); err != nil {
		t.Fatal(err)
	}
	if st := phaseOf(t, e, "a"); st.Phase != PhasePending {
		t.Fatalf("before sync: %+v", st)
	}
	mustFlush(t, e)
	if st := phaseOf(t, e, "a"); st.Phase != PhaseProgrammed || st.Err != nil || len(st.Frontends) != 1 {
		t.Fatalf("after sync: %+v", st)
	}
	if len(changes) != 2 || changes[0].Phase != PhasePending || changes[1].Phase != PhaseProgrammed {
		t.Fatalf("StatusChanged calls: %+v", changes)
	}
	if got := e.Status().Phases; got[PhaseProgrammed] != 1 || len(got) != 1 {
		t.Fatalf("phase counts %v", got)
	}
	e.Delete("a")
	if _, ok := e.ServiceStatus("a"); ok {
		t.Fatal("deleted service still has a status")
	}
	if got := e.Status().Phases; len(got) != 0 {
		t.Fatalf("phase counts after delete %v", got)
	}
}

func TestStatusInvalidKeepsInputAndPreviousVersion(t *testing.T) {
	r := &recorder{}
	e := newTestEngine(t, r, Config{})
	_ = e.Upsert(svc("a", "198.18.100.1", 80))
	mustFlush(t, e)
	var ve *ValidationError
	if err := e.Upsert(svc("a", "198.18.100.1", 0)); !errors.As(err, &ve) {
		t.Fatalf("want ValidationError, got %v", err)
	}
	st := phaseOf(t, e, "a")
	if st.Phase != PhaseInvalid || !st.Previous || !errors.As(st.Err, &ve) || ve.Field != "frontends[0].port" {
		t.Fatalf("status of invalid update: %+v", st)
	}
	// Fixing the input programs it; nothing else needed.
	if err := e.Upsert(svc("a", "198.18.100.1", 81)); err != nil {
		t.Fatal(err)
	}
	mustFlush(t, e)
	if st := phaseOf(t, e, "a"); st.Phase != PhaseProgrammed || st.Previous {
		t.Fatalf("after fix: %+v", st)
	}
	_, snap := r.last()
	if s, _ := snap.Service("a"); s.Frontends[0].Port != 81 {
		t.Fatalf("fixed version not synced: %+v", s)
	}
}

func TestStatusConflictResolvesWhenOwnerReleases(t *testing.T) {
	r := &recorder{}
	e := newTestEngine(t, r, Config{})
	_ = e.Upsert(svc("a", "198.18.100.1", 80))
	var ce *ConflictError
	if err := e.Upsert(svc("b", "198.18.100.1", 80)); !errors.As(err, &ce) || ce.Owner != "a" {
		t.Fatalf("want conflict with a, got %v", err)
	}
	if err := e.Upsert(svc("c", "198.18.100.1", 80)); !errors.As(err, &ce) {
		t.Fatalf("want conflict for c, got %v", err)
	}
	mustFlush(t, e)
	if st := phaseOf(t, e, "b"); st.Phase != PhaseConflict || len(st.Frontends) != 0 {
		t.Fatalf("b: %+v", st)
	}
	owner, waiting := e.FrontendOwner(svc("a", "198.18.100.1", 80).Frontends[0].ID())
	if owner != "a" || len(waiting) != 2 || waiting[0] != "b" || waiting[1] != "c" {
		t.Fatalf("owner %q waiting %v", owner, waiting)
	}
	// a moves away (as an informer delivers it: one object at a time);
	// b, the oldest waiter, gets the frontend without being sent again.
	_ = e.Upsert(svc("a", "198.18.100.2", 80))
	mustFlush(t, e)
	if st := phaseOf(t, e, "b"); st.Phase != PhaseProgrammed {
		t.Fatalf("b after release: %+v", st)
	}
	if st := phaseOf(t, e, "c"); st.Phase != PhaseConflict || !errors.As(st.Err, &ce) || ce.Owner != "b" {
		t.Fatalf("c after release: %+v", st)
	}
	_, snap := r.last()
	if _, ok := snap.Service("b"); !ok {
		t.Fatal("b not in the synced snapshot")
	}
	if _, ok := snap.Service("c"); ok {
		t.Fatal("c in the synced snapshot while in conflict")
	}
}

func TestStatusConflictKeepsOwnFrontends(t *testing.T) {
	r := &recorder{}
	e := newTestEngine(t, r, Config{})
	_ = e.Upsert(svc("a", "198.18.100.1", 80))
	b := svc("b", "198.18.100.2", 80)
	b.Frontends = append(b.Frontends, svc("", "198.18.100.1", 80).Frontends...)
	if err := e.Upsert(b); err == nil {
		t.Fatal("no conflict reported")
	}
	mustFlush(t, e)
	_, snap := r.last()
	st, ok := snap.Service("b")
	if !ok || len(st.Frontends) != 1 || st.Frontends[0].Addr.String() != "198.18.100.2" {
		t.Fatalf("b should be programmed with its own frontend only: %+v", st)
	}
}

func TestStatusSwapFrontendsConverges(t *testing.T) {
	r := &recorder{}
	e := newTestEngine(t, r, Config{})
	_ = e.Upsert(svc("a", "198.18.100.1", 80))
	_ = e.Upsert(svc("b", "198.18.100.2", 80))
	mustFlush(t, e)
	_ = e.Upsert(svc("a", "198.18.100.2", 80)) // b still holds it
	_ = e.Upsert(svc("b", "198.18.100.1", 80))
	mustFlush(t, e)
	for key, want := range map[ServiceKey]string{"a": "198.18.100.2", "b": "198.18.100.1"} {
		st := phaseOf(t, e, key)
		if st.Phase != PhaseProgrammed || len(st.Frontends) != 1 || st.Frontends[0].Addr.String() != want {
			t.Fatalf("%s after swap: %+v", key, st)
		}
	}
}

func TestStatusFailedThenProgrammed(t *testing.T) {
	r := &recorder{failKey: "bad"}
	e := newTestEngine(t, r, Config{})
	_ = e.Upsert(svc("bad", "198.18.100.1", 80))
	_ = e.Flush(t.Context())
	if st := phaseOf(t, e, "bad"); st.Phase != PhaseFailed || !errors.Is(st.Err, errTest) {
		t.Fatalf("after failed sync: %+v", st)
	}
	r.failKey = ""
	mustFlush(t, e)
	if st := phaseOf(t, e, "bad"); st.Phase != PhaseProgrammed {
		t.Fatalf("after retry: %+v", st)
	}
}

func TestStatusUnsupportedThenEndpointsInvalid(t *testing.T) {
	r := &recorder{caps: allCaps()}
	r.caps.Weights = false
	e := newTestEngine(t, r, Config{})
	_ = e.Upsert(svc("a", "198.18.100.1", 80))
	eps := []Endpoint{ep("198.18.2.10:80"), ep("198.18.2.11:80")}
	eps[1].Weight = 3
	var ue *UnsupportedError
	if err := e.SetEndpoints("a", eps); !errors.As(err, &ue) {
		t.Fatalf("want UnsupportedError, got %v", err)
	}
	if st := phaseOf(t, e, "a"); st.Phase != PhaseUnsupported || st.Previous {
		t.Fatalf("unequal weights: %+v", st)
	}
	if err := e.SetEndpoints("a", []Endpoint{ep("[2001:2::1]:80")}); err == nil {
		t.Fatal("an IPv6 endpoint of an IPv4 service was accepted")
	}
	if st := phaseOf(t, e, "a"); st.Phase != PhaseInvalid {
		t.Fatalf("mixed family: %+v", st)
	}
}

func TestServiceErrorsUnwrap(t *testing.T) {
	err := error(ServiceErrors{"a": errTest, "b": errors.New("other")})
	if !errors.Is(err, errTest) {
		t.Fatal("errors.Is does not see a service's error")
	}
}
