package ebpf

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/lbkit/lbkit/internal/nsutil"
)

// scanIfaces finds lbkit's programs on every interface of the namespace:
// TCX, XDP and clsact (direct-action filter) attachments. The maps the
// programs use are added to maps.
func scanIfaces(netns string, names map[string]bool, maps map[ebpf.MapID]bool) ([]object, error) {
	var objs []object
	var xdpLinks map[xdpHook]link.ID // read on first need
	err := eachLink(netns, func(h *netlink.Handle, l netlink.Link) error {
		a := l.Attrs()
		objs = append(objs, scanTCX(netns, a.Name, a.Index, names, maps)...)
		if a.Xdp != nil && a.Xdp.ProgId != 0 {
			if xdpLinks == nil {
				xdpLinks = readXDPLinks()
			}
			if ob, ok := scanXDP(netns, l, xdpLinks, names, maps); ok {
				objs = append(objs, ob)
			}
		}
		objs = append(objs, scanFilters(netns, h, l, names, maps)...)
		return nil
	})
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // the namespace is gone, and its programs with it
	}
	if err != nil {
		return objs, fmt.Errorf("ebpf: scan interfaces: %w", err)
	}
	return objs, nil
}

// scanTCX finds lbkit's TCX programs on one interface (in the namespace
// the caller runs in). A kernel without TCX has none.
func scanTCX(netns, ifname string, index int, names map[string]bool, maps map[ebpf.MapID]bool) []object {
	var objs []object
	for _, dir := range []struct {
		name string
		at   ebpf.AttachType
	}{{"ingress", ebpf.AttachTCXIngress}, {"egress", ebpf.AttachTCXEgress}} {
		for _, p := range queryOurs(index, dir.at, names, maps) {
			id, at := p.id, dir.at
			objs = append(objs, p.object(fmt.Sprintf("ebpf: tcx %s program %s", dir.name, p.name), "on "+ifname,
				func() error { return nsutil.Do(netns, func() error { return detachProgram(id, index, at) }) }))
		}
	}
	return objs
}

// xdpHook is an XDP attachment: the interface index (of some namespace)
// and the program.
type xdpHook struct {
	ifindex uint32
	prog    ebpf.ProgramID
}

// readXDPLinks returns every XDP link of the machine by hook. Link info
// names the interface index only, not its namespace: the program id,
// unique on the machine, tells links of equal indexes apart.
func readXDPLinks() map[xdpHook]link.ID {
	out := make(map[xdpHook]link.ID)
	var it link.Iterator
	defer it.Close()
	for it.Next() {
		info, err := it.Link.Info()
		if err != nil || info.Type != link.XDPType {
			continue
		}
		if x := info.XDP(); x != nil {
			out[xdpHook{ifindex: x.Ifindex, prog: info.Program}] = info.ID
		}
	}
	return out
}

// scanXDP reports the XDP program of l when it is lbkit's.
func scanXDP(netns string, l netlink.Link, xdpLinks map[xdpHook]link.ID, names map[string]bool, maps map[ebpf.MapID]bool) (object, bool) {
	a := l.Attrs()
	id := ebpf.ProgramID(a.Xdp.ProgId)
	name, mapIDs, ok := ourProgram(id, names)
	if !ok {
		return object{}, false
	}
	addMaps(maps, mapIDs)
	ifname, index := a.Name, a.Index
	if lid, ok := xdpLinks[xdpHook{ifindex: uint32(index), prog: id}]; ok {
		return object{
			desc:   fmt.Sprintf("ebpf: xdp program %s (id %d, link %d) on %s", name, id, lid, ifname),
			remove: func() error { return detachLink(lid) },
		}, true
	}
	flags := xdpFlags(a.Xdp.AttachMode)
	return object{
		desc: fmt.Sprintf("ebpf: xdp program %s (id %d) on %s", name, id, ifname),
		remove: func() error {
			return nsutil.Do(netns, func() error {
				// The package-level call opens its socket in the
				// namespace of this thread.
				dev := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: index}}
				if err := netlink.LinkSetXdpFdWithFlags(dev, -1, flags); err != nil && !errors.Is(err, unix.ENODEV) {
					return fmt.Errorf("detach xdp: %w", err)
				}
				return nil
			})
		},
	}, true
}

// xdpFlags are the netlink flags that name an XDP attach mode.
func xdpFlags(mode uint32) int {
	switch mode {
	case nl.XDP_ATTACHED_SKB:
		return int(link.XDPGenericMode)
	case nl.XDP_ATTACHED_DRV:
		return int(link.XDPDriverMode)
	case nl.XDP_ATTACHED_HW:
		return int(link.XDPOffloadMode)
	}
	return 0
}

// scanFilters finds lbkit's direct-action filters in l's clsact qdisc:
// those running one of lbkit's programs, or carrying lbkit's priority and
// name.
func scanFilters(netns string, h *netlink.Handle, l netlink.Link, names map[string]bool, maps map[ebpf.MapID]bool) []object {
	var objs []object
	a := l.Attrs()
	for _, dir := range []struct {
		name   string
		parent uint32
	}{{"ingress", parentIngress}, {"egress", parentEgress}} {
		fs, err := h.FilterList(l, dir.parent)
		if err != nil {
			continue // no clsact qdisc
		}
		for _, f := range fs {
			bf, ok := f.(*netlink.BpfFilter)
			if !ok {
				continue
			}
			name, mapIDs, ours := ourProgram(ebpf.ProgramID(bf.Id), names)
			if !ours && (bf.Priority != legacyPriority || !strings.HasPrefix(bf.Name, "lbkit")) {
				continue
			}
			if !ours {
				name = bf.Name
			}
			addMaps(maps, mapIDs)
			attrs := bf.FilterAttrs
			objs = append(objs, object{
				desc: fmt.Sprintf("ebpf: clsact %s filter %s (id %d) on %s", dir.name, name, bf.Id, a.Name),
				remove: func() error {
					return nsutil.Do(netns, func() error {
						h, err := netlink.NewHandle()
						if err != nil {
							return fmt.Errorf("netlink: %w", err)
						}
						defer h.Close()
						del := &netlink.BpfFilter{FilterAttrs: attrs}
						if err := h.FilterDel(del); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENODEV) {
							return fmt.Errorf("delete filter: %w", err)
						}
						return nil
					})
				},
			})
		}
	}
	return objs
}

// addMaps records map ids.
func addMaps(maps map[ebpf.MapID]bool, ids []ebpf.MapID) {
	for _, id := range ids {
		maps[id] = true
	}
}
