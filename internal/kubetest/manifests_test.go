package kubetest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestKubeVersionMatchesScript checks that KubeVersion, where Start looks
// for the cached kube-apiserver, is the release hack/kube-up.sh builds.
func TestKubeVersionMatchesScript(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(RepoRoot(t), "hack", "kube-up.sh"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^KUBE_VERSION=\$\{LBKIT_KUBE_VERSION:-(v[0-9.]+)\}$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("hack/kube-up.sh has no KUBE_VERSION=${LBKIT_KUBE_VERSION:-vX.Y.Z} line")
	}
	if got := string(m[1]); got != KubeVersion {
		t.Errorf("hack/kube-up.sh builds %s, kubetest.KubeVersion is %s", got, KubeVersion)
	}
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestReadManifests(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"b.yaml": `# a comment-only document
---
apiVersion: v1
kind: ConfigMap
metadata: {name: one, namespace: ns1}
data: {k: v}
---
---
apiVersion: v1
kind: Service
metadata: {name: two}
spec:
  ports: [{port: 80}]
`,
		"a.yml":          "apiVersion: v1\nkind: Namespace\nmetadata: {name: ns1}\n",
		"notes.txt":      "apiVersion: v1\nkind: Secret\n",
		"sub/deep.yaml":  "apiVersion: v1\nkind: Secret\nmetadata: {name: deep}\n",
		"sub/other.json": "{}",
	})
	ms, err := ReadManifests(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range ms {
		got = append(got, strings.TrimPrefix(m.String(), dir+string(filepath.Separator)))
	}
	want := []string{"a.yml:1 (document 1) Namespace", "b.yaml:3 (document 2) ConfigMap", "b.yaml:9 (document 4) Service"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("manifests %q, want %q", got, want)
	}
	cm, ok := ms[1].Object.(*corev1.ConfigMap)
	if !ok || cm.Namespace != "ns1" || cm.Data["k"] != "v" {
		t.Errorf("ConfigMap decoded as %#v", ms[1].Object)
	}
	if svc, ok := ms[2].Object.(*corev1.Service); !ok || svc.Spec.Ports[0].Port != 80 {
		t.Errorf("Service decoded as %#v", ms[2].Object)
	}
	if k := ms[2].Object.GetObjectKind().GroupVersionKind(); k.Kind != "Service" || k.Version != "v1" {
		t.Errorf("Service object kind %v", k)
	}
}

func TestReadManifestsErrors(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []string // substrings of the error
	}{
		{"unknown field", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {clusterIPs: [], portz: []}\n",
			[]string{"bad.yaml:5 (document 2)", `unknown field "spec.portz"`}},
		{"duplicate field", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\ndata: {c: d}\n",
			[]string{"bad.yaml:1 (document 1)", `"data"`}},
		{"unknown kind", "apiVersion: lbkit.io/v1\nkind: Frontend\nmetadata: {name: x}\n",
			[]string{"bad.yaml:1 (document 1)", "Frontend"}},
		{"no kind", "metadata: {name: x}\n", []string{"bad.yaml:1 (document 1)", "kind"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"bad.yaml": tc.text})
			_, err := ReadManifests(dir)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	if _, err := ReadManifests(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("no error for a missing directory")
	}
}
