package ipvs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"

	"github.com/moby/ipvs"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/lbkit/lbkit/lb"
)

// mobyService builds the service attribute the way moby/ipvs's fillService
// does (with the nl package's attribute builder), to compare bytes with.
func mobyService(s *ipvs.Service) []byte {
	a := nl.NewRtAttr(attrCmdService, nil)
	a.AddRtAttr(attrSvcAF, nl.Uint16Attr(s.AddressFamily))
	a.AddRtAttr(attrSvcProtocol, nl.Uint16Attr(s.Protocol))
	ip := s.Address
	if ip4 := ip.To4(); ip4 != nil {
		ip = ip4
	}
	a.AddRtAttr(attrSvcAddr, ip)
	a.AddRtAttr(attrSvcPort, binary.BigEndian.AppendUint16(nil, s.Port))
	a.AddRtAttr(attrSvcSchedName, nl.ZeroTerminated(s.SchedName))
	a.AddRtAttr(attrSvcFlags, binary.NativeEndian.AppendUint32(binary.NativeEndian.AppendUint32(nil, s.Flags), 0xffffffff))
	a.AddRtAttr(attrSvcTimeout, nl.Uint32Attr(s.Timeout))
	a.AddRtAttr(attrSvcNetmask, nl.Uint32Attr(s.Netmask))
	return a.Serialize()
}

// mobyDest builds the real server attribute like moby/ipvs's fillDestination.
func mobyDest(d *ipvs.Destination) []byte {
	a := nl.NewRtAttr(attrCmdDest, nil)
	ip := d.Address
	if ip4 := ip.To4(); ip4 != nil {
		ip = ip4
	}
	a.AddRtAttr(attrDestAddr, ip)
	a.AddRtAttr(attrDestPort, binary.BigEndian.AppendUint16(nil, d.Port))
	a.AddRtAttr(attrDestFwdMethod, nl.Uint32Attr(uint32(d.ConnectionFlags&ipvs.ConnectionFlagFwdMask)))
	a.AddRtAttr(attrDestWeight, nl.Uint32Attr(uint32(d.Weight)))
	a.AddRtAttr(attrDestUpperThres, nl.Uint32Attr(d.UpperThreshold))
	a.AddRtAttr(attrDestLowerThres, nl.Uint32Attr(d.LowerThreshold))
	return a.Serialize()
}

// TestIPVSMessagesMatchMoby: the batched writer's messages carry exactly
// the attributes moby/ipvs sends for the same request, for IPv4 and IPv6,
// with and without persistence.
func TestIPVSMessagesMatchMoby(t *testing.T) {
	g := &ipvsGenl{family: 0x1234}
	for _, v := range []*virtualServer{
		{key: vsKey{Addr: netip.MustParseAddr("198.19.0.1"), Port: 80, Protocol: lb.TCP}, sched: "rr"},
		{key: vsKey{Addr: netip.MustParseAddr("2001:2::5"), Port: 5353, Protocol: lb.UDP}, sched: "mh", flags: flagSched1 | flagSched2 | flagPersistent, timeout: 10800},
		{key: vsKey{Addr: netip.MustParseAddr("198.19.1.2"), Port: 9, Protocol: lb.SCTP}, sched: "sh", flags: flagSched1},
	} {
		dest := netip.AddrPortFrom(netip.MustParseAddr("198.18.0.7"), 8080)
		if v.key.Addr.Is6() {
			dest = netip.MustParseAddrPort("[2001:2::9]:8443")
		}
		var b batch
		g.service(&b, cmdNewService, specOf(v))
		g.dest(&b, cmdSetDest, specOf(v), dest, 3)
		g.service(&b, cmdDelService, svcSpec{key: v.key})
		if b.len() != 3 {
			t.Fatalf("%s: batch holds %d messages, want 3", v.key, b.len())
		}
		wantSvc := mobyService(toService(v))
		wantDest := mobyDest(toDest(dest, 3))
		for i, want := range []struct {
			cmd   uint8
			flags uint16
			body  []byte
		}{
			{cmdNewService, unix.NLM_F_CREATE | unix.NLM_F_EXCL, wantSvc},
			{cmdSetDest, 0, append(append([]byte(nil), wantSvc...), wantDest...)},
			{cmdDelService, 0, mobyService(svcID(v.key))},
		} {
			m := b.msg(i)
			if got := binary.NativeEndian.Uint32(m); int(got) != len(m) {
				t.Errorf("%s message %d: length field %d, message is %d bytes", v.key, i, got, len(m))
			}
			if typ := binary.NativeEndian.Uint16(m[4:]); typ != 0x1234 {
				t.Errorf("%s message %d: type %#x, want the IPVS family 0x1234", v.key, i, typ)
			}
			wantFlags := want.flags | unix.NLM_F_REQUEST | unix.NLM_F_ACK
			if f := binary.NativeEndian.Uint16(m[6:]); f != wantFlags {
				t.Errorf("%s message %d: flags %#x, want %#x", v.key, i, f, wantFlags)
			}
			if m[16] != want.cmd || m[17] != ipvsGenlVersion {
				t.Errorf("%s message %d: genl command %d version %d, want %d version %d", v.key, i, m[16], m[17], want.cmd, ipvsGenlVersion)
			}
			if body := m[unix.SizeofNlMsghdr+genlHdrLen:]; !bytes.Equal(body, want.body) {
				t.Errorf("%s message %d: attributes\n% x\nwant (moby/ipvs)\n% x", v.key, i, body, want.body)
			}
		}
	}
}

