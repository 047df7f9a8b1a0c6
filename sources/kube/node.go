package kube

import (
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"
)

// TaintToBeDeleted is the taint the cluster autoscaler puts on a node it
// is about to remove; kube-proxy then fails its /healthz so load
// balancers drain the node.
const TaintToBeDeleted = "ToBeDeletedByClusterAutoscaler"

// NodeState is what the source reads of this node's Node.
type NodeState struct {
	// Exists is false once the Node was deleted.
	Exists bool
	// Zone is its topology.kubernetes.io/zone label.
	Zone string
	// Eligible is false while the node is being deleted (a
	// deletionTimestamp) or drained by the cluster autoscaler (its taint);
	// Reason then says which.
	Eligible bool
	Reason   string
	// Addresses are its InternalIP addresses, then its ExternalIP ones:
	// its primary IPs come first, one per family.
	Addresses []netip.Addr
}

// Primary returns the node's first address of each family.
func (n NodeState) Primary() []netip.Addr {
	var out []netip.Addr
	var has4, has6 bool
	for _, a := range n.Addresses {
		if a.Is4() && !has4 || a.Is6() && !has6 {
			out = append(out, a)
			has4 = has4 || a.Is4()
			has6 = has6 || a.Is6()
		}
	}
	return out
}

// NodeStateOf reads a Node.
func NodeStateOf(n *corev1.Node) NodeState {
	st := NodeState{Exists: true, Zone: n.Labels[LabelZone], Eligible: true}
	switch {
	case n.DeletionTimestamp != nil:
		st.Eligible, st.Reason = false, "the node is being deleted"
	case slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool { return t.Key == TaintToBeDeleted }):
		st.Eligible, st.Reason = false, "the node has the "+TaintToBeDeleted+" taint"
	}
	for _, typ := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP} {
		for _, a := range n.Status.Addresses {
			if a.Type != typ {
				continue
			}
			if ip, err := netip.ParseAddr(a.Address); err == nil && !slices.Contains(st.Addresses, ip.Unmap()) {
				st.Addresses = append(st.Addresses, ip.Unmap())
			}
		}
	}
	return st
}

// nodeChanged passes this node's new state on: the zone to a sink that
// selects by it, everything to Options.Node.
func (s *Source) nodeChanged(o any, deleted bool) {
	if d, isTomb := o.(cache.DeletedFinalStateUnknown); isTomb {
		o, deleted = d.Obj, true
	}
	n, ok := o.(*corev1.Node)
	if !ok || n.Name != s.opts.NodeName {
		return // the API server selects this node; never act on another
	}
	var st NodeState
	if !deleted {
		st = NodeStateOf(n)
	}
	if zs, ok := s.sink.(zoneSink); ok && st.Exists {
		zs.SetNodeZone(st.Zone)
	}
	if s.opts.Node != nil {
		s.opts.Node(st)
	}
}
