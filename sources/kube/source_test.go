package kube

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/lbkit/lbkit/lb"
)

// recSink records what the source gives it (a fake engine: this is a unit
// test of the source's logic; proxyd's end-to-end tests use a real API
// server and datapaths).
type recSink struct {
	mu       sync.Mutex
	services map[lb.ServiceKey]*lb.Service
	eps      map[lb.ServiceKey][]lb.Endpoint
	trigger  map[lb.ServiceKey]time.Time
	zone     string
}

func newRecSink() *recSink {
	return &recSink{services: map[lb.ServiceKey]*lb.Service{}, eps: map[lb.ServiceKey][]lb.Endpoint{}, trigger: map[lb.ServiceKey]time.Time{}}
}

func (r *recSink) Upsert(s *lb.Service) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.services[s.Key] = s
	return nil
}

func (r *recSink) Delete(k lb.ServiceKey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.services, k)
}

func (r *recSink) SetEndpoints(k lb.ServiceKey, eps []lb.Endpoint) error {
	return r.SetEndpointsTriggered(k, eps, time.Time{})
}

func (r *recSink) SetEndpointsTriggered(k lb.ServiceKey, eps []lb.Endpoint, t time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if eps == nil {
		delete(r.eps, k)
	} else {
		r.eps[k] = eps
	}
	r.trigger[k] = t
	return nil
}

func (r *recSink) SetNodeZone(z string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.zone = z
}

// view returns the keys and endpoint addresses the sink holds.
func (r *recSink) view() (keys []string, eps map[string][]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	eps = map[string][]string{}
	for k := range r.services {
		keys = append(keys, string(k))
	}
	slices.Sort(keys)
	for k, list := range r.eps {
		for _, ep := range list {
			eps[string(k)] = append(eps[string(k)], ep.Addr.String())
		}
	}
	return keys, eps
}

// health records the health check ports the source asks for.
type health struct {
	mu    sync.Mutex
	ports map[types.NamespacedName][2]int
}

func (h *health) SetService(nn types.NamespacedName, port uint16, local int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if port == 0 {
		delete(h.ports, nn)
		return
	}
	h.ports[nn] = [2]int{int(port), local}
}

func (h *health) get(nn types.NamespacedName) ([2]int, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.ports[nn]
	return v, ok
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func webService(labels map[string]string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", Labels: labels, UID: "u1"},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeLoadBalancer, ClusterIP: "198.19.0.10", ClusterIPs: []string{"198.19.0.10"},
			Ports:                 []corev1.ServicePort{{Name: "http", Port: 80, NodePort: 30080, Protocol: corev1.ProtocolTCP}},
			ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal, HealthCheckNodePort: 31000,
		},
	}
}

