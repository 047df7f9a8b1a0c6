package testenv

import (
	"errors"
	"log/slog"
	"testing"
)

func TestCaptureLogs(t *testing.T) {
	log, logs := CaptureLogs(slog.LevelInfo)
	err := errors.New("boom")
	log = log.With("file", "f.yaml").WithGroup("g")
	log.Debug("left out")
	log.Error("failed", "line", 8, "error", err, slog.Group("sub", "k", "v"))
	got := logs.All()
	if len(got) != 1 {
		t.Fatalf("recorded %d entries, want 1 (debug is below info): %v", len(got), got)
	}
	e := got[0]
	if e.Level != slog.LevelError || e.Message != "failed" || e.Attrs["file"] != "f.yaml" ||
		e.Attrs["g.line"] != int64(8) || e.Attrs["g.error"] != err || e.Attrs["g.sub.k"] != "v" {
		t.Fatalf("recorded %+v", e)
	}
	if n := len(logs.AtLevel(slog.LevelError)); n != 1 {
		t.Fatalf("AtLevel(error) = %d entries, want 1", n)
	}
	if n := len(logs.WithMessage("failed")); n != 1 {
		t.Fatalf("WithMessage = %d entries, want 1", n)
	}
	if n := len(logs.TakeAll()); n != 1 || len(logs.All()) != 0 {
		t.Fatalf("TakeAll returned %d entries and left %d, want 1 and 0", n, len(logs.All()))
	}
}
