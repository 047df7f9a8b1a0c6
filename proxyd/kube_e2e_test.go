package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/lbkit/lbkit/internal/kubetest"
	"github.com/lbkit/lbkit/internal/netns"
	"github.com/lbkit/lbkit/internal/testenv"
	"github.com/lbkit/lbkit/sources/kube"
)

// kubeNode is the name proxyd runs as in the Kubernetes end-to-end test.
const kubeNode = "node-a"

// TestKubernetesEndToEnd runs the real proxyd against a real kube-apiserver
// (hack/kube-up.sh) with the ServiceAccount and ClusterRole of
// examples/kubernetes, in each kernel mode this machine has and in
// userspace mode, programming a node namespace; Services and
// EndpointSlices are created through the API server and real traffic from
// a client namespace follows every change. IPVS needs the QEMU guest,
// which cannot reach this API server: its translation is the same code
// (sources/kube), tested without a kernel.
func TestKubernetesEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a kube-apiserver and the proxyd binary")
	}
	netns.Require(t)
	cluster := kubetest.Start(t)
	root := kubetest.RepoRoot(t)
	// Every manifest through the real API server (server-side
	// validation), then proxyd authenticates as their ServiceAccount: the
	// ClusterRole must be enough.
	cluster.Apply(t, filepath.Join(root, "examples", "kubernetes"))
	kubeconfig := cluster.ServiceAccountKubeconfig(t, "kube-system", "lbkit-proxyd")
	bin := buildProxyd(t)
	modes := []struct{ name, mode, flavour string }{
		{"iptables-legacy", "iptables", "legacy"},
		{"iptables-nft", "iptables", "nft"},
		{"nftables", "nftables", ""},
		{"ebpf", "ebpf", ""},
		{"userspace", "userspace", ""},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			if m.flavour != "" {
				testenv.RequireTool(t, "iptables-"+m.flavour, "iptables")
			}
			kubeE2E(t, cluster.Admin, bin, kubeconfig, m.mode, m.flavour)
		})
	}
}

// kubeEnv is one mode's run: the namespaces, the API server and proxyd.
type kubeEnv struct {
	t        *testing.T
	c        kubernetes.Interface
	topo     *netns.Topology
	ns       string
	nodeIP   netip.Addr
	healthz  string
	proxyLog *safeBuffer
}

