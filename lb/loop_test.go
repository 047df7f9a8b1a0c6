package lb

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) count(substr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.b.String(), substr)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testLogger(buf *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, nil))
}

// A first sync that fails must back off like any other failure: the loop
// used to see "no full sync yet" and retry at once, hundreds of times a
// second.
func TestFailingFirstSyncBacksOff(t *testing.T) {
	r := &recorder{failN: 100}
	e := newTestEngine(t, r, Config{SyncPeriod: 8 * time.Second})
	_ = e.Upsert(svc("a", "198.18.100.1", 80))
	var delays []time.Duration
	for range 5 {
		if err := e.syncOnce(context.Background(), false); !errors.Is(err, errTest) {
			t.Fatalf("want injected failure, got %v", err)
		}
		now := time.Now()
		delays = append(delays, e.nextDue(now).Sub(now).Round(time.Second))
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}
	for i := range want {
		if delays[i] != want[i] {
			t.Fatalf("retry delays %v, want %v", delays, want)
		}
	}
	// A new change does not cut the backoff short.
	_ = e.Upsert(svc("b", "198.18.100.2", 80))
	if now := time.Now(); e.nextDue(now).Sub(now) < 7*time.Second {
		t.Fatal("a change made a broken datapath retry before its backoff")
	}
}

func TestRepeatedFailureLoggedOncePerBurst(t *testing.T) {
	var buf syncBuffer
	r := &recorder{failN: 20}
	e := newTestEngine(t, r, Config{Logger: testLogger(&buf)})
	_ = e.Upsert(svc("a", "198.18.100.1", 80))
	for range 20 {
		_ = e.Flush(context.Background())
	}
	if n := buf.count("sync failed"); n != 1 {
		t.Fatalf("20 identical failures logged %d times:\n%s", n, buf.String())
	}
	mustFlush(t, e)
	if !strings.Contains(buf.String(), "sync recovered") || !strings.Contains(buf.String(), "failures=20") {
		t.Fatalf("no summary with the count after recovery:\n%s", buf.String())
	}
}

func TestRunStopsWhileSyncsFail(t *testing.T) {
	var buf syncBuffer
	r := &recorder{failN: 1 << 30, notify: make(chan ChangeSet, 1)}
	e := newTestEngine(t, r, Config{Logger: testLogger(&buf)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	<-r.notify // the first sync failed; the loop now waits for its backoff
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
	n := r.count()
	if err := e.Flush(ctx); !errors.Is(err, context.Canceled) || r.count() != n {
		t.Fatalf("a sync ran after shutdown: %v, %d syncs", err, r.count())
	}
}

func TestOldestPendingCountsChangesBeingSynced(t *testing.T) {
	r := &recorder{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	e := newTestEngine(t, r, Config{})
	_ = e.Upsert(svc("a", "198.18.100.1", 80))
	done := make(chan error)
	go func() { done <- e.Flush(context.Background()) }()
	<-r.entered
	if st := e.Status(); st.OldestPending.IsZero() {
		t.Fatal("a change being synced does not count as pending")
	}
	r.gate <- struct{}{}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := e.Status(); !st.OldestPending.IsZero() || st.LastFullSync.IsZero() {
		t.Fatalf("after the sync: %+v", st)
	}
}

func TestFailingSince(t *testing.T) {
	r := &recorder{failN: 2}
	e := newTestEngine(t, r, Config{})
	_ = e.Flush(context.Background())
	first := e.Status().FailingSince
	_ = e.Flush(context.Background())
	if st := e.Status(); first.IsZero() || !st.FailingSince.Equal(first) || !st.LastFullSync.IsZero() {
		t.Fatalf("after two failures: %+v (first %v)", st, first)
	}
	mustFlush(t, e)
	if st := e.Status(); !st.FailingSince.IsZero() || st.LastFullSync.IsZero() {
		t.Fatalf("after success: %+v", st)
	}
}
