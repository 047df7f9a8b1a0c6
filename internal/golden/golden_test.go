package golden

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckWritesThenMatches(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "x.golden")
	Check(t, path, "a\nb\n", true)
	Check(t, path, "a\nb\n", false)
	if d := Diff("a\nb\n", "a\nc\n"); !strings.Contains(d, "line 2") || !strings.Contains(d, "want b") || !strings.Contains(d, "got  c") {
		t.Fatalf("Diff = %q", d)
	}
	if d := Diff("same", "same"); d != "" {
		t.Fatalf("Diff of equal texts = %q", d)
	}
}