func startSource(t *testing.T, opts Options, objs ...runtime.Object) (*fake.Clientset, *recSink) {
	t.Helper()
	client := fake.NewClientset(objs...)
	sink := newRecSink()
	synced := make(chan struct{})
	opts.Synced = func() { close(synced) }
	src, err := New(client, sink, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-synced:
	case err := <-done:
		t.Fatalf("Run returned before syncing: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("source never synced")
	}
	return client, sink
}

func TestSourceFollowsServicesAndSlices(t *testing.T) {
	ctx := context.Background()
	h := &health{ports: map[types.NamespacedName][2]int{}}
	nn := types.NamespacedName{Namespace: "ns", Name: "web"}
	other := webService(map[string]string{LabelServiceProxyName: "someone-else"})
	other.Name, other.Spec.ClusterIP, other.Spec.ClusterIPs = "other", "198.19.0.11", nil
	client, sink := startSource(t, Options{NodeName: "n1", Health: h},
		webService(nil), other,
		slice("web-a", discoveryv1.AddressTypeIPv4, 8080, "http",
			discoveryv1.Endpoint{Addresses: []string{"198.18.1.1"}, NodeName: ptr("n1")},
			discoveryv1.Endpoint{Addresses: []string{"198.18.1.2"}, NodeName: ptr("n2")}),
	)
	// Synced means the listing is in the sink, before Synced is called.
	keys, eps := sink.view()
	if !slices.Equal(keys, []string{"ns/web/http"}) {
		t.Fatalf("services %v, want only ns/web/http (the other has another proxy's label)", keys)
	}
	if got := eps["ns/web/http"]; !slices.Equal(got, []string{"198.18.1.1:8080", "198.18.1.2:8080"}) {
		t.Fatalf("endpoints %v", got)
	}
	if v, ok := h.get(nn); !ok || v != [2]int{31000, 1} {
		t.Fatalf("health check port %v (%v), want 31000 with 1 local endpoint", v, ok)
	}

	// A second slice adds endpoints; its trigger time is passed on.
	trig := time.Now().Add(time.Second).UTC()
	s2 := slice("web-b", discoveryv1.AddressTypeIPv4, 8080, "http",
		discoveryv1.Endpoint{Addresses: []string{"198.18.1.3"}, NodeName: ptr("n1")})
	s2.Annotations = map[string]string{AnnotationTriggerTime: trig.Format(time.RFC3339Nano)}
	if _, err := client.DiscoveryV1().EndpointSlices("ns").Create(ctx, s2, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "three endpoints", func() bool { _, e := sink.view(); return len(e["ns/web/http"]) == 3 })
	sink.mu.Lock()
	gotTrig := sink.trigger["ns/web/http"]
	sink.mu.Unlock()
	if !gotTrig.Equal(trig) {
		t.Errorf("trigger %s, want %s", gotTrig, trig)
	}
	waitUntil(t, "two local endpoints", func() bool { v, _ := h.get(nn); return v[1] == 2 })

	// Renaming the port moves the service to a new key.
	svc := webService(nil)
	svc.Spec.Ports[0].Name = "web"
	if _, err := client.CoreV1().Services("ns").Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the renamed port", func() bool { k, _ := sink.view(); return slices.Equal(k, []string{"ns/web/web"}) })
	_, eps = sink.view()
	if len(eps["ns/web/web"]) != 0 || len(eps["ns/web/http"]) != 0 {
		t.Errorf("endpoints after the rename %v: the slices name port http, which the service no longer has", eps)
	}

	// Deleting the service removes it and its health check port.
	if err := client.CoreV1().Services("ns").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the deletion", func() bool { k, _ := sink.view(); return len(k) == 0 })
	if _, ok := h.get(nn); ok {
		t.Error("health check port still served after the service was deleted")
	}
}

func TestSourceWithServiceProxyNameServesOnlyItsServices(t *testing.T) {
	mine := webService(map[string]string{LabelServiceProxyName: "lbkit"})
	theirs := webService(nil)
	theirs.Name = "theirs"
	_, sink := startSource(t, Options{ServiceProxyName: "lbkit"}, mine, theirs)
	if keys, _ := sink.view(); !slices.Equal(keys, []string{"ns/web/http"}) {
		t.Fatalf("services %v, want only the one labelled for lbkit", keys)
	}
}

func TestSourceReadsItsNode(t *testing.T) {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{LabelZone: "z1"}},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeHostName, Address: "n1"},
			{Type: corev1.NodeExternalIP, Address: "198.18.50.1"},
			{Type: corev1.NodeInternalIP, Address: "198.18.0.1"},
			{Type: corev1.NodeInternalIP, Address: "2001:2::1"},
		}},
	}
	otherNode := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2", Labels: map[string]string{LabelZone: "z9"}}}
	var mu sync.Mutex
	var states []NodeState
	client, sink := startSource(t, Options{NodeName: "n1", Node: func(s NodeState) {
		mu.Lock()
		defer mu.Unlock()
		states = append(states, s)
	}}, node, otherNode)
	last := func() NodeState {
		mu.Lock()
		defer mu.Unlock()
		if len(states) == 0 {
			return NodeState{}
		}
		return states[len(states)-1]
	}
	waitUntil(t, "the node", func() bool { return last().Exists })
	st := last()
	if st.Zone != "z1" || !st.Eligible || fmt.Sprint(st.Primary()) != "[198.18.0.1 2001:2::1]" {
		t.Fatalf("node state %+v, primary %v", st, st.Primary())
	}
	sink.mu.Lock()
	zone := sink.zone
	sink.mu.Unlock()
	if zone != "z1" {
		t.Errorf("sink zone %q, want z1", zone)
	}
	node.Spec.Taints = []corev1.Taint{{Key: TaintToBeDeleted, Effect: corev1.TaintEffectNoSchedule}}
	if _, err := client.CoreV1().Nodes().Update(context.Background(), node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the taint", func() bool { return !last().Eligible })
	if r := last().Reason; r == "" {
		t.Error("no reason for the ineligible node")
	}
	if err := client.CoreV1().Nodes().Delete(context.Background(), "n1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the deletion", func() bool { return !last().Exists })
}

type eventRec struct {
	mu     sync.Mutex
	events []string
}

func (e *eventRec) Eventf(regarding, _ runtime.Object, typ, reason, _, note string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ref := regarding.(*corev1.ObjectReference)
	e.events = append(e.events, fmt.Sprintf("%s/%s %s %s: %s", ref.Namespace, ref.Name, typ, reason, fmt.Sprintf(note, args...)))
}

func TestStatusChangesBecomeEvents(t *testing.T) {
	rec := &eventRec{}
	client := fake.NewClientset()
	sink := newRecSink()
	src, err := New(client, sink, Options{Events: rec})
	if err != nil {
		t.Fatal(err)
	}
	src.mu.Lock()
	src.applyService(types.NamespacedName{Namespace: "ns", Name: "web"}, webService(nil))
	src.mu.Unlock()
	uerr := &lb.UnsupportedError{Service: "ns/web/http", Field: "scheduler", Value: "maglev", Datapath: "ipvs"}
	// The engine calls StatusChanged with its lock held, and the source
	// calls the engine with its own held: StatusChanged must not wait
	// for the source's lock.
	src.mu.Lock()
	src.StatusChanged(lb.ServiceStatus{Service: "ns/web/http", Phase: lb.PhaseUnsupported, Err: uerr})
	src.StatusChanged(lb.ServiceStatus{Service: "ns/web/http", Phase: lb.PhaseProgrammed})
	src.StatusChanged(lb.ServiceStatus{Service: "ns/web/http", Phase: lb.PhaseProgrammed})
	src.StatusChanged(lb.ServiceStatus{Service: "ns/unknown/x", Phase: lb.PhaseInvalid, Err: uerr})
	src.mu.Unlock()
	done := make(chan struct{})
	go src.recordStatuses(done)
	defer close(done)
	waitUntil(t, "two events", func() bool { rec.mu.Lock(); defer rec.mu.Unlock(); return len(rec.events) >= 2 })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.events) != 2 {
		t.Fatalf("events %q, want a warning and one recovery", rec.events)
	}
	if want := "ns/web Warning " + ReasonUnsupported + ": ns/web/http is not programmed as given: " + uerr.Error(); rec.events[0] != want {
		t.Errorf("event %q\nwant  %q", rec.events[0], want)
	}
	if want := "ns/web Normal " + ReasonProgrammed + ": ns/web/http is programmed"; rec.events[1] != want {
		t.Errorf("event %q, want %q", rec.events[1], want)
	}
}
