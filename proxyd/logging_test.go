package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"go.uber.org/zap"
)

// TestSlogOfKeepsTheDaemonsFormat: what a library package logs through
// slogOf comes out as the daemon's own entries do: the zap logger's name
// ("engine"), its fields and the record's, an error under "error", and no
// stack trace.
func TestSlogOfKeepsTheDaemonsFormat(t *testing.T) {
	var buf bytes.Buffer
	log, err := newLogger("json", 0, &buf)
	if err != nil {
		t.Fatal(err)
	}
	slogOf(log.Named("engine").With(zap.String("mode", "nftables"))).
		Error("sync failed", "services", 3, "error", errors.New("boom"))
	slogOf(log.Named("engine")).Debug("left out at verbosity 0")
	var e map[string]any
	if err := json.Unmarshal(buf.Bytes(), &e); err != nil {
		t.Fatalf("want one JSON entry, got %q: %v", buf.String(), err)
	}
	want := map[string]any{"level": "error", "logger": "engine", "msg": "sync failed", "mode": "nftables", "services": 3.0, "error": "boom"}
	for k, v := range want {
		if e[k] != v {
			t.Errorf("entry %s = %v, want %v (entry %s)", k, e[k], v, buf.String())
		}
	}
	if _, ok := e["stacktrace"]; ok {
		t.Errorf("entry has a stack trace; the daemon's entries never do: %s", buf.String())
	}
}
