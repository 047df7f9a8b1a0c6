package netns

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lbkit/lbkit/internal/testenv"
)

// NamePrefix starts the name of every namespace this package creates.
const NamePrefix = "lbkt-"

// netnsDir is where `ip netns` keeps its named namespaces.
const netnsDir = "/var/run/netns"

// Available reports whether namespaces can be built here: the process runs
// as root, the ip command exists, and `ip netns add` and `ip netns del` work
// (checked by creating and deleting a probe namespace). When not, reason
// says why.
func Available() (ok bool, reason string) {
	if uid := os.Geteuid(); uid != 0 {
		return false, fmt.Sprintf("netns: creating network namespaces needs root (running as uid %d)", uid)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return false, fmt.Sprintf("netns: the ip command (iproute2) is not available: %v", err)
	}
	name, err := nsName("probe")
	if err != nil {
		return false, err.Error()
	}
	if err := runIP("netns", "add", name); err != nil {
		return false, fmt.Sprintf("netns: cannot create a network namespace: %v", err)
	}
	if err := runIP("netns", "del", name); err != nil {
		return false, fmt.Sprintf("netns: cannot delete the probe namespace %s: %v", name, err)
	}
	return true, ""
}

// Require skips the test, with the reason, when namespaces cannot be built
// here (see Available). As root, a missing ip command is a missing tool
// (testenv.RequireTool): a failure under LBKIT_REQUIRE_TOOLS=1.
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		testenv.RequireTool(t, "ip", "iproute2")
	}
	if ok, reason := Available(); !ok {
		t.Skip(reason)
	}
}

// Leftovers lists the named namespaces whose name starts with NamePrefix,
// sorted. After every topology has been cleaned up it holds none of theirs.
func Leftovers() ([]string, error) {
	entries, err := os.ReadDir(netnsDir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("netns: list %s: %w", netnsDir, err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), NamePrefix) {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

// nsName returns NamePrefix + a fresh random id + "-" + role.
func nsName(role string) (string, error) {
	id, err := randomID()
	if err != nil {
		return "", err
	}
	return NamePrefix + id + "-" + role, nil
}

// randomID returns 8 random hex digits.
func randomID() (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("netns: random namespace id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// nsPath is the bind-mount path of the named namespace.
func nsPath(name string) string { return filepath.Join(netnsDir, name) }
