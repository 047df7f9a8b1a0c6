// Package kubetest gives Go tests a real Kubernetes API server: etcd and
// kube-apiserver on 127.0.0.1, started by hack/kube-up.sh in a temporary
// directory and stopped when the test ends, with an admin client, a way to
// create the objects of YAML manifests through the server (so that its
// validation and admission run), and kubeconfigs for service accounts
// (tokens from the TokenRequest API), to test what their RBAC allows.
//
// There is no kubelet, controller manager or scheduler: objects are
// stored, validated and authorized, and nothing reconciles them (a
// DaemonSet gets no pods).
//
// kube-apiserver is built from source once (about 20 minutes on 2 cores)
// and cached by hack/kube-up.sh. Start skips the test while it is not
// built, unless LBKIT_E2E=1, when it builds it first; `make e2e` builds it
// before running the tests, so that no test spends its timeout on the
// build. etcd is Debian's etcd-server; a missing etcd, openssl or curl
// skips the test naming its package (or fails it with LBKIT_REQUIRE_TOOLS=1).
//
// A test that is killed (go test's -timeout panics) runs no cleanup: the
// log names the cluster's directory, and `hack/kube-up.sh down DIR` stops
// what is left.
package kubetest
