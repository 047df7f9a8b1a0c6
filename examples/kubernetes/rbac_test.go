package kubernetes_test

import (
	"slices"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
)

// TestRBAC checks that the ClusterRole grants exactly what proxyd uses and
// that the binding gives it to the DaemonSet's service account.
func TestRBAC(t *testing.T) {
	b := readBase(t)
	var got []string
	for _, r := range b.role.Rules {
		if len(r.ResourceNames) != 0 || len(r.NonResourceURLs) != 0 {
			t.Errorf("rule %+v: want no resourceNames or nonResourceURLs", r)
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					got = append(got, g+"/"+res+":"+v)
				}
			}
		}
	}
	slices.Sort(got)
	want := []string{
		"/events:create", "/events:patch", "/events:update",
		"/nodes:get", "/nodes:list", "/nodes:watch",
		"/services:list", "/services:watch",
		"discovery.k8s.io/endpointslices:list", "discovery.k8s.io/endpointslices:watch",
		"events.k8s.io/events:create", "events.k8s.io/events:patch", "events.k8s.io/events:update",
	}
	if !slices.Equal(got, want) {
		t.Errorf("ClusterRole %s grants\n  %q\nwant\n  %q", b.role.Name, got, want)
	}
	ref := b.binding.RoleRef
	if ref.APIGroup != rbacv1.GroupName || ref.Kind != "ClusterRole" || ref.Name != b.role.Name {
		t.Errorf("the binding refers to %+v, want ClusterRole %s", ref, b.role.Name)
	}
	wantSubject := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: b.sa.Name, Namespace: b.sa.Namespace}
	if !slices.Equal(b.binding.Subjects, []rbacv1.Subject{wantSubject}) {
		t.Errorf("the binding's subjects are %+v, want only %+v", b.binding.Subjects, wantSubject)
	}
}
