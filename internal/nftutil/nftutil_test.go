package nftutil

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/lbkit/lbkit/lb"
)

func TestFrontendKey(t *testing.T) {
	for _, tc := range []struct {
		addr  string
		proto lb.Protocol
		port  uint16
		want  []byte
	}{
		{"198.18.100.1", lb.UDP, 0x1f90, []byte{198, 18, 100, 1, 17, 0, 0, 0, 0x1f, 0x90, 0, 0}},
		{"::ffff:198.18.100.1", lb.TCP, 80, []byte{198, 18, 100, 1, 6, 0, 0, 0, 0, 80, 0, 0}}, // mapped = IPv4
		{"2001:2::1", lb.SCTP, 80, append(netip.MustParseAddr("2001:2::1").AsSlice(), 132, 0, 0, 0, 0, 80, 0, 0)},
	} {
		if got := FrontendKey(netip.MustParseAddr(tc.addr), tc.proto, tc.port); !bytes.Equal(got, tc.want) {
			t.Errorf("FrontendKey(%s, %s, %d) = %v, want %v", tc.addr, tc.proto, tc.port, got, tc.want)
		}
	}
}

func TestLoadAddr(t *testing.T) {
	for _, tc := range []struct {
		v6, src  bool
		off, len uint32
	}{
		{false, true, 12, 4}, {false, false, 16, 4}, {true, true, 8, 16}, {true, false, 24, 16},
	} {
		p := LoadAddr(tc.v6, tc.src, Reg(2)).(*expr.Payload)
		if p.Offset != tc.off || p.Len != tc.len || p.DestRegister != unix.NFT_REG32_02 || p.Base != expr.PayloadBaseNetworkHeader {
			t.Errorf("LoadAddr(v6=%v, src=%v) = %+v, want offset %d len %d into register 32.02", tc.v6, tc.src, p, tc.off, tc.len)
		}
	}
	if Words(true) != 4 || Words(false) != 1 {
		t.Errorf("Words = %d, %d; want 4 for IPv6, 1 for IPv4", Words(true), Words(false))
	}
}

// TestWriteElementsChunks: many elements go out in several messages, each
// within MaxElemsBytes, and none is lost.
func TestWriteElementsChunks(t *testing.T) {
	var msgs []netlink.Message
	c, err := nftables.New(nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
		msgs = append(msgs, req...)
		return req, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	s := &nftables.Set{Table: &nftables.Table{Name: "t", Family: nftables.TableFamilyIPv4}, Name: "s", KeyType: nftables.TypeIPAddr}
	elems := make([]nftables.SetElement, 5000)
	for i := range elems {
		elems[i] = nftables.SetElement{Key: []byte{198, 18, byte(i >> 8), byte(i)}}
	}
	n, err := WriteElements(c, s, elems, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(elems) * ElemSize(elems[0]); n != want {
		t.Errorf("WriteElements reports %d bytes, want %d", n, want)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	sets := 0
	for _, m := range msgs {
		if m.Header.Type == netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_NEWSETELEM) {
			sets++
			if len(m.Data) > 0xffff {
				t.Errorf("a set element message of %d bytes: over the 16-bit attribute length", len(m.Data))
			}
		}
	}
	if least := (len(elems)*ElemSize(elems[0]) + MaxElemsBytes - 1) / MaxElemsBytes; sets < least || sets < 2 {
		t.Errorf("%d set element messages for %d elements, want at least %d", sets, len(elems), least)
	}
}
