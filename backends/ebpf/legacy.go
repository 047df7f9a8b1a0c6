package ebpf

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/lbkit/lbkit/internal/nsutil"
)

// clsact parents of direct-action filters.
const (
	parentIngress = uint32(netlink.HANDLE_MIN_INGRESS)
	parentEgress  = uint32(netlink.HANDLE_MIN_EGRESS)
)

// legacyPriority is the priority of lbkit's filters in the clsact qdisc.
const legacyPriority = 0xc1b

// legacyFilter is a direct-action BPF filter on a clsact qdisc, for kernels
// without TCX.
type legacyFilter struct {
	ifindex int
	parent  uint32
	// qdisc is set when lbkit created the clsact qdisc and so removes it
	// with its last filter.
	qdisc bool
}

// addLegacyFilter adds a clsact qdisc to ifindex if it has none and
// installs prog as a direct-action filter under parent.
func addLegacyFilter(netns string, ifindex int, parent uint32, prog *ebpf.Program) (*legacyFilter, error) {
	f := &legacyFilter{ifindex: ifindex, parent: parent}
	err := nsutil.Do(netns, func() error {
		h, err := netlink.NewHandle()
		if err != nil {
			return fmt.Errorf("netlink: %w", err)
		}
		defer h.Close()
		q := &netlink.GenericQdisc{
			QdiscAttrs: netlink.QdiscAttrs{LinkIndex: ifindex, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
			QdiscType:  "clsact",
		}
		if err := h.QdiscAdd(q); err == nil {
			f.qdisc = true
		} else if !errors.Is(err, os.ErrExist) && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("add clsact qdisc: %w", err)
		}
		filter := &netlink.BpfFilter{
			FilterAttrs: netlink.FilterAttrs{
				LinkIndex: ifindex, Parent: parent, Handle: 1, Protocol: unix.ETH_P_ALL, Priority: legacyPriority,
			},
			Fd: prog.FD(), Name: "lbkit", DirectAction: true,
		}
		if err := h.FilterReplace(filter); err != nil {
			return fmt.Errorf("add bpf filter: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// remove deletes the filter and, when lbkit created it and the other
// direction's filter is gone too, the clsact qdisc.
func (f *legacyFilter) remove(netns string) error {
	return nsutil.Do(netns, func() error {
		h, err := netlink.NewHandle()
		if err != nil {
			return fmt.Errorf("netlink: %w", err)
		}
		defer h.Close()
		filter := &netlink.BpfFilter{FilterAttrs: netlink.FilterAttrs{
			LinkIndex: f.ifindex, Parent: f.parent, Handle: 1, Protocol: unix.ETH_P_ALL, Priority: legacyPriority,
		}}
		if err := h.FilterDel(filter); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENODEV) {
			return fmt.Errorf("delete bpf filter: %w", err)
		}
		if !f.qdisc {
			return nil
		}
		for _, parent := range []uint32{parentIngress, parentEgress} {
			fs, err := h.FilterList(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: f.ifindex}}, parent)
			if err != nil || len(fs) > 0 {
				return nil // still in use, or the link is gone
			}
		}
		q := &netlink.GenericQdisc{
			QdiscAttrs: netlink.QdiscAttrs{LinkIndex: f.ifindex, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
			QdiscType:  "clsact",
		}
		if err := h.QdiscDel(q); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("delete clsact qdisc: %w", err)
		}
		return nil
	})
}

// eachLink calls fn for every interface of the namespace netns, with a
// netlink handle in it, and stops at fn's first error.
func eachLink(netns string, fn func(h *netlink.Handle, l netlink.Link) error) error {
	return nsutil.Do(netns, func() error {
		h, err := netlink.NewHandle()
		if err != nil {
			return fmt.Errorf("netlink: %w", err)
		}
		defer h.Close()
		links, err := h.LinkList()
		if err != nil {
			return fmt.Errorf("list interfaces: %w", err)
		}
		for _, l := range links {
			if err := fn(h, l); err != nil {
				return err
			}
		}
		return nil
	})
}

// removeStaleFilters deletes lbkit's clsact filters from every interface
// of the namespace: filters outlive the process that added them, so a
// Cleanup must find those a previous process left.
func removeStaleFilters(netns string) error {
	err := eachLink(netns, func(h *netlink.Handle, l netlink.Link) error {
		for _, parent := range []uint32{parentIngress, parentEgress} {
			fs, err := h.FilterList(l, parent)
			if err != nil {
				continue // no clsact qdisc
			}
			for _, f := range fs {
				bf, ok := f.(*netlink.BpfFilter)
				if !ok || bf.Priority != legacyPriority || !strings.HasPrefix(bf.Name, "lbkit") {
					continue
				}
				if err := h.FilterDel(bf); err != nil && !errors.Is(err, unix.ENOENT) {
					return fmt.Errorf("delete filter on %s: %w", l.Attrs().Name, err)
				}
			}
		}
		return nil
	})
	if errors.Is(err, os.ErrNotExist) {
		return nil // the namespace is gone, and its filters with it
	}
	if err != nil {
		return fmt.Errorf("ebpf: remove clsact filters: %w", err)
	}
	return nil
}
