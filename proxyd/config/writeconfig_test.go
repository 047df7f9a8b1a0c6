package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWriteConfigNamesModeAndIgnoredFields is what --write-config-to
// writes: the effective mode, never `mode: ""`, and the fields of the
// operator's file that lbkit ignores (and leaves out), as comments.
func TestWriteConfigNamesModeAndIgnoredFields(t *testing.T) {
	_, c := mustResolve(t)
	if out := marshal(t, c); !strings.Contains(out, "\nmode: iptables\n") {
		t.Errorf("no file, no flags: want mode: iptables, got\n%s", out)
	}
	path := filepath.Join(t.TempDir(), "kube-proxy.yaml")
	body := "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\noomScoreAdj: -999\nconntrack:\n  udpTimeout: 30s\n"
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	_, c = mustResolve(t, "--config", path, "--services", "svc.yaml")
	out := marshal(t, c)
	for _, want := range []string{
		"# lbkit ignores these fields of " + path + "; they are left out below:\n",
		"#   " + path + `:3: field "oomScoreAdj" accepted but ignored by lbkit` + "\n",
		"#   " + path + `:5: field "conntrack.udpTimeout" accepted but ignored by lbkit` + "\n",
		"\nmode: iptables\n",
		"  services: svc.yaml\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("written config lacks %q:\n%s", want, out)
		}
	}
	back, warnings, err := Parse([]byte(out), "written.yaml")
	if err != nil {
		t.Fatalf("written config does not parse: %v", err)
	}
	if len(warnings) != 0 || back.Mode != ModeIPTables {
		t.Fatalf("written config reads back as mode %q, warnings %v, error %v", back.Mode, warnings, err)
	}
}
