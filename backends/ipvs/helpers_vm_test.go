//go:build vmtest

package ipvs_test

import (
	"net/netip"
	"os"
	"testing"

	"github.com/google/nftables"
	mobyipvs "github.com/moby/ipvs"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/lbkit/lbkit/backends/ipvs"
)

// requireIPVS skips the test where the kernel has no IPVS, except inside a
// vmtest guest, whose kernel must have it.
func requireIPVS(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("ipvs: programming IPVS needs root")
	}
	if err := ipvs.Available(); err != nil {
		if os.Getenv("LBKIT_VMTEST_GUEST") == "1" {
			t.Fatalf("inside the vmtest guest IPVS must be loaded: %v", err)
		}
		t.Skip(err)
	}
}

// ipvsHandle opens a plain moby/ipvs handle in the namespace, as an
// outsider (ipvsadm) would.
func ipvsHandle(t testing.TB, path string) *mobyipvs.Handle {
	t.Helper()
	h, err := mobyipvs.New(path)
	if err != nil {
		t.Fatalf("ipvs handle in %s: %v", path, err)
	}
	t.Cleanup(h.Close)
	return h
}

// routeHandle opens an rtnetlink handle in the namespace.
func routeHandle(t testing.TB, path string) *netlink.Handle {
	t.Helper()
	ns, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// virtualServers lists the virtual servers in the namespace as
// "addr:port/proto" strings.
func virtualServers(t testing.TB, path string) map[string]*mobyipvs.Service {
	t.Helper()
	svcs, err := ipvsHandle(t, path).GetServices()
	if err != nil {
		t.Fatalf("list virtual servers: %v", err)
	}
	out := map[string]*mobyipvs.Service{}
	for _, s := range svcs {
		a, _ := netip.AddrFromSlice(s.Address)
		out[netip.AddrPortFrom(a.Unmap(), s.Port).String()+"/"+protoName(s.Protocol)] = s
	}
	return out
}

func protoName(p uint16) string {
	switch p {
	case unix.IPPROTO_TCP:
		return "tcp"
	case unix.IPPROTO_UDP:
		return "udp"
	case unix.IPPROTO_SCTP:
		return "sctp"
	}
	return "?"
}

// natTables lists the datapath's nftables tables in the namespace.
func natTables(t testing.TB, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	conn, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	ts, err := conn.ListTables()
	if err != nil {
		t.Fatalf("list nftables tables: %v", err)
	}
	var out []string
	for _, tb := range ts {
		if tb.Name == "lbkit-ipvs" {
			out = append(out, "nftables table "+tb.Name)
		}
	}
	return out
}
