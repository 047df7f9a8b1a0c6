package config

import (
	"bytes"
	"flag"
	"strings"
	"testing"
)

// TestHelpPrintsEachDefaultOnce: the flag package appends "(default X)" to
// a flag's usage by itself, so a usage text must not say it again.
func TestHelpPrintsEachDefaultOnce(t *testing.T) {
	fs := flag.NewFlagSet("proxyd", flag.ContinueOnError)
	NewFlags(fs)
	var out bytes.Buffer
	fs.SetOutput(&out)
	fs.PrintDefaults()
	// PrintDefaults writes "  -name type" then the usage indented by a tab.
	var name string
	defaults := map[string]int{}
	for line := range strings.SplitSeq(out.String(), "\n") {
		if strings.HasPrefix(line, "  -") {
			name = strings.Fields(line)[0]
		}
		defaults[name] += strings.Count(line, "(default")
	}
	if len(defaults) < 30 {
		t.Fatalf("parsed only %d flags from the help:\n%s", len(defaults), out.String())
	}
	for name, n := range defaults {
		if n > 1 {
			t.Errorf("%s names its default %d times in --help", name, n)
		}
	}
}
