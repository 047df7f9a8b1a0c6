package kubetest_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/lbkit/lbkit/internal/kubetest"
)

// waitLimit bounds the wait for a watch event; the event is expected at
// once, the limit only keeps a broken watch from hanging the test.
const waitLimit = time.Minute

// TestExampleRBAC applies examples/kubernetes to a real API server and
// checks, with real calls as proxyd's service account, that lbkit:proxyd
// allows what proxyd does and forbids the rest.
func TestExampleRBAC(t *testing.T) {
	c := kubetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	examples := filepath.Join(kubetest.RepoRoot(t), "examples", "kubernetes")

	// The per-mode DaemonSets share the base's name: validate them (dry
	// run) before the base exists.
	if objs := c.Validate(t, filepath.Join(examples, "modes")); len(objs) != 4 {
		t.Errorf("modes/ has %d objects, want the 4 DaemonSet variants", len(objs))
	}
	kinds := map[string]int{}
	for _, o := range c.Apply(t, examples) {
		kinds[o.GetObjectKind().GroupVersionKind().Kind]++
		if ds, ok := o.(*appsv1.DaemonSet); ok && ds.Spec.Template.Spec.ServiceAccountName != "lbkit-proxyd" {
			t.Errorf("stored DaemonSet runs as %q", ds.Spec.Template.Spec.ServiceAccountName)
		}
	}
	for _, k := range []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet"} {
		if kinds[k] != 1 {
			t.Errorf("applied %d %s, want 1 (all: %v)", kinds[k], k, kinds)
		}
	}

	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}}
	if _, err := c.Admin.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sa := clientFor(t, c.ServiceAccountKubeconfig(t, "kube-system", "lbkit-proxyd"))

	t.Run("allowed", func(t *testing.T) {
		checkServices(ctx, t, c.Admin, sa)
		checkEndpointSlices(ctx, t, c.Admin, sa)
		checkNodes(ctx, t, sa, node.Name)
		checkEvents(ctx, t, sa, node.Name)
	})
	t.Run("forbidden", func(t *testing.T) {
		checkForbidden(ctx, t, c.Admin, sa, node.Name)
	})
}

func clientFor(t *testing.T, kubeconfig string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// checkServices lists and watches Services in every namespace, and sees
// one the admin creates.
func checkServices(ctx context.Context, t *testing.T, admin, sa kubernetes.Interface) {
	list, err := sa.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list services cluster-wide: %v", err)
	}
	w, err := sa.CoreV1().Services("").Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatalf("watch services cluster-wide: %v", err)
	}
	defer w.Stop()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
	}
	if _, err := admin.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, w, watch.Added, "default", "web")
}

// checkEndpointSlices lists and watches EndpointSlices in every namespace,
// and sees one the admin creates.
func checkEndpointSlices(ctx context.Context, t *testing.T, admin, sa kubernetes.Interface) {
	list, err := sa.DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list endpointslices cluster-wide: %v", err)
	}
	w, err := sa.DiscoveryV1().EndpointSlices("").Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatalf("watch endpointslices cluster-wide: %v", err)
	}
	defer w.Stop()
	nodeName, port, proto := "node-1", int32(8080), corev1.ProtocolTCP
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-1", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"198.18.0.20"}, NodeName: &nodeName}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: &port, Protocol: &proto}},
	}
	if _, err := admin.DiscoveryV1().EndpointSlices("default").Create(ctx, es, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, w, watch.Added, "default", "web-1")
}

// checkNodes gets, lists and watches the node proxyd runs on.
func checkNodes(ctx context.Context, t *testing.T, sa kubernetes.Interface, name string) {
	if _, err := sa.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{}); err != nil {
		t.Errorf("get node %s: %v", name, err)
	}
	sel := metav1.ListOptions{FieldSelector: "metadata.name=" + name}
	list, err := sa.CoreV1().Nodes().List(ctx, sel)
	if err != nil {
		t.Fatalf("list node %s: %v", name, err)
	}
	if len(list.Items) != 1 {
		t.Errorf("listing node %s found %d", name, len(list.Items))
	}
	sel.ResourceVersion = list.ResourceVersion
	w, err := sa.CoreV1().Nodes().Watch(ctx, sel)
	if err != nil {
		t.Fatalf("watch node %s: %v", name, err)
	}
	w.Stop()
}

