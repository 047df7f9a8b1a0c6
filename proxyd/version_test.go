package main

import (
	"strings"
	"testing"
)

// TestVersionFlag: --version and -version print what the version
// subcommand prints, and exit 0 without starting the daemon.
func TestVersionFlag(t *testing.T) {
	_, want, _ := runCLI(t, "version")
	for _, arg := range []string{"--version", "-version"} {
		code, out, stderr := runCLI(t, arg)
		if code != 0 || out != want || !strings.HasPrefix(out, "proxyd ") || stderr != "" {
			t.Fatalf("%s: exit %d, stdout %q, stderr %q; want exit 0 and %q", arg, code, out, stderr, want)
		}
	}
}
