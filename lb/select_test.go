package lb

import (
	"net/netip"
	"testing"
)

func addrs(bs []Backend) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.Addr.String()
	}
	return out
}

func TestSelectReadyThenTerminatingFallback(t *testing.T) {
	s := svc("a", "198.18.100.1", 80)
	eps := []Endpoint{
		ep("198.18.2.12:80"),
		ep("198.18.2.10:80"),
		{Addr: netip.MustParseAddrPort("198.18.2.11:80"), Serving: true, Terminating: true},
		{Addr: netip.MustParseAddrPort("198.18.2.13:80")}, // not ready, not serving
	}
	got := addrs(Select(s, eps, Node{Name: "n"}).Frontends[0].Backends)
	if len(got) != 2 || got[0] != "198.18.2.10:80" || got[1] != "198.18.2.12:80" {
		t.Fatalf("ready backends %v, want the two ready ones sorted", got)
	}
	st := Select(s, eps[2:], Node{Name: "n"})
	bs := st.Frontends[0].Backends
	if len(bs) != 1 || bs[0].Addr.String() != "198.18.2.11:80" || !bs[0].Terminating {
		t.Fatalf("fallback %+v, want the serving terminating endpoint", bs)
	}
	if st := Select(s, eps[3:], Node{Name: "n"}); len(st.Frontends[0].Backends) != 0 {
		t.Fatal("a not-serving endpoint was selected")
	}
	if bs[0].Weight != DefaultWeight {
		t.Fatalf("weight %d, want default", bs[0].Weight)
	}
}

func TestSelectPoliciesAndFamilies(t *testing.T) {
	s := &Service{Key: "a", Frontends: []Frontend{
		{Addr: netip.MustParseAddr("198.18.100.1"), Port: 80, Protocol: TCP, Kind: ClusterIP},
		{Addr: netip.MustParseAddr("198.18.1.1"), Port: 30080, Protocol: TCP, Kind: NodePort},
		{Addr: netip.MustParseAddr("2001:2:0:100::1"), Port: 80, Protocol: TCP, Kind: ClusterIP},
	}, ExternalPolicy: PolicyLocal}
	local := ep("198.18.2.10:80")
	local.NodeName = "me"
	remote := ep("198.18.2.11:80")
	remote.NodeName = "other"
	v6 := ep("[2001:2:0:2::a]:80")
	st := Select(s, []Endpoint{local, remote, v6}, Node{Name: "me"})
	if got := addrs(st.Frontends[0].Backends); len(got) != 2 {
		t.Fatalf("ClusterIP (internal policy Cluster) got %v, want both IPv4 endpoints", got)
	}
	if got := addrs(st.Frontends[1].Backends); len(got) != 1 || got[0] != "198.18.2.10:80" {
		t.Fatalf("NodePort with Local policy got %v, want only the local endpoint", got)
	}
	if got := addrs(st.Frontends[2].Backends); len(got) != 1 || got[0] != "[2001:2:0:2::a]:80" {
		t.Fatalf("IPv6 frontend got %v, want only the IPv6 endpoint", got)
	}
	s.InternalPolicy = PolicyLocal
	st = Select(s, []Endpoint{remote}, Node{Name: "me"})
	if len(st.Frontends[0].Backends) != 0 {
		t.Fatal("Local internal policy used a remote endpoint")
	}
}