// checkEvents records events about the node through both events APIs,
// and patches and updates the core one.
func checkEvents(ctx context.Context, t *testing.T, sa kubernetes.Interface, node string) {
	ref := corev1.ObjectReference{APIVersion: "v1", Kind: "Node", Name: node, UID: types.UID(node)}
	ev := &eventsv1.Event{
		ObjectMeta:          metav1.ObjectMeta{GenerateName: "lbkit-e2e-", Namespace: "default"},
		EventTime:           metav1.NowMicro(),
		ReportingController: "lbkit.io/proxyd",
		ReportingInstance:   "lbkit-proxyd-" + node,
		Action:              "Sync",
		Reason:              "Unsupported",
		Type:                corev1.EventTypeWarning,
		Regarding:           ref,
		Note:                "events.k8s.io/v1 event from the lbkit-proxyd service account",
	}
	if _, err := sa.EventsV1().Events("default").Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		t.Errorf("create events.k8s.io/v1 event: %v", err)
	}
	now := metav1.Now()
	ce := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{GenerateName: "lbkit-e2e-", Namespace: "default"},
		InvolvedObject: ref,
		Reason:         "Unsupported",
		Message:        "core/v1 event from the lbkit-proxyd service account",
		Type:           corev1.EventTypeWarning,
		Source:         corev1.EventSource{Component: "lbkit-proxyd", Host: node},
		FirstTimestamp: now,
		LastTimestamp:  now,
		Count:          1,
	}
	got, err := sa.CoreV1().Events("default").Create(ctx, ce, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create core/v1 event: %v", err)
	}
	got, err = sa.CoreV1().Events("default").Patch(ctx, got.Name, types.MergePatchType, []byte(`{"count":2}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatalf("patch core/v1 event: %v", err)
	}
	got.Count = 3
	if _, err := sa.CoreV1().Events("default").Update(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Errorf("update core/v1 event: %v", err)
	}
}

// checkForbidden makes calls lbkit:proxyd must not allow, among them those
// kube-proxy's system:node-proxier allows and proxyd does not need.
func checkForbidden(ctx context.Context, t *testing.T, admin, sa kubernetes.Interface, node string) {
	n, err := admin.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Labels = map[string]string{"lbkit.io/e2e": "changed"}
	calls := []struct {
		what string
		call func() error
	}{
		{"list secrets", func() error { _, err := sa.CoreV1().Secrets("").List(ctx, metav1.ListOptions{}); return err }},
		{"list pods", func() error { _, err := sa.CoreV1().Pods("").List(ctx, metav1.ListOptions{}); return err }},
		{"get services", func() error {
			_, err := sa.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
			return err
		}},
		{"create services", func() error {
			svc := &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: "sa-made", Namespace: "default"},
				Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
			}
			_, err := sa.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{})
			return err
		}},
		{"update nodes", func() error { _, err := sa.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); return err }},
		{"delete endpointslices", func() error {
			return sa.DiscoveryV1().EndpointSlices("default").Delete(ctx, "web-1", metav1.DeleteOptions{})
		}},
		{"list endpoints (system:node-proxier may)", func() error {
			_, err := sa.CoreV1().Endpoints("").List(ctx, metav1.ListOptions{})
			return err
		}},
		{"list servicecidrs (system:node-proxier may)", func() error {
			_, err := sa.NetworkingV1().ServiceCIDRs().List(ctx, metav1.ListOptions{})
			return err
		}},
		{"get its own configmap", func() error {
			_, err := sa.CoreV1().ConfigMaps("kube-system").Get(ctx, "lbkit-proxyd", metav1.GetOptions{})
			return err
		}},
		{"list events", func() error { _, err := sa.CoreV1().Events("").List(ctx, metav1.ListOptions{}); return err }},
		{"bind roles", func() error {
			crb := &rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: "lbkit-e2e-escalate"},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
				Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "lbkit-proxyd", Namespace: "kube-system"}},
			}
			_, err := sa.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{})
			return err
		}},
	}
	for _, c := range calls {
		err := c.call()
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s as system:serviceaccount:kube-system:lbkit-proxyd: got %v, want Forbidden", c.what, err)
		}
	}
}

// waitFor reads w until an event of type typ for namespace/name.
func waitFor(t *testing.T, w watch.Interface, typ watch.EventType, namespace, name string) {
	t.Helper()
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch closed before %s %s/%s", typ, namespace, name)
			}
			if ev.Type == watch.Error {
				t.Fatalf("watch error: %v", apierrors.FromObject(ev.Object))
			}
			m, ok := ev.Object.(metav1.Object)
			if ok && ev.Type == typ && m.GetNamespace() == namespace && m.GetName() == name {
				return
			}
		case <-timer.C:
			t.Fatalf("no %s event for %s/%s within %v", typ, namespace, name, waitLimit)
		}
	}
}

func ptr[T any](v T) *T { return &v }
