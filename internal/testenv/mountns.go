package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// mountNSEnv names, in the environment of a re-executed test binary, the
// test it runs inside a private mount namespace.
const mountNSEnv = "LBKIT_TESTENV_MOUNTNS"

// InPrivateMountNamespace runs the calling top-level test again, alone, in
// a copy of the test binary inside a private mount namespace (`unshare
// --mount --propagation private`), so that it can mount what it needs (a
// bpffs on /sys/fs/bpf, a tmpfs over it) without the host seeing it. In
// the parent it returns false after the copy has run, failing the test
// with the copy's output unless the copy passed; in the copy it returns
// true and the test goes on.
func InPrivateMountNamespace(t *testing.T) bool {
	t.Helper()
	if os.Getenv(mountNSEnv) == t.Name() {
		return true
	}
	RequireTool(t, "unshare", "util-linux")
	cmd := exec.Command("unshare", "--mount", "--propagation", "private",
		os.Args[0], "-test.run", "^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), mountNSEnv+"="+t.Name())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the test in a private mount namespace failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("the copy in a private mount namespace did not run the test:\n%s", out)
	}
	return false
}
