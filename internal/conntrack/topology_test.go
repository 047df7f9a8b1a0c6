package conntrack

import (
	"net/netip"
	"os"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/lbkit/lbkit/internal/netns"
	"github.com/lbkit/lbkit/internal/nftutil"
)

// dnatTopology builds a topology whose node DNATs UDP to vip:80 to
// backend i, per an nftables rule the test can replace. The rule is
// written over netlink (no nft binary), so the tests also run in the
// vmtest guest, whose kernel is older than most hosts'.
type dnatTopology struct {
	topo  *netns.Topology
	conn  *nftutil.Conn
	chain *nftables.Chain
}

func newDNATTopology(t *testing.T) *dnatTopology {
	t.Helper()
	if os.Getenv("LBKIT_VMTEST_GUEST") == "1" {
		// The guest exists to run these tests: fail, never skip.
		if ok, reason := netns.Available(); !ok {
			t.Fatalf("inside the vmtest guest namespaces must work: %s", reason)
		}
	}
	netns.Require(t)
	topo := netns.New(t, netns.Options{Backends: 2, IPv6: true, TCPPorts: []uint16{}})
	conn, err := nftutil.Dial(topo.Node.Path)
	if err != nil {
		t.Fatalf("nftables%s: %v", nftutil.Where(topo.Node.Path), err)
	}
	t.Cleanup(conn.Close)
	table := conn.Nft.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: "cttest"})
	chain := conn.Nft.AddChain(&nftables.Chain{
		Name: "pre", Table: table,
		Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest,
	})
	if err := conn.Nft.Flush(); err != nil {
		t.Fatalf("add table inet cttest: %v", err)
	}
	return &dnatTopology{topo: topo, conn: conn, chain: chain}
}

// dnatTo makes vip:80/udp go to backend i (replacing the previous rule):
// meta nfproto FAMILY, daddr vip, udp dport 80, dnat to backend i.
func (d *dnatTopology) dnatTo(t *testing.T, vip netip.Addr, i int) {
	t.Helper()
	v6 := vip.Is6()
	be := d.topo.Backends[i].Addr(v6)
	nfproto := byte(unix.NFPROTO_IPV4)
	if v6 {
		nfproto = unix.NFPROTO_IPV6
	}
	r0, rPort := nftutil.Reg(0), nftutil.Reg(4)
	nft := d.conn.Nft
	nft.FlushChain(d.chain)
	nft.AddRule(&nftables.Rule{Table: d.chain.Table, Chain: d.chain, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: r0},
		&expr.Cmp{Op: expr.CmpOpEq, Register: r0, Data: []byte{nfproto}},
		nftutil.LoadAddr(v6, false, r0),
		&expr.Cmp{Op: expr.CmpOpEq, Register: r0, Data: vip.AsSlice()},
		nftutil.LoadProto(r0),
		&expr.Cmp{Op: expr.CmpOpEq, Register: r0, Data: []byte{unix.IPPROTO_UDP}},
		&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: r0, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: r0, Data: binaryutil.BigEndian.PutUint16(80)},
		&expr.Immediate{Register: r0, Data: be.AsSlice()},
		&expr.Immediate{Register: rPort, Data: binaryutil.BigEndian.PutUint16(netns.DefaultPort)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: uint32(nfproto), RegAddrMin: r0, RegProtoMin: rPort},
	}})
	if err := nft.Flush(); err != nil {
		t.Fatalf("dnat %s:80/udp to backend%d (%s): %v", vip, i, be, err)
	}
}

// request sends one UDP request from the client's fixed source port to dst
// and returns who answered.
func (d *dnatTopology) request(t *testing.T, src uint16, dst netip.AddrPort) string {
	t.Helper()
	local := netip.AddrPortFrom(d.topo.Client.Addr(dst.Addr().Is6()), src)
	r, err := d.topo.Client.RequestFrom(t.Context(), "udp", local, dst)
	if err != nil {
		t.Fatalf("request %s -> %s: %v", local, dst, err)
	}
	return r.Backend
}

// entries lists the node's UDP conntrack entries of the family of a.
func (d *dnatTopology) entries(t *testing.T, a netip.Addr) []*netlink.ConntrackFlow {
	t.Helper()
	h, err := openHandle(d.topo.Node.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	fam := netlink.InetFamily(unix.AF_INET)
	if a.Is6() {
		fam = unix.AF_INET6
	}
	flows, err := h.ConntrackTableList(netlink.ConntrackTable, fam)
	if err != nil {
		t.Fatalf("list conntrack: %v", err)
	}
	var out []*netlink.ConntrackFlow
	for _, f := range flows {
		if f.Forward.Protocol == unix.IPPROTO_UDP {
			out = append(out, f)
		}
	}
	return out
}

// hasFlowFrom reports whether an entry of the client's source port src to
// dst exists.
func (d *dnatTopology) hasFlowFrom(t *testing.T, src uint16, dst netip.AddrPort) bool {
	for _, f := range d.entries(t, dst.Addr()) {
		if f.Forward.SrcPort == src && netip.AddrPortFrom(addrOf(f.Forward.DstIP), f.Forward.DstPort) == dst {
			return true
		}
	}
	return false
}
