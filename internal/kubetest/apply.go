package kubetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/restmapper"
)

// applyTimeout bounds one Apply or Validate.
const applyTimeout = 2 * time.Minute

// Apply creates every object of every YAML file in dir (see ReadManifests)
// through the API server, with strict server-side field validation, so
// that the server's validation and admission run on each. Namespaces in
// the files are created first; a namespace an object names and no file
// creates is created as needed. It returns the objects as the server
// stored them (defaults filled in), typed, in the order created. Any
// failure fails the test, naming the file and document.
func (c *Cluster) Apply(t testing.TB, dir string) []runtime.Object {
	t.Helper()
	return c.createAll(t, dir, false)
}

// Validate sends every object of every YAML file in dir to the API server
// as a dry-run create: the server validates and admits each, and stores
// nothing (namespaces they need are created for real). Objects that exist
// already fail (AlreadyExists), so validate variants of an object before
// applying one of them. It returns the objects as the server would have
// stored them.
func (c *Cluster) Validate(t testing.TB, dir string) []runtime.Object {
	t.Helper()
	return c.createAll(t, dir, true)
}

func (c *Cluster) createAll(t testing.TB, dir string, dryRun bool) []runtime.Object {
	t.Helper()
	ms, err := ReadManifests(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 {
		t.Fatalf("no manifests (*.yaml, *.yml) in %s", dir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), applyTimeout)
	defer cancel()
	a, err := c.newApplier(dryRun)
	if err != nil {
		t.Fatal(err)
	}
	// Namespaces first, then the rest in file order.
	ordered := make([]Manifest, 0, len(ms))
	for _, m := range ms {
		if m.GVK.Group == "" && m.GVK.Kind == "Namespace" {
			ordered = append(ordered, m)
		}
	}
	for _, m := range ms {
		if !(m.GVK.Group == "" && m.GVK.Kind == "Namespace") {
			ordered = append(ordered, m)
		}
	}
	var out []runtime.Object
	for _, m := range ordered {
		obj, err := a.create(ctx, m)
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		out = append(out, obj)
	}
	return out
}

// applier creates manifests through the dynamic client.
type applier struct {
	c          *Cluster
	dyn        dynamic.Interface
	mapper     meta.RESTMapper
	dryRun     bool
	namespaces map[string]bool // known to exist
}

func (c *Cluster) newApplier(dryRun bool) (*applier, error) {
	dyn, err := dynamic.NewForConfig(c.AdminConfig)
	if err != nil {
		return nil, fmt.Errorf("kubetest: dynamic client: %w", err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(c.AdminConfig)
	if err != nil {
		return nil, fmt.Errorf("kubetest: discovery client: %w", err)
	}
	groups, err := restmapper.GetAPIGroupResources(dc)
	if err != nil {
		return nil, fmt.Errorf("kubetest: API discovery: %w", err)
	}
	return &applier{c: c, dyn: dyn, mapper: restmapper.NewDiscoveryRESTMapper(groups), dryRun: dryRun, namespaces: map[string]bool{}}, nil
}

// create creates one object and returns it, typed, as the server answered.
func (a *applier) create(ctx context.Context, m Manifest) (runtime.Object, error) {
	mapping, err := a.mapper.RESTMapping(m.GVK.GroupKind(), m.GVK.Version)
	if err != nil {
		return nil, fmt.Errorf("the API server does not serve %s: %w", m.GVK, err)
	}
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(m.Object)
	if err != nil {
		return nil, fmt.Errorf("to unstructured: %w", err)
	}
	u := &unstructured.Unstructured{Object: content}
	u.SetGroupVersionKind(m.GVK)
	var ri dynamic.ResourceInterface = a.dyn.Resource(mapping.Resource)
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		ns := u.GetNamespace()
		if ns == "" {
			ns = metav1.NamespaceDefault
			u.SetNamespace(ns)
		}
		if err := a.ensureNamespace(ctx, ns); err != nil {
			return nil, err
		}
		ri = a.dyn.Resource(mapping.Resource).Namespace(ns)
	}
	opts := metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict, FieldManager: "lbkit-kubetest"}
	if a.dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	got, err := ri.Create(ctx, u, opts)
	if err != nil {
		return nil, fmt.Errorf("create %s %s: %w", mapping.Resource.Resource, name(u), err)
	}
	if m.GVK.Group == "" && m.GVK.Kind == "Namespace" && !a.dryRun {
		a.namespaces[u.GetName()] = true
	}
	typed, err := scheme.Scheme.New(m.GVK)
	if err != nil {
		return nil, fmt.Errorf("new %s: %w", m.GVK, err)
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(got.Object, typed); err != nil {
		return nil, fmt.Errorf("decode the created %s: %w", m.GVK, err)
	}
	typed.GetObjectKind().SetGroupVersionKind(m.GVK)
	return typed, nil
}

// ensureNamespace creates namespace ns unless it exists.
func (a *applier) ensureNamespace(ctx context.Context, ns string) error {
	if a.namespaces[ns] {
		return nil
	}
	_, err := a.c.Admin.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = a.c.Admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("namespace %s: %w", ns, err)
	}
	a.namespaces[ns] = true
	return nil
}

// name is namespace/name, or name for cluster-scoped objects.
func name(u *unstructured.Unstructured) string {
	if ns := u.GetNamespace(); ns != "" {
		return ns + "/" + u.GetName()
	}
	return u.GetName()
}
