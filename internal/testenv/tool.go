package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// RequireEnv is the environment variable that turns a missing tool from a
// skip into a failure when it is "1".
const RequireEnv = "LBKIT_REQUIRE_TOOLS"

// ToolsRequired reports whether RequireEnv is set to "1".
func ToolsRequired() bool { return os.Getenv(RequireEnv) == "1" }

// RequireTool returns the path of the program name (looked up in PATH). When
// it is not installed, the test is skipped with a message naming pkg, the
// Debian package that provides it ("nft not found: apt-get install nftables
// (or make deps)"), or fails with that message when ToolsRequired.
func RequireTool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		MissingTool(t, fmt.Sprintf("%s not found: apt-get install %s (or make deps)", name, pkg))
	}
	return p
}

// MissingTool ends the test because a program it needs is missing: a skip
// with reason, or a failure when ToolsRequired. For tests that find out
// about a missing program in their own way (a tool check of the code under
// test); reason should name the Debian package.
func MissingTool(t testing.TB, reason string) {
	t.Helper()
	if ToolsRequired() {
		t.Fatalf("%s [%s=1: a missing tool is an error]", reason, RequireEnv)
	}
	t.Skip(reason)
}
