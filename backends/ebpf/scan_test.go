package ebpf

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/lbkit/lbkit/internal/netns"
	"github.com/lbkit/lbkit/internal/testenv"
	"github.com/lbkit/lbkit/lb"
)

// TestScanAndRemoveWithoutPins: a datapath that pins nothing (its process
// still runs) is found by program name, on the namespace's interfaces and
// in the socket-LB cgroup, and Remove detaches all of it without the
// datapath's options: the VIP stops answering. Scan afterwards finds
// nothing, and the datapath's own Cleanup still succeeds.
func TestScanAndRemoveWithoutPins(t *testing.T) {
	requireBPF(t)
	for _, tc := range []struct {
		name string
		opts Options
		want []string // prefixes of lines Scan must return
	}{
		{"tcx", Options{}, []string{"ebpf: tcx ingress program lb_tc_ingress", "ebpf: tcx egress program lb_tc_egress"}},
		{"clsact", Options{LegacyTC: true}, []string{"ebpf: clsact ingress filter lb_tc_ingress", "ebpf: clsact egress filter lb_tc_egress"}},
		{"xdp", Options{Attach: AttachXDP, XDPMode: XDPGeneric}, []string{"ebpf: xdp program lb_xdp", "ebpf: tcx ingress program lb_tc_ingress"}},
		{"socket-lb", Options{SocketLB: true}, []string{"ebpf: cgroup connect4 program lb_connect4", "ebpf: cgroup getpeername6 program lb_getpeername6"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topo := netns.New(t, netns.Options{Backends: 2})
			opts := tc.opts
			opts.Netns = topo.Node.Path
			scan := ScanOptions{Netns: topo.Node.Path}
			if opts.SocketLB {
				opts.CgroupPath = testCgroup(t)
				scan.Cgroup = opts.CgroupPath
			}
			d, err := New(opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = d.Cleanup(t.Context()) })
			vip := programOne(t, d, topo)
			if _, err := topo.Client.Request(t.Context(), "tcp", vip); err != nil {
				t.Fatalf("the VIP does not answer before Remove: %v", err)
			}

			found, err := Scan(t.Context(), scan)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !slices.ContainsFunc(found, func(s string) bool { return strings.HasPrefix(s, w) }) {
					t.Errorf("Scan found no %q; it found:\n%s", w, strings.Join(found, "\n"))
				}
			}
			if err := Remove(t.Context(), scan); err != nil {
				t.Fatal(err)
			}
			if left, err := Scan(t.Context(), scan); err != nil || len(left) > 0 {
				t.Fatalf("Scan after Remove: %q, %v", left, err)
			}
			progs, err := leftovers(topo.Node.Path)
			if err != nil {
				t.Fatal(err)
			}
			// A clsact qdisc may stay: Remove cannot tell whether lbkit
			// made it.
			progs = slices.DeleteFunc(progs, func(s string) bool { return strings.HasSuffix(s, ": clsact qdisc") })
			if len(progs) > 0 {
				t.Fatalf("programs left on the interfaces: %q", progs)
			}
			if opts.SocketLB {
				if left, err := cgroupLeftovers(opts.CgroupPath); err != nil || len(left) > 0 {
					t.Fatalf("socket-LB programs left in the cgroup: %q, %v", left, err)
				}
			}
			if _, err := topo.Client.Request(t.Context(), "tcp", vip); err == nil {
				t.Fatal("the VIP still answers after Remove")
			}
			if err := d.Cleanup(t.Context()); err != nil {
				t.Fatalf("the datapath's Cleanup after Remove: %v", err)
			}
		})
	}
}

// programOne programs one service on 198.18.100.30:80 with the topology's
// backends and returns its VIP.
func programOne(t *testing.T, d *Datapath, topo *netns.Topology) netip.AddrPort {
	t.Helper()
	fe := lb.Frontend{Addr: netip.MustParseAddr("198.18.100.30"), Port: 80, Protocol: lb.TCP, Kind: lb.ClusterIP}
	svc := &lb.Service{Key: "scan", Frontends: []lb.Frontend{fe}}
	var eps []lb.Endpoint
	for _, b := range topo.Backends {
		eps = append(eps, lb.ReadyEndpoint(netip.AddrPortFrom(b.IPv4, netns.DefaultPort)))
	}
	testenv.Program(t, d, svc, eps)
	return netip.AddrPortFrom(fe.Addr, fe.Port)
}
