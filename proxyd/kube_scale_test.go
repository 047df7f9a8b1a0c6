package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/lbkit/lbkit/internal/kubetest"
	"github.com/lbkit/lbkit/internal/netns"
	"github.com/lbkit/lbkit/sources/kube"
)

// TestKubernetesScale measures proxyd against a real API server holding
// LBKIT_KUBE_SCALE services × 3 endpoints (e.g. 10000), in the modes
// named by LBKIT_KUBE_SCALE_MODES (default: nftables, iptables, ebpf):
// the time from start to the first full sync, the resident memory after
// it, and the network programming latency of single endpoint changes,
// from the EndpointSlice's trigger time to programmed, as proxyd's
// kubeproxy_network_programming_duration_seconds reports it (one change at
// a time, so each change's latency is the growth of the histogram's sum).
// It prints its numbers and asserts none: it is a benchmark (make
// bench-kube), not part of make test.
func TestKubernetesScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("LBKIT_KUBE_SCALE"))
	if n <= 0 {
		t.Skip("set LBKIT_KUBE_SCALE=10000 (make bench-kube) to measure proxyd at scale")
	}
	modes := strings.Fields(strings.ReplaceAll(os.Getenv("LBKIT_KUBE_SCALE_MODES"), ",", " "))
	if len(modes) == 0 {
		modes = []string{"nftables", "iptables", "ebpf"}
	}
	netns.Require(t)
	cluster := kubetest.Start(t)
	cfg := *cluster.AdminConfig
	cfg.QPS, cfg.Burst = 2000, 4000
	admin, err := kubernetes.NewForConfig(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: kubeNode}}
	if _, err := admin.CoreV1().Nodes().Create(context.Background(), node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	populate(t, admin, n)
	t.Logf("created %d services and %d EndpointSlices (× 3 endpoints) in %s", n, n, time.Since(start).Round(time.Second))
	bin := buildProxyd(t)
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) { measureScale(t, admin, cluster.AdminKubeconfig, bin, mode, n) })
	}
}

const scaleNS = "scale"

// populate creates n services with one 3-endpoint slice each, 32 at a time.
func populate(t *testing.T, c kubernetes.Interface, n int) {
	ctx := context.Background()
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: scaleNS}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	work := make(chan int)
	errs := make(chan error, 32)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for i := range work {
				name := fmt.Sprintf("svc-%05d", i)
				svc := &corev1.Service{
					ObjectMeta: metav1.ObjectMeta{Namespace: scaleNS, Name: name},
					Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
				}
				if _, err := c.CoreV1().Services(scaleNS).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
					errs <- err
					return
				}
				if _, err := c.DiscoveryV1().EndpointSlices(scaleNS).Create(ctx, scaleSlice(i, 0), metav1.CreateOptions{}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for i := range n {
		select {
		case work <- i:
		case err := <-errs:
			close(work)
			t.Fatal(err)
		}
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}

// scaleSlice is service i's slice; generation g moves its third endpoint
// to another address, so that each update is a real change. Endpoints
// are numbered into 198.18.0.0/15 (never reached: only programmed).
func scaleSlice(i, g int) *discoveryv1.EndpointSlice {
	eps := make([]discoveryv1.Endpoint, 3)
	for k := range eps {
		v := 1024 + 3*i + k
		if k == 2 && g > 0 {
			v = 1024 + 3*100000 + i // a second address space, past 3 × the largest scale
		}
		v %= 1 << 17
		a := netip.AddrFrom4([4]byte{198, 18 + byte(v>>16), byte(v >> 8), byte(v)})
		eps[k] = discoveryv1.Endpoint{Addresses: []string{a.String()}, Conditions: discoveryv1.EndpointConditions{Ready: ptrTo(true)}}
	}
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: scaleNS, Name: fmt.Sprintf("svc-%05d-1", i),
			Labels:      map[string]string{kube.LabelServiceName: fmt.Sprintf("svc-%05d", i)},
			Annotations: map[string]string{kube.AnnotationTriggerTime: time.Now().UTC().Format(time.RFC3339Nano)}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptrTo("http"), Port: ptrTo(int32(8080)), Protocol: ptrTo(corev1.ProtocolTCP)}},
		Endpoints:   eps,
	}
}

// scaleChanges is how many single endpoint changes each mode is timed on.
const scaleChanges = 200

