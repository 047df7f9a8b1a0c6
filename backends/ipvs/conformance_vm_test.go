//go:build vmtest

package ipvs_test

import (
	"net"
	"net/netip"
	"testing"

	mobyipvs "github.com/moby/ipvs"

	"github.com/lbkit/lbkit/backends/conformance"
	"github.com/lbkit/lbkit/backends/ipvs"
	"github.com/lbkit/lbkit/lb"
)

// foreignVIP is a virtual server of "another program", inside the
// datapath's ExcludeCIDRs, that must survive every sync and Cleanup.
var (
	excluded   = netip.MustParsePrefix("198.19.255.0/24")
	foreignVIP = netip.MustParseAddrPort("198.19.255.1:80")
)

// TestConformance runs the shared suite against IPVS in the guest.
func TestConformance(t *testing.T) {
	requireIPVS(t)
	t.Parallel() // with TestAffinityExpires, which mostly waits
	conformance.Run(t, func(t *testing.T, env *conformance.Env) lb.Datapath {
		dp, err := ipvs.New(ipvs.Options{
			Netns: env.Netns, Logger: env.Logger,
			MasqueradeAll: env.MasqueradeAll, ClusterCIDRs: env.ClusterCIDRs, NodePortAddresses: env.NodePortAddresses,
			ExcludeCIDRs: []netip.Prefix{excluded},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { dp.Close() })
		return dp
	}, conformance.Options{
		KeepsEstablished:        true,
		PreservesClientIP:       true,
		Masquerades:             true,
		RejectsWithoutEndpoints: true,
		ClearsStaleUDP:          true,
		Disrupt: func(t *testing.T, env *conformance.Env) {
			// What `ipvsadm -C` does.
			if err := ipvsHandle(t, env.Netns).Flush(); err != nil {
				t.Fatalf("flush IPVS: %v", err)
			}
		},
		Leftovers: leftovers,
		Foreign:   foreign,
	})
}

// leftovers lists the virtual servers, the dummy device and the nftables
// tables left in the node namespace.
func leftovers(t *testing.T, env *conformance.Env) []string {
	var out []string
	for k := range virtualServers(t, env.Netns) {
		out = append(out, "virtual server "+k)
	}
	if _, err := routeHandle(t, env.Netns).LinkByName(ipvs.DefaultDevice); err == nil {
		out = append(out, "device "+ipvs.DefaultDevice)
	}
	out = append(out, natTables(t, env.Netns)...)
	return out
}

// foreign installs a virtual server in ExcludeCIDRs, as another program
// would, and checks it keeps its scheduler and real server.
func foreign(t *testing.T, env *conformance.Env) func(*testing.T, string) {
	h := ipvsHandle(t, env.Netns)
	svc := &mobyipvs.Service{
		Address: net.IP(foreignVIP.Addr().AsSlice()), Port: foreignVIP.Port(), Protocol: 6,
		AddressFamily: 2, SchedName: "lc", Netmask: 0xffffffff,
	}
	dst := &mobyipvs.Destination{Address: net.IPv4(198, 18, 2, 10), Port: 8080, Weight: 7, AddressFamily: 2}
	if err := h.NewService(svc); err != nil {
		t.Fatalf("foreign virtual server: %v", err)
	}
	if err := h.NewDestination(svc, dst); err != nil {
		t.Fatalf("foreign real server: %v", err)
	}
	return func(t *testing.T, after string) {
		got, err := h.GetService(svc)
		if err != nil {
			t.Errorf("after %s the foreign virtual server %s is gone: %v", after, foreignVIP, err)
			return
		}
		ds, err := h.GetDestinations(got)
		if got.SchedName != "lc" || err != nil || len(ds) != 1 || ds[0].Weight != 7 {
			t.Errorf("after %s the foreign virtual server %s changed: scheduler %s, real servers %v (%v)", after, foreignVIP, got.SchedName, ds, err)
		}
	}
}
