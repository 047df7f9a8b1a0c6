// Package kubernetes holds the manifests that deploy proxyd as a
// kube-proxy replacement: a DaemonSet (ipvs mode, with per-mode variants
// in modes/), its ConfigMap, service account and RBAC. README.md says how
// to deploy them. The Go files only test the manifests: every document
// decodes with client-go's scheme, and the DaemonSets, the ConfigMap and
// the ClusterRole say what README.md says; internal/kubetest applies them
// to a real API server and checks the RBAC with real calls.
package kubernetes