// TestRouteMessage decodes the route request the batch writer encodes.
func TestRouteMessage(t *testing.T) {
	l := &links{}
	l.dev = &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Index: 42}}
	var b batch
	l.routeMsg(&b, true, netip.MustParseAddr("198.19.3.4"))
	l.routeMsg(&b, false, netip.MustParseAddr("2001:2::1"))
	msgs, err := syscall.ParseNetlinkMessage(b.buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 {
		t.Fatalf("parsed %d messages, want 2", len(msgs))
	}
	for i, want := range []struct {
		typ   uint16
		flags uint16
		fam   uint8
		dst   net.IP
	}{
		{unix.RTM_NEWROUTE, unix.NLM_F_CREATE | unix.NLM_F_EXCL, unix.AF_INET, net.ParseIP("198.19.3.4").To4()},
		{unix.RTM_DELROUTE, 0, unix.AF_INET6, net.ParseIP("2001:2::1")},
	} {
		m := msgs[i]
		if m.Header.Type != want.typ || m.Header.Flags != want.flags|unix.NLM_F_REQUEST|unix.NLM_F_ACK {
			t.Errorf("message %d: type %d flags %#x, want %d %#x", i, m.Header.Type, m.Header.Flags, want.typ, want.flags|unix.NLM_F_REQUEST|unix.NLM_F_ACK)
		}
		if len(m.Data) < unix.SizeofRtMsg {
			t.Fatalf("message %d: %d bytes, shorter than rtmsg", i, len(m.Data))
		}
		rt := &unix.RtMsg{Family: m.Data[0], Dst_len: m.Data[1], Table: m.Data[4], Protocol: m.Data[5], Scope: m.Data[6], Type: m.Data[7]}
		if rt.Family != want.fam || int(rt.Dst_len) != len(want.dst)*8 || rt.Table != unix.RT_TABLE_LOCAL ||
			rt.Protocol != rtProto || rt.Scope != unix.RT_SCOPE_HOST || rt.Type != unix.RTN_LOCAL {
			t.Errorf("message %d: rtmsg %+v", i, *rt)
		}
		as, err := nl.ParseRouteAttrAsMap(m.Data[unix.SizeofRtMsg:])
		if err != nil {
			t.Fatal(err)
		}
		if got := net.IP(as[unix.RTA_DST].Value); !got.Equal(want.dst) {
			t.Errorf("message %d: RTA_DST %v, want %v", i, got, want.dst)
		}
		if got := binary.NativeEndian.Uint32(as[unix.RTA_OIF].Value); got != 42 {
			t.Errorf("message %d: RTA_OIF %d, want 42", i, got)
		}
	}
}

// linkRequest queues an RTM_GETLINK for ifindex (read-only: safe on any
// host, allowed unprivileged).
func linkRequest(b *batch, ifindex int32) {
	b.begin(unix.RTM_GETLINK, 0)
	var ifi [unix.SizeofIfInfomsg]byte
	binary.NativeEndian.PutUint32(ifi[4:], uint32(ifindex))
	b.buf = append(b.buf, ifi[:]...)
	b.end()
}

// TestBatchSockErrorsPerMessage sends a batch of read-only requests on a
// real rtnetlink socket (in the current namespace; nothing is changed) in
// which some fail, split over many sendmsg calls, and checks that every
// error lands on the request that caused it.
func TestBatchSockErrorsPerMessage(t *testing.T) {
	sends := 0
	s, err := openBatchSock("", unix.NETLINK_ROUTE, func() { sends++ })
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	s.maxMsgs = 7 // force many chunks
	var b batch
	const n = 50
	for i := range n {
		if i%5 == 3 {
			linkRequest(&b, 1<<30+int32(i)) // no such link
		} else {
			linkRequest(&b, 1) // lo
		}
	}
	errs := s.send(&b)
	if len(errs) != n {
		t.Fatalf("%d errors for %d messages", len(errs), n)
	}
	for i, err := range errs {
		if i%5 == 3 {
			if !errors.Is(err, unix.ENODEV) {
				t.Errorf("message %d (missing link): error %v, want ENODEV", i, err)
			}
		} else if err != nil {
			t.Errorf("message %d (lo): error %v, want none", i, err)
		}
	}
	if want := (n + 6) / 7; sends != want {
		t.Errorf("%d sendmsg calls, want %d (chunks of 7)", sends, want)
	}
	// The socket stays usable: a second batch, with byte-bounded chunks.
	s.maxMsgs, s.maxBytes = 1000, 3*len(b.msg(0))
	b.reset()
	linkRequest(&b, 1)
	linkRequest(&b, -5)
	linkRequest(&b, 1)
	linkRequest(&b, 1)
	errs = s.send(&b)
	if errs[0] != nil || errs[1] == nil || errs[2] != nil || errs[3] != nil {
		t.Errorf("second batch: errors %v, want only message 1 to fail", errs)
	}
}

// TestGenlFamily resolves the generic netlink controller's own family and
// fails clearly for a family that does not exist.
func TestGenlFamily(t *testing.T) {
	s, err := openBatchSock("", unix.NETLINK_GENERIC, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	id, err := genlFamily(s, "nlctrl")
	if err != nil || id != unix.GENL_ID_CTRL {
		t.Errorf("family nlctrl: id %#x, %v; want %#x", id, err, unix.GENL_ID_CTRL)
	}
	if _, err := genlFamily(s, "lbkit-nofam"); !errors.Is(err, unix.ENOENT) {
		t.Errorf("missing family: error %v, want ENOENT", err)
	}
}
