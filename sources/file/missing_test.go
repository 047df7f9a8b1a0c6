package file

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lbkit/lbkit/internal/testenv"
)

// TestMissingFileBeforeFirstLoad: there is no last good state before the
// file was first applied, so a missing file is said to be waited for (once,
// however often it is polled), and a bad first version says nothing is
// applied; only after a good load does a failure keep "the last good state".
func TestMissingFileBeforeFirstLoad(t *testing.T) {
	log, logs := testenv.CaptureLogs(slog.LevelInfo)
	path := filepath.Join(t.TempDir(), "services.yaml")
	s := New(path, newRecordSink(), Options{Logger: log})
	for range 3 {
		if err := s.Load(); err == nil {
			t.Fatal("Load of a missing file succeeded")
		}
	}
	entries := logs.TakeAll()
	if len(entries) != 1 || entries[0].Level != slog.LevelWarn ||
		!strings.Contains(entries[0].Message, "does not exist; waiting for it") {
		t.Fatalf("a missing file polled 3 times logged %v; want one warning that it is waited for", entries)
	}

	writeFile(t, path, strings.Replace(threeServices, "scheduler: rr", "scheduler: fastest", 1))
	if err := s.Load(); err == nil {
		t.Fatal("Load of a bad file succeeded")
	}
	for _, e := range logs.TakeAll() {
		if strings.Contains(e.Message, "last good state") || !strings.Contains(e.Message, "nothing is applied") {
			t.Fatalf("a bad first version logged %q; there is no last good state yet", e.Message)
		}
	}

	writeFile(t, path, threeServices)
	mustLoad(t, s)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := s.Load(); err == nil {
		t.Fatal("Load of a removed file succeeded")
	}
	entries = logs.AtLevel(slog.LevelError)
	if len(entries) != 1 || !strings.Contains(entries[0].Message, "keeping the last good state") {
		t.Fatalf("a file removed after a good load logged %v; want the last good state kept", entries)
	}
}

// TestRunWaitsForAMissingFile: Run picks the file up when it appears.
func TestRunWaitsForAMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "services.yaml")
	sink := newRecordSink()
	s := New(path, sink, Options{PollInterval: 20 * time.Millisecond, disableNotify: true})
	if err := s.Load(); err == nil {
		t.Fatal("Load of a missing file succeeded")
	}
	runSource(t, s)
	writeFile(t, path, threeServices)
	waitFor(t, "the file to be applied once it appears", func() bool { return sink.hasEndpoint("a", "198.18.1.2:8080") })
}
