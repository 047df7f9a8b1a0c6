package ebpf

import (
	"fmt"
	"slices"
	"strings"
)

// InterfaceStatus is what the datapath attached to one interface.
type InterfaceStatus struct {
	// Name and Index identify the interface in the namespace.
	Name  string
	Index int
	// Programs describe the attachments, e.g. "tc ingress on eth0 (tcx)".
	Programs []string
	// Err is the last failure to attach there ("" when none): the
	// interface is selected but lacks some of its programs.
	Err string
}

// AttachStatus says where the TC and XDP programs are attached.
type AttachStatus struct {
	// Interfaces are the selected interfaces, by index.
	Interfaces []InterfaceStatus
	// Errors counts failures to attach to an interface after the first
	// Sync (interfaces that appeared later, or reconciled by a full Sync);
	// they are logged and retried at the interface's next event and at the
	// next full Sync.
	Errors uint64
	// WatchErrors counts link-event subscriptions that failed or overran
	// (after each, the interfaces are listed again and reconciled).
	WatchErrors uint64
	// Watching reports whether interface events are being followed (from
	// the first Sync until Cleanup, in the tc and xdp modes).
	Watching bool
}

// Interface returns the status of the interface named name.
func (s AttachStatus) Interface(name string) (InterfaceStatus, bool) {
	i := slices.IndexFunc(s.Interfaces, func(is InterfaceStatus) bool { return is.Name == name })
	if i < 0 {
		return InterfaceStatus{}, false
	}
	return s.Interfaces[i], true
}

// AttachStatus returns where the programs are attached now.
func (d *Datapath) AttachStatus() AttachStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.attachStatus()
}

// attachStatus is AttachStatus with d.mu held.
func (d *Datapath) attachStatus() AttachStatus {
	s := AttachStatus{Errors: d.attachErrors, WatchErrors: d.watchErrors, Watching: d.watch != nil}
	list := d.ifaceList()
	slices.Reverse(list)
	for _, st := range list {
		is := InterfaceStatus{Name: st.name, Index: st.index, Programs: st.programs()}
		if st.err != nil {
			is.Err = st.err.Error()
		}
		s.Interfaces = append(s.Interfaces, is)
	}
	return s
}

// summary is a one-line description of s for Inspect.
func (s AttachStatus) summary() string {
	const most = 16 // interfaces named; the rest are counted
	var names []string
	for i, is := range s.Interfaces {
		if i == most {
			names = append(names, fmt.Sprintf("and %d more", len(s.Interfaces)-most))
			break
		}
		n := fmt.Sprintf("%s (%d programs)", is.Name, len(is.Programs))
		if is.Err != "" {
			n += " (attach failed: " + is.Err + ")"
		}
		names = append(names, n)
	}
	return fmt.Sprintf("attached to %d interfaces: %s; %d attach errors, %d lost event streams since loaded",
		len(s.Interfaces), strings.Join(names, ", "), s.Errors, s.WatchErrors)
}