func kubeE2E(t *testing.T, c kubernetes.Interface, bin, kubeconfig, mode, flavour string) {
	topo := netns.New(t, netns.Options{Backends: 3})
	e := &kubeEnv{t: t, c: c, topo: topo, ns: "e2e-" + strings.ReplaceAll(t.Name()[strings.LastIndex(t.Name(), "/")+1:], "_", "-"), nodeIP: topo.Node.IPv4}
	ctx := context.Background()
	e.createNode(ctx)
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.CoreV1().Namespaces().Delete(context.Background(), e.ns, metav1.DeleteOptions{}) })
	if mode == "userspace" {
		// The userspace proxy binds every frontend: cluster IPs (the API
		// server's 198.19.0.0/16) and the external ones are local to
		// the node.
		for _, r := range []string{"198.19.0.0/16", "198.18.100.0/24"} {
			if out, err := topo.Node.Exec(ctx, "ip", "route", "add", "local", r, "dev", "lo"); err != nil {
				t.Fatalf("local route %s: %v: %s", r, err, out)
			}
		}
	}
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "config.yaml")
	cfg := "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nnodePortAddresses: [primary]\nlbkit:\n  ebpf:\n    pinPath: \"\"\n"
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	metricsAddr := freeAddr(t, "tcp")
	e.healthz = freeAddr(t, "tcp")
	args := []string{"--config", cfgFile, "--mode", mode, "--netns", topo.Node.Path, "--kubeconfig", kubeconfig,
		"--metrics-bind-address", metricsAddr, "--healthz-bind-address", e.healthz,
		"--hostname-override", kubeNode, "--log-format=console", "--min-sync-period=0"}
	if flavour != "" {
		args = append(args, "--iptables-flavour", flavour)
	}
	p := startProc(t, exec.Command(bin, args...))
	e.proxyLog = p.logs
	t.Cleanup(func() {
		if mode != "userspace" {
			_ = exec.Command(bin, "--cleanup", "--mode", mode, "--netns", topo.Node.Path).Run()
		}
	})
	waitFor(t, "/healthz to say ok", func() bool { code, _ := e.health(); return code == http.StatusOK })

	b := topo.Backends
	web := e.createService(ctx, "web", corev1.ServiceTypeLoadBalancer, []string{"198.18.100.20"}, corev1.ServiceExternalTrafficPolicyCluster)
	e.setIngress(ctx, web, "198.18.100.30")
	e.setSlice(ctx, "web", "web-1", ep(b[0], true, false), ep(b[1], true, false), ep(b[2], true, false))
	clusterIP := netip.AddrPortFrom(netip.MustParseAddr(web.Spec.ClusterIP), 80)
	frontends := map[string]netip.AddrPort{
		"ClusterIP":    clusterIP,
		"NodePort":     netip.AddrPortFrom(e.nodeIP, uint16(web.Spec.Ports[0].NodePort)),
		"ExternalIP":   netip.MustParseAddrPort("198.18.100.20:80"),
		"LoadBalancer": netip.MustParseAddrPort("198.18.100.30:80"),
	}
	for kind, fe := range frontends {
		e.waitBackends(kind, fe, b[0].Name, b[1].Name, b[2].Name)
	}

	// Scale down, flip readiness, terminating fallback: traffic follows.
	e.setSlice(ctx, "web", "web-1", ep(b[0], true, false))
	e.waitOnly("scaled to one endpoint", clusterIP, b[0].Name)
	e.setSlice(ctx, "web", "web-1", ep(b[0], false, false), ep(b[1], true, false))
	e.waitOnly("b0 not ready, b1 ready", clusterIP, b[1].Name)
	e.setSlice(ctx, "web", "web-1", ep(b[0], false, false), ep(b[1], false, true))
	e.waitOnly("only a serving, terminating endpoint", clusterIP, b[1].Name)
	e.setSlice(ctx, "web", "web-1", ep(b[0], false, false))
	waitFor(t, "no endpoint left: the frontend stops answering", func() bool { _, err := e.request(clusterIP); return err != nil })

	// Session affinity: every connection of the client to one backend.
	e.setSlice(ctx, "web", "web-1", ep(b[0], true, false), ep(b[1], true, false), ep(b[2], true, false))
	e.waitBackends("ClusterIP again", clusterIP, b[0].Name, b[1].Name, b[2].Name)
	e.update(ctx, "web", func(s *corev1.Service) {
		s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptrTo(int32(60))}}
	})
	waitFor(t, "client IP affinity", func() bool {
		first, err := e.request(clusterIP)
		if err != nil {
			return false
		}
		for range 15 {
			if n, err := e.request(clusterIP); err != nil || n != first {
				return false
			}
		}
		return true
	})

	// Move an external IP to another service.
	e.createService(ctx, "web2", corev1.ServiceTypeClusterIP, nil, "")
	e.setSlice(ctx, "web2", "web2-1", ep(b[2], true, false))
	e.update(ctx, "web", func(s *corev1.Service) { s.Spec.ExternalIPs = nil })
	e.update(ctx, "web2", func(s *corev1.Service) { s.Spec.ExternalIPs = []string{"198.18.100.20"} })
	e.waitOnly("the external IP moved to web2", frontends["ExternalIP"], b[2].Name)

	// Topology: zone hints steer this node (zone-a) to its zone's endpoint.
	hinted := func(h *netns.Host, zone string) discoveryv1.Endpoint {
		x := ep(h, true, false)
		x.Zone = ptrTo(zone)
		x.Hints = &discoveryv1.EndpointHints{ForZones: []discoveryv1.ForZone{{Name: zone}}}
		return x
	}
	e.setSlice(ctx, "web", "web-1", hinted(b[0], "zone-b"), hinted(b[1], "zone-a"), hinted(b[2], "zone-b"))
	e.waitOnly("the endpoint hinted for zone-a", clusterIP, b[1].Name)

	// externalTrafficPolicy=Local: the health check node port answers 200
	// while an endpoint is on this node, 503 when none is.
	local := e.createService(ctx, "local", corev1.ServiceTypeLoadBalancer, nil, corev1.ServiceExternalTrafficPolicyLocal)
	hcPort := local.Spec.HealthCheckNodePort
	if hcPort == 0 {
		t.Fatal("the API server allocated no healthCheckNodePort")
	}
	onNode := func(h *netns.Host, node string) discoveryv1.Endpoint {
		x := ep(h, true, false)
		x.NodeName = ptrTo(node)
		return x
	}
	e.setSlice(ctx, "local", "local-1", onNode(b[0], kubeNode), onNode(b[1], "node-b"))
	localNodePort := netip.AddrPortFrom(e.nodeIP, uint16(local.Spec.Ports[0].NodePort))
	e.waitOnly("eTP=Local NodePort: only the endpoint on this node", localNodePort, b[0].Name)
	waitFor(t, "the health check node port: 200, one local endpoint", func() bool {
		code, body := e.hcnp(hcPort)
		return code == http.StatusOK && body.LocalEndpoints == 1 && body.ServiceProxyHealthy
	})
	e.setSlice(ctx, "local", "local-1", onNode(b[0], "node-b"), onNode(b[1], "node-b"))
	waitFor(t, "the health check node port: 503, no local endpoint", func() bool {
		code, body := e.hcnp(hcPort)
		return code == http.StatusServiceUnavailable && body.LocalEndpoints == 0
	})

	// A scheduler no datapath knows: an Event on the Service, and the
	// other services keep syncing.
	e.update(ctx, "web2", func(s *corev1.Service) { s.Annotations = map[string]string{kube.AnnotationScheduler: "fastest"} })
	waitFor(t, "an Event naming the refused scheduler", func() bool {
		list, err := c.EventsV1().Events(e.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		for _, ev := range list.Items {
			if ev.Regarding.Name == "web2" && ev.Reason == kube.ReasonInvalid && strings.Contains(ev.Note, "fastest") {
				return true
			}
		}
		return false
	})
	e.setSlice(ctx, "web", "web-1", ep(b[0], true, false))
	e.waitOnly("web still syncs", clusterIP, b[0].Name)

	// The node drained by the cluster autoscaler: /healthz fails.
	e.taint(ctx, true)
	waitFor(t, "/healthz 503 with nodeEligible false", func() bool {
		code, body := e.health()
		return code == http.StatusServiceUnavailable && body["nodeEligible"] == false
	})
	e.taint(ctx, false)
	waitFor(t, "/healthz ok again", func() bool { code, _ := e.health(); return code == http.StatusOK })

	// Deleting a service removes it.
	if err := c.CoreV1().Services(e.ns).Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deleted service to stop answering", func() bool { _, err := e.request(clusterIP); return err != nil })
	p.stop(t)
}

