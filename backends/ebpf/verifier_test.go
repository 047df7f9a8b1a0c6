package ebpf

import "testing"

// TestVerifierAcceptsPrograms loads every program of bpf/lb.c into this
// kernel: the verifier must accept them all.
func TestVerifierAcceptsPrograms(t *testing.T) {
	requireBPF(t)
	o, err := Options{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	objs, err := load(o)
	if err != nil {
		t.Fatal(err)
	}
	defer objs.close()
	p := objs.LBPrograms
	for name, prog := range map[string]any{
		"lb_tc_ingress": p.LbTcIngress, "lb_tc_egress": p.LbTcEgress, "lb_xdp": p.LbXdp,
		"lb_connect4": p.LbConnect4, "lb_connect6": p.LbConnect6, "lb_sendmsg4": p.LbSendmsg4,
		"lb_sendmsg6": p.LbSendmsg6, "lb_recvmsg4": p.LbRecvmsg4, "lb_recvmsg6": p.LbRecvmsg6,
		"lb_getpeername4": p.LbGetpeername4, "lb_getpeername6": p.LbGetpeername6,
	} {
		if prog == nil {
			t.Errorf("%s was not loaded", name)
		}
	}
	info, err := p.LbTcIngress.Info()
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := info.JitedSize(); ok == nil {
		t.Logf("lb_tc_ingress: %d bytes of machine code", n)
	}
}
