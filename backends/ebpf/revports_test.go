package ebpf

import (
	"net/netip"
	"testing"

	"github.com/lbkit/lbkit/bpf"
	"github.com/lbkit/lbkit/internal/netns"
	"github.com/lbkit/lbkit/lb"
)

// revPorts reads lb_rev_ports, the marks of the source ports REV entries
// can have (which the TC programs use to skip lb_ct lookups).
func revPorts(t *testing.T, d *Datapath) *bpf.LBRevPorts {
	t.Helper()
	var v bpf.LBRevPorts
	if err := d.objs.LbRevPorts.Lookup(uint32(0), &v); err != nil {
		t.Fatalf("read lb_rev_ports: %v", err)
	}
	return &v
}

// TestRevPortMarks: a flow marks its backend port as a reply source, for
// egress (not masqueraded) or ingress (masqueraded), and replies are still
// translated. A client port is not marked, so its packets skip the REV
// lookups. Marks cleared (as with lb_ct adopted from an older version) are
// set again by new flows.
func TestRevPortMarks(t *testing.T) {
	be := netPort(netns.DefaultPort)

	h := newHookEnv(t, Options{}, lb.ClusterIP, lb.PolicyCluster)
	fe := netip.AddrPortFrom(h.fe.Addr, h.fe.Port)
	h.requests(t, fe, 10)
	rp := revPorts(t, h.d)
	if rp.Rev[be] != 1 || rp.Snat[be] != 0 {
		t.Errorf("backend port %d: marks rev=%d snat=%d, want rev only (no masquerade)", netns.DefaultPort, rp.Rev[be], rp.Snat[be])
	}
	if n := marked(rp.Rev[:]) + marked(rp.Snat[:]); n != 1 {
		t.Errorf("%d ports marked, want only the backend port", n)
	}
	if s := h.stats(t); s.TCReverse == 0 {
		t.Errorf("stats %+v: want replies translated by TC egress", s)
	}

	if err := h.d.objs.LbRevPorts.Put(uint32(0), &bpf.LBRevPorts{}); err != nil {
		t.Fatalf("clear lb_rev_ports: %v", err)
	}
	h.requests(t, fe, 5)
	if rp := revPorts(t, h.d); rp.Rev[be] != 1 {
		t.Errorf("after clearing, new flows did not mark backend port %d again", netns.DefaultPort)
	}

	m := newHookEnv(t, Options{}, lb.NodePort, lb.PolicyCluster)
	m.requests(t, netip.AddrPortFrom(m.topo.Node.IPv4, m.fe.Port), 10)
	rp = revPorts(t, m.d)
	if rp.Snat[be] != 1 || rp.Rev[be] != 0 {
		t.Errorf("masqueraded NodePort: backend port marks rev=%d snat=%d, want snat only", rp.Rev[be], rp.Snat[be])
	}
	if s := m.stats(t); s.MasqReverse == 0 {
		t.Errorf("stats %+v: want replies of masqueraded flows translated", s)
	}
}

// marked returns how many ports marks has marked.
func marked(marks []uint8) int {
	n := 0
	for _, m := range marks {
		if m != 0 {
			n++
		}
	}
	return n
}