func measureScale(t *testing.T, c kubernetes.Interface, kubeconfig, bin, mode string, n int) {
	topo := netns.New(t, netns.Options{Backends: 1})
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgFile, []byte("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nenableProfiling: true\nlbkit:\n  ebpf:\n    pinPath: \"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	metrics, healthz := freeAddr(t, "tcp"), freeAddr(t, "tcp")
	cmd := exec.Command(bin, "--config", cfgFile, "--mode", mode, "--netns", topo.Node.Path, "--kubeconfig", kubeconfig,
		"--metrics-bind-address", metrics, "--healthz-bind-address", healthz, "--hostname-override", kubeNode,
		"--log-format=console")
	started := time.Now()
	p := startProc(t, cmd)
	t.Cleanup(func() { _ = exec.Command(bin, "--cleanup", "--mode", mode, "--netns", topo.Node.Path).Run() })
	deadline := time.Now().Add(10 * time.Minute)
	for {
		if resp, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://" + healthz + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no first full sync after 10 minutes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	firstSync := time.Since(started)
	rssFirst := rss(t, cmd.Process.Pid)
	time.Sleep(5 * time.Second)
	rssSettled := rss(t, cmd.Process.Pid)
	if path := os.Getenv("LBKIT_KUBE_SCALE_HEAP"); path != "" {
		saveHeap(t, metrics, path+"."+mode)
	}

	// Each change comes after the last one is programmed and the
	// minimum sync period (1 s by default, as in kube-proxy) has passed
	// since, as isolated changes on a quiet cluster do: a change that
	// follows another within the minimum period waits for it by design.
	const sum, count = "kubeproxy_network_programming_duration_seconds_sum", "kubeproxy_network_programming_duration_seconds_count"
	var lat []time.Duration
	ctx := context.Background()
	for k := range scaleChanges {
		i := (k / 2 * 97) % n
		time.Sleep(1100 * time.Millisecond)
		s0, c0 := metricValue(t, metrics, sum), metricValue(t, metrics, count)
		sl := scaleSlice(i, 1-k%2) // move the third endpoint, then back
		old, err := c.DiscoveryV1().EndpointSlices(scaleNS).Get(ctx, sl.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sl.ResourceVersion = old.ResourceVersion
		sl.Annotations[kube.AnnotationTriggerTime] = time.Now().UTC().Format(time.RFC3339Nano)
		if _, err := c.DiscoveryV1().EndpointSlices(scaleNS).Update(ctx, sl, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the change to be programmed", func() bool { return metricValue(t, metrics, count) > c0 })
		if got := metricValue(t, metrics, count) - c0; got != 1 {
			t.Fatalf("%v services programmed for one change", got)
		}
		lat = append(lat, time.Duration((metricValue(t, metrics, sum)-s0)*float64(time.Second)))
	}
	slices.Sort(lat)
	pct := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	var total time.Duration
	for _, d := range lat {
		total += d
	}
	rssAfter := rss(t, cmd.Process.Pid)
	t.Logf("mode=%s Go memory after the changes: %s", mode, goMemory(metrics))
	t.Logf("RESULT mode=%s services=%d endpoints=%d first-full-sync=%s rss-first=%dMB rss-settled=%dMB rss-after-changes=%dMB latency(n=%d) p50=%s p99=%s mean=%s max=%s",
		mode, n, 3*n, firstSync.Round(time.Millisecond), rssFirst>>20, rssSettled>>20, rssAfter>>20, len(lat),
		pct(0.50).Round(100*time.Microsecond), pct(0.99).Round(100*time.Microsecond),
		(total / time.Duration(len(lat))).Round(100*time.Microsecond), lat[len(lat)-1].Round(100*time.Microsecond))
	p.stop(t)
}

// rss returns the resident set size of process pid in bytes.
func rss(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// goMemory returns the Go runtime's heap figures from the profiler's
// heap page (enableProfiling).
func goMemory(metrics string) string {
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + metrics + "/debug/pprof/heap?debug=1")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		for _, k := range []string{"# HeapAlloc = ", "# HeapInuse = ", "# HeapIdle = ", "# HeapReleased = ", "# Sys = "} {
			if v, ok := strings.CutPrefix(line, k); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				out = append(out, fmt.Sprintf("%s%dMB", strings.TrimPrefix(k, "# "), n>>20))
			}
		}
	}
	return strings.Join(out, " ")
}

// saveHeap writes a heap profile of the proxyd serving metrics to path
// (LBKIT_KUBE_SCALE_HEAP=PREFIX: one file per mode, for go tool pprof).
func saveHeap(t *testing.T, metrics, path string) {
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Get("http://" + metrics + "/debug/pprof/heap?gc=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("heap profile in %s", path)
}
