package file

import (
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lbkit/lbkit/internal/testenv"
)

func TestProblemsAreLoggedWithLineAndField(t *testing.T) {
	log, logs := testenv.CaptureLogs(slog.LevelInfo)
	path := filepath.Join(t.TempDir(), "services.yaml")
	writeFile(t, path, strings.Replace(threeServices, "scheduler: rr", "scheduler: fastest", 1))
	s := New(path, newRecordSink(), Options{Logger: log})
	if err := s.Load(); err == nil {
		t.Fatal("Load of a bad file succeeded")
	}
	entries := logs.AtLevel(slog.LevelError)
	if len(entries) != 1 {
		t.Fatalf("logged %d errors, want 1: %v", len(entries), entries)
	}
	fields := entries[0].Attrs
	if fields["file"] != path || fields["line"] != int64(8) || fields["field"] != "services[1].scheduler" ||
		!strings.Contains(fields["problem"].(string), `unknown scheduler "fastest"`) {
		t.Fatalf("logged %q with %v; want file, line 8, field and problem", entries[0].Message, fields)
	}
}
