package kubernetes_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbkit/lbkit/internal/kubetest"
)

// What the manifests agree on.
const (
	namespace  = "kube-system"
	name       = "lbkit-proxyd" // ServiceAccount, ConfigMap, DaemonSet
	roleName   = "lbkit:proxyd" // ClusterRole, ClusterRoleBinding
	image      = "localhost/lbkit/proxyd:latest"
	configPath = "/etc/lbkit/config.yaml"
)

// base holds the objects of the directory's own files.
type base struct {
	sa      *corev1.ServiceAccount
	role    *rbacv1.ClusterRole
	binding *rbacv1.ClusterRoleBinding
	cm      *corev1.ConfigMap
	ds      *appsv1.DaemonSet
}

// readBase decodes the manifests of this directory, each kind exactly once.
func readBase(t *testing.T) base {
	t.Helper()
	ms, err := kubetest.ReadManifests(".")
	if err != nil {
		t.Fatal(err)
	}
	var b base
	seen := map[string]string{}
	for _, m := range ms {
		if prev, dup := seen[m.GVK.Kind]; dup {
			t.Fatalf("%s: a second %s (the first is %s)", m, m.GVK.Kind, prev)
		}
		seen[m.GVK.Kind] = m.String()
		switch o := m.Object.(type) {
		case *corev1.ServiceAccount:
			b.sa = o
		case *rbacv1.ClusterRole:
			b.role = o
		case *rbacv1.ClusterRoleBinding:
			b.binding = o
		case *corev1.ConfigMap:
			b.cm = o
		case *appsv1.DaemonSet:
			b.ds = o
		default:
			t.Errorf("%s: unexpected kind", m)
		}
	}
	if b.sa == nil || b.role == nil || b.binding == nil || b.cm == nil || b.ds == nil {
		t.Fatalf("want a ServiceAccount, ClusterRole, ClusterRoleBinding, ConfigMap and DaemonSet; found %v", seen)
	}
	for what, meta := range map[string]metav1.ObjectMeta{
		"ServiceAccount": b.sa.ObjectMeta, "ConfigMap": b.cm.ObjectMeta, "DaemonSet": b.ds.ObjectMeta,
	} {
		if meta.Namespace != namespace || meta.Name != name {
			t.Errorf("%s is %s/%s, want %s/%s", what, meta.Namespace, meta.Name, namespace, name)
		}
	}
	if b.role.Name != roleName || b.binding.Name != roleName {
		t.Errorf("ClusterRole %q, ClusterRoleBinding %q, want both %q", b.role.Name, b.binding.Name, roleName)
	}
	return b
}

// readVariants decodes modes/: one DaemonSet per file daemonset-MODE.yaml.
func readVariants(t *testing.T) map[string]*appsv1.DaemonSet {
	t.Helper()
	ms, err := kubetest.ReadManifests("modes")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*appsv1.DaemonSet{}
	for _, m := range ms {
		ds, ok := m.Object.(*appsv1.DaemonSet)
		mode := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(m.File), "daemonset-"), ".yaml")
		if !ok || out[mode] != nil {
			t.Fatalf("%s: want one DaemonSet per file", m)
		}
		out[mode] = ds
	}
	return out
}

func TestManifestsDecode(t *testing.T) {
	readBase(t)
	var modes []string
	for mode := range readVariants(t) {
		modes = append(modes, mode)
	}
	slices.Sort(modes)
	if want := []string{"ebpf", "iptables", "nftables", "userspace"}; !slices.Equal(modes, want) {
		t.Errorf("modes/ has variants %v, want %v", modes, want)
	}
}
