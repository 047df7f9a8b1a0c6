package kube

import (
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbkit/lbkit/lb"
)

func ptr[T any](v T) *T { return &v }

func fe(addr string, port uint16, kind lb.FrontendKind) lb.Frontend {
	return lb.Frontend{Addr: netip.MustParseAddr(addr), Port: port, Protocol: lb.TCP, Kind: kind}
}

func TestTranslateService(t *testing.T) {
	meta := metav1.ObjectMeta{Namespace: "ns", Name: "web"}
	proxyMode := corev1.LoadBalancerIPModeProxy
	tests := []struct {
		name string
		svc  corev1.Service
		want []lb.Service
	}{{
		name: "cluster IP, one unnamed port",
		svc: corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{
			ClusterIP: "198.19.0.10", ClusterIPs: []string{"198.19.0.10"},
			Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}},
		}},
		want: []lb.Service{{Key: "ns/web", Frontends: []lb.Frontend{fe("198.19.0.10", 80, lb.ClusterIP)}}},
	}, {
		name: "dual stack NodePort with two named ports, UDP and affinity",
		svc: corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{
			Type:      corev1.ServiceTypeNodePort,
			ClusterIP: "198.19.0.10", ClusterIPs: []string{"198.19.0.10", "2001:2::a"},
			Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, NodePort: 30080, Protocol: corev1.ProtocolTCP},
				{Name: "dns", Port: 53, NodePort: 30053, Protocol: corev1.ProtocolUDP},
			},
			SessionAffinity:       corev1.ServiceAffinityClientIP,
			SessionAffinityConfig: &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr(int32(60))}},
			ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
			InternalTrafficPolicy: ptr(corev1.ServiceInternalTrafficPolicyLocal),
		}},
		want: []lb.Service{{
			Key: "ns/web/http",
			Frontends: []lb.Frontend{
				fe("198.19.0.10", 80, lb.ClusterIP), fe("2001:2::a", 80, lb.ClusterIP),
				fe("0.0.0.0", 30080, lb.NodePort), fe("::", 30080, lb.NodePort),
			},
			Affinity:       lb.SessionAffinity{Type: lb.AffinityClientIP, Timeout: time.Minute},
			ExternalPolicy: lb.PolicyLocal, InternalPolicy: lb.PolicyLocal,
		}, {
			Key: "ns/web/dns",
			Frontends: []lb.Frontend{
				{Addr: netip.MustParseAddr("198.19.0.10"), Port: 53, Protocol: lb.UDP, Kind: lb.ClusterIP},
				{Addr: netip.MustParseAddr("2001:2::a"), Port: 53, Protocol: lb.UDP, Kind: lb.ClusterIP},
				{Addr: netip.MustParseAddr("0.0.0.0"), Port: 30053, Protocol: lb.UDP, Kind: lb.NodePort},
				{Addr: netip.MustParseAddr("::"), Port: 30053, Protocol: lb.UDP, Kind: lb.NodePort},
			},
			Affinity:       lb.SessionAffinity{Type: lb.AffinityClientIP, Timeout: time.Minute},
			ExternalPolicy: lb.PolicyLocal, InternalPolicy: lb.PolicyLocal,
		}},
	}, {
		name: "LoadBalancer: ingress IPs except Proxy mode, external IPs, bad IPs dropped, scheduler annotation",
		svc: corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", Annotations: map[string]string{AnnotationScheduler: "maglev"}},
			Spec: corev1.ServiceSpec{
				Type:      corev1.ServiceTypeLoadBalancer,
				ClusterIP: "198.19.0.10", ClusterIPs: []string{"198.19.0.10"},
				ExternalIPs: []string{"198.18.7.1", "not-an-ip", "198.18.7.1"},
				Ports:       []corev1.ServicePort{{Name: "http", Port: 80, NodePort: 30080}},
			},
			Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{
				{IP: "198.18.8.1"}, {IP: "198.18.8.2", IPMode: &proxyMode}, {Hostname: "lb.example"},
			}}},
		},
		want: []lb.Service{{
			Key:       "ns/web/http",
			Scheduler: lb.Maglev,
			Frontends: []lb.Frontend{
				fe("198.19.0.10", 80, lb.ClusterIP), fe("0.0.0.0", 30080, lb.NodePort),
				fe("198.18.7.1", 80, lb.ExternalIP), fe("198.18.8.1", 80, lb.LoadBalancer),
			},
		}},
	}, {
		name: "eTP=Local on a ClusterIP service without external IPs is Cluster (not externally accessible)",
		svc: corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{
			ClusterIP: "198.19.0.10", ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
			Ports: []corev1.ServicePort{{Port: 80}},
		}},
		want: []lb.Service{{Key: "ns/web", Frontends: []lb.Frontend{fe("198.19.0.10", 80, lb.ClusterIP)}}},
	}, {
		name: "headless: nothing",
		svc: corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Port: 80}},
		}},
	}, {
		name: "ExternalName: nothing",
		svc: corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeExternalName, ExternalName: "example.org", Ports: []corev1.ServicePort{{Port: 80}},
		}},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := translateService(&tc.svc)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d ports, want %d: %+v", len(got), len(tc.want), got)
			}
			for i := range got {
				if !got[i].svc.Equal(&tc.want[i]) {
					t.Errorf("port %d:\n got %+v\nwant %+v", i, *got[i].svc, tc.want[i])
				}
			}
		})
	}
}
