// Package kube is lbkit's Kubernetes source: it watches Services,
// EndpointSlices and this node's Node through client-go informers, set up
// as kube-proxy sets them up, and keeps an lb.Engine (or any Sink) in step
// with them, with kube-proxy's semantics.
//
// Each port of a Service becomes one lb.Service keyed
// "namespace/name/port-name" with its ClusterIP, NodePort, externalIP and
// LoadBalancer ingress frontends per IP family; the EndpointSlices of the
// Service are merged and de-duplicated per port into its lb.Endpoints,
// with their conditions, node, zone and topology hints.
//
// What kube-proxy cannot do is opt-in through annotations on the Service
// (see Annotation*): a per-service scheduler and the Maglev options. A
// service the datapath cannot express gets an Event, and the others keep
// syncing.
package kube
