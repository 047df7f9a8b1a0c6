package lb

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestFirstFullSyncWaitsForSources(t *testing.T) {
	r := &recorder{}
	e := newTestEngine(t, r, Config{InitialSyncTimeout: time.Hour})
	fileSynced := e.RegisterSource("file")
	kubeSynced := e.RegisterSource("kube")
	_ = e.Upsert(svc("a", "198.18.100.1", 80))
	fileSynced()
	if err := e.Flush(context.Background()); !errors.Is(err, ErrSourcesNotSynced) || r.count() != 0 {
		t.Fatalf("Flush before every source synced: %v, %d syncs", err, r.count())
	}
	if now := time.Now(); e.nextDue(now).Sub(now) < 59*time.Minute {
		t.Fatal("the loop would sync before the sources synced")
	}
	if w := e.Status().WaitingFor; len(w) != 1 || w[0] != "kube" {
		t.Fatalf("WaitingFor %v", w)
	}
	kubeSynced()
	mustFlush(t, e)
	if cs, _ := r.last(); !cs.Full {
		t.Fatal("first sync not full")
	}
}

func TestSourceGateTimesOut(t *testing.T) {
	var buf syncBuffer
	r := &recorder{}
	e := newTestEngine(t, r, Config{InitialSyncTimeout: time.Nanosecond, Logger: testLogger(&buf)})
	e.RegisterSource("slow")
	time.Sleep(time.Millisecond)
	if now := time.Now(); e.nextDue(now).After(now) {
		t.Fatal("gate did not open after its timeout")
	}
	if buf.count("sources did not sync in time") != 1 || buf.count("sources=slow") != 1 {
		t.Fatalf("timeout not logged with the source's name:\n%s", buf.String())
	}
}

func TestSourceGateWithoutTimeout(t *testing.T) {
	r := &recorder{}
	e := newTestEngine(t, r, Config{InitialSyncTimeout: -1})
	synced := e.RegisterSource("file")
	if now := time.Now(); !e.nextDue(now).After(now.Add(time.Hour)) {
		t.Fatal("a gate without timeout would open")
	}
	synced()
	if now := time.Now(); e.nextDue(now).After(now) {
		t.Fatal("gate still closed after the source synced")
	}
}

func TestSourcesOfOneNameEachSync(t *testing.T) {
	r := &recorder{}
	e := newTestEngine(t, r, Config{InitialSyncTimeout: time.Hour})
	first := e.RegisterSource("file")
	second := e.RegisterSource("file")
	first()
	if err := e.Flush(context.Background()); !errors.Is(err, ErrSourcesNotSynced) {
		t.Fatalf("Flush with one of two same-named sources synced: %v", err)
	}
	second()
	mustFlush(t, e)
}
