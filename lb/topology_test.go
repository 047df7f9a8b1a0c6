package lb

import (
	"context"
	"net/netip"
	"reflect"
	"testing"
)

func hinted(addr string, zones, nodes []string) Endpoint {
	e := ep(addr)
	e.Hints = NewHints(zones, nodes)
	return e
}

func TestHints(t *testing.T) {
	h := NewHints([]string{"z2", "z1", "", "z1"}, []string{"node-a"})
	if !h.ForZone("z1") || !h.ForZone("z2") || h.ForZone("z") || h.ForZone("") {
		t.Fatalf("zones of %+v", h)
	}
	if !h.ForNode("node-a") || h.ForNode("node") || h.ForNode("") {
		t.Fatalf("nodes of %+v", h)
	}
	if !reflect.DeepEqual(h.Zones(), []string{"z1", "z2"}) || !reflect.DeepEqual(h.Nodes(), []string{"node-a"}) {
		t.Fatalf("Zones %v Nodes %v", h.Zones(), h.Nodes())
	}
	// Comparable: the same hints in another order are equal, so an
	// endpoint rebuilt from the same slice is no change.
	if NewHints([]string{"z1", "z2"}, nil) != NewHints([]string{"z2", "z1"}, nil) {
		t.Fatal("equal hints compare unequal")
	}
}

// Topology follows kube-proxy: hints only when every ready endpoint of the
// family has them, node hints before zone hints, and only when one is for
// this node (zone).
func TestSelectTopology(t *testing.T) {
	s := svc("a", "198.18.100.1", 80)
	a1 := hinted("198.18.2.10:80", []string{"z1"}, []string{"node-a"})
	a2 := hinted("198.18.2.11:80", []string{"z1"}, []string{"node-b"})
	b1 := hinted("198.18.2.12:80", []string{"z2"}, []string{"node-c"})
	plain := ep("198.18.2.13:80")
	terminating := Endpoint{Addr: netip.MustParseAddrPort("198.18.2.14:80"), Serving: true, Terminating: true}
	onA := Node{Name: "node-a", Zone: "z1"}
	for _, c := range []struct {
		name string
		eps  []Endpoint
		node Node
		want []string
	}{
		{"node hint for this node", []Endpoint{a1, a2, b1}, onA, []string{"198.18.2.10:80"}},
		{"zone hint when no node hint is for this node", []Endpoint{a1, a2, b1}, Node{Name: "node-x", Zone: "z1"}, []string{"198.18.2.10:80", "198.18.2.11:80"}},
		{"all when no hint is for this node or zone", []Endpoint{a1, a2, b1}, Node{Name: "node-x", Zone: "z9"}, []string{"198.18.2.10:80", "198.18.2.11:80", "198.18.2.12:80"}},
		{"no zone label: zone hints ignored", []Endpoint{a2, b1}, Node{Name: "node-x"}, []string{"198.18.2.11:80", "198.18.2.12:80"}},
		{"one ready endpoint without hints: all", []Endpoint{a1, a2, plain}, onA, []string{"198.18.2.10:80", "198.18.2.11:80", "198.18.2.13:80"}},
		{"a not-ready endpoint without hints does not count", []Endpoint{a1, a2, {Addr: plain.Addr}}, onA, []string{"198.18.2.10:80"}},
		{"terminating fallback ignores hints", []Endpoint{terminating}, onA, []string{"198.18.2.14:80"}},
	} {
		got := addrs(Select(s, c.eps, c.node).Frontends[0].Backends)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}

	// A Local policy uses this node's endpoints and no hints.
	local := svc("l", "198.18.100.2", 80)
	local.InternalPolicy = PolicyLocal
	a2local := a2
	a2local.NodeName = "node-a"
	if got := addrs(Select(local, []Endpoint{a1, a2local}, onA).Frontends[0].Backends); len(got) != 1 || got[0] != "198.18.2.11:80" {
		t.Errorf("Local policy: %v, want node-a's endpoint whatever its hints", got)
	}

	// Hints are judged per IP family: IPv6 endpoints without hints do not
	// turn off the IPv4 hints.
	dual := svc("d", "198.18.100.3", 80)
	dual.Frontends = append(dual.Frontends, Frontend{Addr: netip.MustParseAddr("2001:2::3"), Port: 80, Protocol: TCP, Kind: ClusterIP})
	st := Select(dual, []Endpoint{a1, a2, ep("[2001:2::10]:80")}, onA)
	if got := addrs(st.Frontends[0].Backends); len(got) != 1 {
		t.Errorf("IPv4 with hints beside IPv6 without: %v", got)
	}
	if got := addrs(st.Frontends[1].Backends); len(got) != 1 || got[0] != "[2001:2::10]:80" {
		t.Errorf("IPv6: %v", got)
	}
}

func TestEngineNodeZone(t *testing.T) {
	r := &recorder{}
	e := newTestEngine(t, r, Config{NodeName: "node-x", NodeZone: "z1"})
	_ = e.Upsert(svc("a", "198.18.100.1", 80))
	_ = e.SetEndpoints("a", []Endpoint{
		hinted("198.18.2.10:80", []string{"z1"}, nil),
		hinted("198.18.2.11:80", []string{"z2"}, nil),
	})
	mustFlush(t, e)
	_, snap := r.last()
	if st, _ := snap.Service("a"); len(st.Frontends[0].Backends) != 1 || st.Frontends[0].Backends[0].Addr.String() != "198.18.2.10:80" {
		t.Fatalf("zone z1: %+v", st.Frontends[0].Backends)
	}
	e.SetNodeZone("z2")
	if err := e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	cs, snap := r.last()
	if st, _ := snap.Service("a"); !cs.Has("a") || st.Frontends[0].Backends[0].Addr.String() != "198.18.2.11:80" {
		t.Fatalf("after the zone changed to z2: %+v", st.Frontends[0].Backends)
	}
}