func ptrTo[T any](v T) *T { return &v }

// ep is an endpoint of backend h with the given conditions.
func ep(h *netns.Host, ready, terminating bool) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{
		Addresses: []string{h.IPv4.String()},
		Conditions: discoveryv1.EndpointConditions{
			Ready: ptrTo(ready), Serving: ptrTo(ready || terminating), Terminating: ptrTo(terminating),
		},
	}
}

func (e *kubeEnv) createNode(ctx context.Context) {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: kubeNode, Labels: map[string]string{kube.LabelZone: "zone-a"}},
	}
	n, err := e.c.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = e.c.CoreV1().Nodes().Delete(context.Background(), kubeNode, metav1.DeleteOptions{}) })
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: e.nodeIP.String()}}
	if _, err := e.c.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *kubeEnv) taint(ctx context.Context, on bool) {
	n, err := e.c.CoreV1().Nodes().Get(ctx, kubeNode, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	n.Spec.Taints = nil
	if on {
		n.Spec.Taints = []corev1.Taint{{Key: kube.TaintToBeDeleted, Effect: corev1.TaintEffectNoSchedule}}
	}
	if _, err := e.c.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *kubeEnv) createService(ctx context.Context, name string, typ corev1.ServiceType, externalIPs []string, etp corev1.ServiceExternalTrafficPolicy) *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: name},
		Spec: corev1.ServiceSpec{
			Type: typ, ExternalIPs: externalIPs, ExternalTrafficPolicy: etp,
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}},
		},
	}
	out, err := e.c.CoreV1().Services(e.ns).Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create service %s: %v", name, err)
	}
	return out
}

