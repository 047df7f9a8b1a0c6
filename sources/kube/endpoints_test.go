package kube

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbkit/lbkit/lb"
)

func slice(name string, typ discoveryv1.AddressType, port int32, portName string, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "ns", Name: name, Labels: map[string]string{LabelServiceName: "web"}},
		AddressType: typ,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr(portName), Port: ptr(port), Protocol: ptr(corev1.ProtocolTCP)}},
		Endpoints:   eps,
	}
}

func TestTranslateSliceConditionsAndHints(t *testing.T) {
	s := slice("web-1", discoveryv1.AddressTypeIPv4, 8080, "http",
		discoveryv1.Endpoint{Addresses: []string{"198.18.1.1", "198.18.9.9"}, NodeName: ptr("n1"), Zone: ptr("z1"),
			Hints: &discoveryv1.EndpointHints{ForZones: []discoveryv1.ForZone{{Name: "z1"}}, ForNodes: []discoveryv1.ForNode{{Name: "n1"}}}},
		discoveryv1.Endpoint{Addresses: []string{"198.18.1.2"}, Conditions: discoveryv1.EndpointConditions{
			Ready: ptr(false), Serving: ptr(true), Terminating: ptr(true)}},
		discoveryv1.Endpoint{Addresses: []string{"198.18.1.3"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(false)}},
		discoveryv1.Endpoint{Addresses: []string{"bogus"}},
	)
	got := translateSlice(s)[portID{"http", corev1.ProtocolTCP}]
	want := []lb.Endpoint{
		{Addr: netip.MustParseAddrPort("198.18.1.1:8080"), Ready: true, Serving: true, NodeName: "n1", Zone: "z1",
			Hints: lb.NewHints([]string{"z1"}, []string{"n1"})},
		{Addr: netip.MustParseAddrPort("198.18.1.2:8080"), Serving: true, Terminating: true},
		// Serving defaults to true when unset, even if not ready (kube-proxy).
		{Addr: netip.MustParseAddrPort("198.18.1.3:8080"), Serving: true},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	if fq := translateSlice(slice("web-f", discoveryv1.AddressTypeFQDN, 80, "http",
		discoveryv1.Endpoint{Addresses: []string{"a.example"}})); fq != nil {
		t.Errorf("FQDN slice gave %v, want nothing", fq)
	}
}

func TestMergeEndpointsDeduplicatesPreferringReady(t *testing.T) {
	id := portID{"http", corev1.ProtocolTCP}
	a := translateSlice(slice("a", discoveryv1.AddressTypeIPv4, 80, "http",
		discoveryv1.Endpoint{Addresses: []string{"198.18.1.2"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(false)}},
		discoveryv1.Endpoint{Addresses: []string{"198.18.1.1"}}))
	b := translateSlice(slice("b", discoveryv1.AddressTypeIPv4, 80, "http",
		discoveryv1.Endpoint{Addresses: []string{"198.18.1.2"}},
		discoveryv1.Endpoint{Addresses: []string{"198.18.1.3"}}))
	got := mergeEndpoints([]sliceEndpoints{a, b}, id)
	var addrs []string
	for _, ep := range got {
		addrs = append(addrs, ep.Addr.String())
		if !ep.Ready {
			t.Errorf("%s not ready: the ready copy must win", ep.Addr)
		}
	}
	if want := []string{"198.18.1.1:80", "198.18.1.2:80", "198.18.1.3:80"}; !slices.Equal(addrs, want) {
		t.Errorf("merged %v, want %v", addrs, want)
	}
	if other := mergeEndpoints([]sliceEndpoints{a, b}, portID{"other", corev1.ProtocolTCP}); other != nil {
		t.Errorf("a port no slice has got %v", other)
	}
}

func TestTriggerTime(t *testing.T) {
	s := slice("a", discoveryv1.AddressTypeIPv4, 80, "")
	if !triggerTime(s).IsZero() {
		t.Error("no annotation: want zero")
	}
	want := time.Date(2026, 12, 6, 4, 0, 0, 123000000, time.UTC)
	s.Annotations = map[string]string{AnnotationTriggerTime: want.Format(time.RFC3339Nano)}
	if got := triggerTime(s); !got.Equal(want) {
		t.Errorf("got %s, want %s", got, want)
	}
	s.Annotations[AnnotationTriggerTime] = "yesterday"
	if !triggerTime(s).IsZero() {
		t.Error("bad annotation: want zero")
	}
}
