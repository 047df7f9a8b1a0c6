package kubetest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/lbkit/lbkit/internal/testenv"
)

// KubeVersion is the Kubernetes release hack/kube-up.sh builds when
// LBKIT_KUBE_VERSION is not set; a test checks that the two agree.
const KubeVersion = "v1.37.2"

// E2EEnv is the environment variable that, set to "1", lets Start build
// kube-apiserver when it is not cached instead of skipping the test.
const E2EEnv = "LBKIT_E2E"

// buildBudget is the least time a test must have left for Start to build
// kube-apiserver itself.
const buildBudget = 40 * time.Minute

// kubeVersion is the release the script uses.
func kubeVersion() string {
	if v := os.Getenv("LBKIT_KUBE_VERSION"); v != "" {
		return v
	}
	return KubeVersion
}

// BinDir is the directory where hack/kube-up.sh caches kube-apiserver:
// ${XDG_CACHE_HOME:-$HOME/.cache}/lbkit/kube/VERSION/bin, as the script
// computes it.
func BinDir() (string, error) {
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("kubetest: no cache directory: %w", err)
		}
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "lbkit", "kube", kubeVersion(), "bin"), nil
}

// apiserverBuilt reports whether the cached kube-apiserver exists.
func apiserverBuilt() (bool, error) {
	dir, err := BinDir()
	if err != nil {
		return false, err
	}
	fi, err := os.Stat(filepath.Join(dir, "kube-apiserver"))
	if err != nil {
		return false, nil
	}
	return fi.Mode().IsRegular() && fi.Mode()&0o111 != 0, nil
}

// requireAPIServer skips the test when kube-apiserver is not built and
// LBKIT_E2E is not 1; with LBKIT_E2E=1 it builds it, provided the test has
// the time for it.
func requireAPIServer(t testing.TB, script string) {
	t.Helper()
	built, err := apiserverBuilt()
	if err != nil {
		t.Fatal(err)
	}
	if built {
		return
	}
	if os.Getenv(E2EEnv) != "1" {
		t.Skip("kube-apiserver is not built: run make e2e (builds it once, ~20 min)")
	}
	requireTools(t)
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if end, ok := d.Deadline(); ok && time.Until(end) < buildBudget {
			t.Fatalf("kube-apiserver is not built and building it takes about 20 minutes, more than this test has left (%v): "+
				"run `hack/kube-up.sh build` (make e2e does) first, or give go test -timeout 60m",
				time.Until(end).Round(time.Second))
		}
	}
	t.Logf("building kube-apiserver %s with %s build (once, about 20 minutes)", kubeVersion(), script)
	ctx, cancel := context.WithTimeout(context.Background(), buildBudget)
	defer cancel()
	cmd := exec.CommandContext(ctx, script, "build")
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s build: %v\n%s", script, err, tail(out, 40))
	}
	if built, _ := apiserverBuilt(); !built {
		dir, _ := BinDir()
		t.Fatalf("%s build succeeded but %s/kube-apiserver is not there (LBKIT_KUBE_VERSION or XDG_CACHE_HOME differ?)\n%s",
			script, dir, tail(out, 20))
	}
}

// requireTools checks the programs hack/kube-up.sh runs besides
// kube-apiserver.
func requireTools(t testing.TB) {
	t.Helper()
	testenv.RequireTool(t, "etcd", "etcd-server")
	testenv.RequireTool(t, "openssl", "openssl")
	testenv.RequireTool(t, "curl", "curl")
	testenv.RequireTool(t, "flock", "util-linux")
}
