package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lbkit/lbkit/internal/netns"
	"github.com/lbkit/lbkit/proxyd/config"
)

// runCLI runs proxyd's command line in-process.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(out, "proxyd ") {
		t.Fatalf("version: exit %d, %q", code, out)
	}
}

func TestUnknownModeAndMissingIPVSExitNonZeroClearly(t *testing.T) {
	code, _, stderr := runCLI(t, "--mode=bogus")
	if code == 0 || !strings.Contains(stderr, "bogus") {
		t.Fatalf("--mode=bogus: exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat("/proc/net/ip_vs"); err == nil {
		t.Skip("this kernel has IPVS; the missing-IPVS error cannot be shown")
	}
	code, _, stderr = runCLI(t, "--mode=ipvs", "--services=x.yaml", "--metrics-bind-address=", "--healthz-bind-address=")
	if code == 0 || !strings.Contains(stderr, "no IPVS") {
		t.Fatalf("--mode=ipvs without IPVS: exit %d, stderr %q", code, stderr)
	}
}

func TestBadConfigFileNamesFieldAndLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kube-proxy.yaml")
	body := "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: userspace\niptables:\n  masqueradeBits: 3\n"
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, "--config", path)
	if code == 0 || !strings.Contains(stderr, "kube-proxy.yaml:5") || !strings.Contains(stderr, "masqueradeBits") {
		t.Fatalf("exit %d, stderr %q; want the file, line 5 and the field", code, stderr)
	}
}

// Without --services proxyd is a Kubernetes proxy: outside a pod and
// without a kubeconfig it says what to give; a kubeconfig that is not
// there is named.
func TestNoSourceIsAnError(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	code, _, stderr := runCLI(t, "--mode=userspace", "--metrics-bind-address=", "--healthz-bind-address=")
	if code == 0 || !strings.Contains(stderr, "--services") || !strings.Contains(stderr, "--kubeconfig") || !strings.Contains(stderr, "not running in a Kubernetes pod") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = runCLI(t, "--mode=userspace", "--kubeconfig=/nonexistent", "--metrics-bind-address=", "--healthz-bind-address=")
	if code == 0 || !strings.Contains(stderr, "kubeconfig /nonexistent") {
		t.Fatalf("--kubeconfig: exit %d, stderr %q", code, stderr)
	}
}

func TestWriteConfigToRoundTrips(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.yaml")
	code, _, stderr := runCLI(t, "--mode=userspace", "--services=svc.yaml", "--write-config-to", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := config.Parse(data, path)
	if err != nil {
		t.Fatalf("written config does not parse: %v\n%s", err, data)
	}
	if cfg.Mode != "userspace" || cfg.Lbkit.Services != "svc.yaml" || cfg.MetricsBindAddress != "127.0.0.1:10249" {
		t.Fatalf("written config lost flags or defaults: %+v", cfg)
	}
}

// TestCleanupIsIdempotent runs --cleanup for every mode twice, as root inside
// a namespace of its own (never the machine's root namespace).
func TestCleanupIsIdempotent(t *testing.T) {
	if ok, _ := netns.Available(); ok {
		topo := netns.New(t, netns.Options{Backends: 0, TCPPorts: []uint16{}, UDPPorts: []uint16{}})
		for range 2 {
			if code, _, stderr := runCLI(t, "--cleanup", "--netns", topo.Node.Path); code != 0 {
				t.Fatalf("--cleanup: exit %d: %s", code, stderr)
			}
		}
	}
	if code, _, stderr := runCLI(t, "--cleanup", "--mode=userspace"); code != 0 || !strings.Contains(stderr, "nothing to remove") {
		t.Fatalf("--cleanup --mode=userspace: exit %d: %s", code, stderr)
	}
}

func TestExplainUsageErrors(t *testing.T) {
	if code, _, _ := runCLI(t, "explain"); code != 2 {
		t.Fatalf("explain without a frontend: exit %d, want 2", code)
	}
	if code, _, stderr := runCLI(t, "explain", "198.18.100.1"); code != 2 || !strings.Contains(stderr, "198.18.100.1") {
		t.Fatalf("explain with a bad frontend: exit %d, %q", code, stderr)
	}
	code, _, stderr := runCLI(t, "explain", "198.18.100.1:80", "--server", "127.0.0.1:1")
	if code != 1 || !strings.Contains(stderr, "is proxyd running") {
		t.Fatalf("explain with no daemon: exit %d, %q", code, stderr)
	}
}

func TestExplainServerFromConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	body := "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmetricsBindAddress: 0.0.0.0:19249\n"
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := explainServer("", path)
	if err != nil || got != "127.0.0.1:19249" {
		t.Fatalf("explainServer = %q, %v; want the config's port on loopback", got, err)
	}
	if got, _ := explainServer("", ""); got != "127.0.0.1:10249" {
		t.Fatalf("default explain server %q", got)
	}
}