func (e *kubeEnv) setIngress(ctx context.Context, svc *corev1.Service, ip string) {
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
	if _, err := e.c.CoreV1().Services(e.ns).UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

// update changes a service, retrying on conflicts.
func (e *kubeEnv) update(ctx context.Context, name string, change func(*corev1.Service)) {
	for range 5 {
		svc, err := e.c.CoreV1().Services(e.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			e.t.Fatal(err)
		}
		change(svc)
		if _, err = e.c.CoreV1().Services(e.ns).Update(ctx, svc, metav1.UpdateOptions{}); err == nil {
			return
		}
	}
	e.t.Fatalf("update service %s: conflicts", name)
}

// setSlice creates or replaces an EndpointSlice of service svc, port
// "http" on the backends' port.
func (e *kubeEnv) setSlice(ctx context.Context, svc, name string, eps ...discoveryv1.Endpoint) {
	sl := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: name, Labels: map[string]string{kube.LabelServiceName: svc},
			Annotations: map[string]string{kube.AnnotationTriggerTime: time.Now().UTC().Format(time.RFC3339Nano)}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptrTo("http"), Port: ptrTo(int32(netns.DefaultPort)), Protocol: ptrTo(corev1.ProtocolTCP)}},
		Endpoints:   eps,
	}
	api := e.c.DiscoveryV1().EndpointSlices(e.ns)
	old, err := api.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if _, err := api.Create(ctx, sl, metav1.CreateOptions{}); err != nil {
			e.t.Fatalf("create slice %s: %v", name, err)
		}
		return
	}
	sl.ResourceVersion = old.ResourceVersion
	if _, err := api.Update(ctx, sl, metav1.UpdateOptions{}); err != nil {
		e.t.Fatalf("update slice %s: %v", name, err)
	}
}

// request makes one TCP connection from the client and returns the name
// of the backend that answered.
func (e *kubeEnv) request(fe netip.AddrPort) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	r, err := e.topo.Client.Request(ctx, "tcp", fe)
	return r.Backend, err
}

// waitBackends waits until connections to fe have reached every backend
// named.
func (e *kubeEnv) waitBackends(what string, fe netip.AddrPort, names ...string) {
	e.t.Helper()
	seen := map[string]bool{}
	waitFor(e.t, what+" "+fe.String()+" to reach "+strings.Join(names, ", "), func() bool {
		if n, err := e.request(fe); err == nil {
			seen[n] = true
		}
		for _, n := range names {
			if !seen[n] {
				return false
			}
		}
		return true
	})
}

// waitOnly waits until 15 connections in a row to fe reach backend name.
func (e *kubeEnv) waitOnly(what string, fe netip.AddrPort, name string) {
	e.t.Helper()
	waitFor(e.t, what+" ("+fe.String()+" only to "+name+")", func() bool {
		for range 15 {
			if n, err := e.request(fe); err != nil || n != name {
				return false
			}
		}
		return true
	})
}

func (e *kubeEnv) health() (int, map[string]any) {
	var body map[string]any
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://" + e.healthz + "/healthz")
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// hcnp asks the health check node port from the client namespace.
func (e *kubeEnv) hcnp(port int32) (int, struct {
	LocalEndpoints      int  `json:"localEndpoints"`
	ServiceProxyHealthy bool `json:"serviceProxyHealthy"`
}) {
	var body struct {
		LocalEndpoints      int  `json:"localEndpoints"`
		ServiceProxyHealthy bool `json:"serviceProxyHealthy"`
	}
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return e.topo.Client.Dial(ctx, network, addr)
		},
	}}
	resp, err := client.Get(fmt.Sprintf("http://%s/", netip.AddrPortFrom(e.nodeIP, uint16(port))))
	if err != nil {
		return 0, body
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}
