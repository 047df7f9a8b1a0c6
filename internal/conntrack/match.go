package conntrack

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// matcher is a Filter checked and indexed for matching flows; it implements
// netlink.CustomConntrackFilter.
type matcher struct {
	backends  map[netip.AddrPort]struct{}
	frontends map[netip.AddrPort]struct{}
	// anyAddr4/anyAddr6: ports of frontends with an unspecified address.
	anyAddr4, anyAddr6 map[uint16]struct{}
	// flows: backend -> frontends whose flows to it match.
	flows map[netip.AddrPort][]netip.AddrPort
	// serving: frontend -> the backends its flows may go to; unspecified
	// frontend addresses are keyed by the family's unspecified address.
	serving map[netip.AddrPort]map[netip.AddrPort]struct{}
	v4, v6  bool
}

// newMatcher checks f: every address must be a valid, port-carrying
// address.
func newMatcher(f Filter) (*matcher, error) {
	m := &matcher{
		backends:  make(map[netip.AddrPort]struct{}, len(f.Backends)),
		frontends: make(map[netip.AddrPort]struct{}, len(f.Frontends)),
		anyAddr4:  map[uint16]struct{}{},
		anyAddr6:  map[uint16]struct{}{},
		flows:     make(map[netip.AddrPort][]netip.AddrPort, len(f.Flows)),
		serving:   make(map[netip.AddrPort]map[netip.AddrPort]struct{}, len(f.Serving)),
	}
	for i, b := range f.Backends {
		ap, err := checkAddrPort(b)
		if err != nil {
			return nil, fmt.Errorf("conntrack: backends[%d] %v: %w", i, b, err)
		}
		if ap.Addr().IsUnspecified() {
			return nil, fmt.Errorf("conntrack: backends[%d] %v: unspecified address", i, b)
		}
		m.backends[ap] = struct{}{}
		m.note(ap.Addr())
	}
	for i, fe := range f.Frontends {
		ap, err := checkAddrPort(fe)
		if err != nil {
			return nil, fmt.Errorf("conntrack: frontends[%d] %v: %w", i, fe, err)
		}
		switch {
		case ap.Addr() == netip.IPv4Unspecified():
			m.anyAddr4[ap.Port()] = struct{}{}
		case ap.Addr() == netip.IPv6Unspecified():
			m.anyAddr6[ap.Port()] = struct{}{}
		default:
			m.frontends[ap] = struct{}{}
		}
		m.note(ap.Addr())
	}
	for i, fl := range f.Flows {
		fe, err := checkAddrPort(fl.Frontend)
		if err != nil {
			return nil, fmt.Errorf("conntrack: flows[%d].frontend %v: %w", i, fl.Frontend, err)
		}
		be, err := checkAddrPort(fl.Backend)
		if err != nil {
			return nil, fmt.Errorf("conntrack: flows[%d].backend %v: %w", i, fl.Backend, err)
		}
		if be.Addr().IsUnspecified() {
			return nil, fmt.Errorf("conntrack: flows[%d].backend %v: unspecified address", i, fl.Backend)
		}
		if fe.Addr().Is4() != be.Addr().Is4() {
			return nil, fmt.Errorf("conntrack: flows[%d]: frontend %v and backend %v are of different families", i, fe, be)
		}
		m.flows[be] = append(m.flows[be], fe)
		m.note(be.Addr())
	}
	for i, sv := range f.Serving {
		fe, err := checkAddrPort(sv.Frontend)
		if err != nil {
			return nil, fmt.Errorf("conntrack: serving[%d].frontend %v: %w", i, sv.Frontend, err)
		}
		bes := m.serving[fe]
		if bes == nil {
			bes = make(map[netip.AddrPort]struct{}, len(sv.Backends))
			m.serving[fe] = bes
		}
		for j, b := range sv.Backends {
			be, err := checkAddrPort(b)
			if err != nil {
				return nil, fmt.Errorf("conntrack: serving[%d].backends[%d] %v: %w", i, j, b, err)
			}
			bes[be] = struct{}{}
		}
		m.note(fe.Addr())
	}
	return m, nil
}

// checkAddrPort unmaps ap and rejects what no conntrack entry can hold.
func checkAddrPort(ap netip.AddrPort) (netip.AddrPort, error) {
	if !ap.Addr().IsValid() {
		return ap, fmt.Errorf("not an IP address")
	}
	if ap.Port() == 0 {
		return ap, fmt.Errorf("port 0")
	}
	return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port()), nil
}

func (m *matcher) note(a netip.Addr) {
	if a.Is4() {
		m.v4 = true
	} else {
		m.v6 = true
	}
}

func (m *matcher) empty() bool { return !m.v4 && !m.v6 }

// families returns the address families the filter needs dumped.
func (m *matcher) families() []netlink.InetFamily {
	var out []netlink.InetFamily
	if m.v4 {
		out = append(out, unix.AF_INET)
	}
	if m.v6 {
		out = append(out, unix.AF_INET6)
	}
	return out
}

// MatchConntrackFlow reports whether flow is a UDP flow the filter selects.
func (m *matcher) MatchConntrackFlow(flow *netlink.ConntrackFlow) bool {
	if flow.Forward.Protocol != unix.IPPROTO_UDP {
		return false
	}
	origDst := netip.AddrPortFrom(addrOf(flow.Forward.DstIP), flow.Forward.DstPort)
	replySrc := netip.AddrPortFrom(addrOf(flow.Reverse.SrcIP), flow.Reverse.SrcPort)
	if _, ok := m.backends[replySrc]; ok && replySrc != origDst {
		return true
	}
	if _, ok := m.frontends[origDst]; ok {
		return true
	}
	anyAddr := m.anyAddr4
	if origDst.Addr().Is6() {
		anyAddr = m.anyAddr6
	}
	if _, ok := anyAddr[origDst.Port()]; ok {
		return true
	}
	if m.staleForFrontend(origDst, replySrc) {
		return true
	}
	if replySrc == origDst {
		return false // not DNATed
	}
	for _, fe := range m.flows[replySrc] {
		if fe == origDst || (fe.Addr().IsUnspecified() && fe.Port() == origDst.Port()) {
			return true
		}
	}
	return false
}

// staleForFrontend reports whether a flow to origDst answered by replySrc
// is not one the frontend's backends serve (Filter.Serving).
func (m *matcher) staleForFrontend(origDst, replySrc netip.AddrPort) bool {
	bes, ok := m.serving[origDst]
	if !ok {
		unspec := netip.IPv4Unspecified()
		if origDst.Addr().Is6() {
			unspec = netip.IPv6Unspecified()
		}
		if bes, ok = m.serving[netip.AddrPortFrom(unspec, origDst.Port())]; !ok {
			return false
		}
	}
	_, serving := bes[replySrc]
	return !serving
}
