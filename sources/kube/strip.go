package kube

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// The informer transforms below drop what the source never reads before
// an object enters the informer's cache, which holds every Service and
// EndpointSlice of the cluster: managed fields, most annotations and
// labels, and status and spec fields the translation ignores.

func stripService(o any) (any, error) {
	svc, ok := o.(*corev1.Service)
	if !ok {
		return o, nil
	}
	svc.ManagedFields = nil
	svc.Annotations = keepAnnotations(svc.Annotations, func(k string) bool { return strings.HasPrefix(k, "lbkit.io/") })
	svc.Labels = nil // selected on by the API server already
	svc.Spec.Selector = nil
	svc.Status.Conditions = nil
	svc.OwnerReferences = nil
	svc.Finalizers = nil
	return svc, nil
}

func stripSlice(o any) (any, error) {
	sl, ok := o.(*discoveryv1.EndpointSlice)
	if !ok {
		return o, nil
	}
	sl.ManagedFields = nil
	sl.Annotations = keepAnnotations(sl.Annotations, func(k string) bool { return k == AnnotationTriggerTime })
	name := sl.Labels[LabelServiceName]
	sl.Labels = nil
	if name != "" {
		sl.Labels = map[string]string{LabelServiceName: name}
	}
	sl.OwnerReferences = nil
	for i := range sl.Endpoints {
		e := &sl.Endpoints[i]
		e.TargetRef = nil
		e.DeprecatedTopology = nil
		e.Hostname = nil
		if len(e.Addresses) > 1 {
			e.Addresses = e.Addresses[:1] // only the first is proxied
		}
	}
	return sl, nil
}

func stripNode(o any) (any, error) {
	n, ok := o.(*corev1.Node)
	if !ok {
		return o, nil
	}
	n.ManagedFields = nil
	n.Annotations = nil
	zone, hasZone := n.Labels[LabelZone]
	n.Labels = nil
	if hasZone {
		n.Labels = map[string]string{LabelZone: zone}
	}
	n.Status.Images = nil
	n.Status.Conditions = nil
	n.Status.VolumesAttached = nil
	n.Status.VolumesInUse = nil
	n.Status.Capacity, n.Status.Allocatable = nil, nil
	return n, nil
}

// keepAnnotations returns the annotations keep accepts, or nil.
func keepAnnotations(m map[string]string, keep func(string) bool) map[string]string {
	var out map[string]string
	for k, v := range m {
		if keep(k) {
			if out == nil {
				out = make(map[string]string, 1)
			}
			out[k] = v
		}
	}
	return out
}
