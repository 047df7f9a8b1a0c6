package file

import (
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestProblemsAreLoggedWithLineAndField(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	path := filepath.Join(t.TempDir(), "services.yaml")
	writeFile(t, path, strings.Replace(threeServices, "scheduler: rr", "scheduler: fastest", 1))
	s := New(path, newRecordSink(), Options{Logger: zap.New(core)})
	if err := s.Load(); err == nil {
		t.Fatal("Load of a bad file succeeded")
	}
	entries := logs.FilterLevelExact(zapcore.ErrorLevel).All()
	if len(entries) != 1 {
		t.Fatalf("logged %d errors, want 1: %v", len(entries), entries)
	}
	fields := entries[0].ContextMap()
	if fields["file"] != path || fields["line"] != int64(8) || fields["field"] != "services[1].scheduler" ||
		!strings.Contains(fields["problem"].(string), `unknown scheduler "fastest"`) {
		t.Fatalf("logged %q with %v; want file, line 8, field and problem", entries[0].Message, fields)
	}
}
