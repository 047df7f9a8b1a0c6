// Package ebpf is lbkit's eBPF datapath. It loads the programs of bpf/
// (with github.com/cilium/ebpf), attaches them to a network namespace's
// interfaces (TC, optionally XDP) or to a cgroup (socket-LB), and keeps
// their maps equal to the desired state: batch operations for full syncs,
// and per-entry updates of only the changed services otherwise, ordered so
// that a live service never points at a missing or stale backend.
//
// It implements lb.Datapath, lb.Inspector and (with Options.PinPath)
// lb.Adopter. README.md draws the map layout and says why it is so.
package ebpf

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/lbkit/lbkit/lb"
)

// name is the datapath's Name.
const name = "ebpf"

// Datapath is the eBPF datapath. Create it with New; it is safe for
// concurrent use.
type Datapath struct {
	opts Options
	log  *slog.Logger

	mu sync.Mutex
	// objs is nil before the first Sync and after Cleanup.
	objs *objects
	// attached are the socket-LB attachments; ifaces the TC and XDP
	// ones, by interface index.
	attached []*attachment
	ifaces   map[int]*ifaceState
	// attachErrors counts failures to attach to interfaces after the
	// first Sync; watchErrors failed or overrun link subscriptions.
	attachErrors uint64
	watchErrors  uint64
	// watch follows the namespace's interfaces while programs are
	// loaded; retired are stopped watchers Cleanup waits for.
	watch   *watcher
	retired []*watcher
	// watchBuf and watchRcvBuf override the watcher's buffer sizes
	// (tests).
	watchBuf, watchRcvBuf int

	// The bookkeeping: what the maps hold, changed only once the kernel
	// accepted a plan (commit), and re-read from the maps after a plan
	// failed halfway (recoverMaps).
	ids       allocators
	mem       arena
	frontends map[lb.FrontendID]*feState
	services  lb.Applied[*svcState]
	// reread is set when a failed plan left the maps in a state the
	// bookkeeping does not describe and reading them back failed too: the
	// next Sync reads them back first. forceFull makes the next Sync full
	// after the bookkeeping was read back.
	reread, forceFull bool
	// nodeAddrs are the addresses programmed in lb_nodeaddrs.
	nodeAddrs map[nodeAddr]bool

	// applyFault, when set (tests only), runs after each step of apply
	// has written its entries; an error it returns fails the step, as if
	// the kernel had refused part of the plan.
	applyFault func(step string) error
}

var (
	_ lb.Datapath  = (*Datapath)(nil)
	_ lb.Inspector = (*Datapath)(nil)
)

// New checks opts and returns a datapath with nothing loaded yet: the
// programs are loaded and attached by the first Sync. It fails at once when
// Options.PinPath is not on a bpffs or Options.CgroupPath is not a cgroup
// v2 directory, rather than at every Sync.
func New(opts Options) (*Datapath, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if o.PinPath != "" {
		if err := CheckPinPath(o.PinPath); err != nil {
			return nil, fmt.Errorf("ebpf: Options.PinPath: %w", err)
		}
	}
	if o.CgroupPath != "" && (o.Attach == AttachSocket || o.SocketLB) {
		if err := checkCgroup(o.CgroupPath); err != nil {
			return nil, fmt.Errorf("ebpf: Options.CgroupPath: %w", err)
		}
	}
	d := &Datapath{opts: o, log: o.Logger}
	d.reset()
	return d, nil
}

// reset forgets all state.
func (d *Datapath) reset() {
	d.objs = nil
	d.attached = nil
	d.ifaces = make(map[int]*ifaceState)
	d.attachErrors, d.watchErrors = 0, 0
	d.resetShadow()
	d.nodeAddrs = make(map[nodeAddr]bool)
}

// resetShadow forgets what the maps hold.
func (d *Datapath) resetShadow() {
	d.ids = allocators{
		fe: newIDAlloc("frontend", uint32(d.opts.MaxServiceEntries)),
		be: newIDAlloc("backend", uint32(d.opts.MaxBackends)),
	}
	d.frontends = make(map[lb.FrontendID]*feState)
	d.services.Reset(0)
	d.mem = arena{}
	d.reread, d.forceFull = false, false
}

// Name returns "ebpf".
func (d *Datapath) Name() string { return name }

// Capabilities: random (weighted) and maglev, ClientIP affinity, TCP and
// UDP over IPv4 and IPv6, every frontend kind. Endpoint selection (Local
// policies) is the engine's.
func (d *Datapath) Capabilities() lb.Capabilities {
	return lb.Capabilities{
		Schedulers:    []lb.Scheduler{lb.Random, lb.Maglev},
		Protocols:     []lb.Protocol{lb.TCP, lb.UDP},
		FrontendKinds: []lb.FrontendKind{lb.ClusterIP, lb.NodePort, lb.ExternalIP, lb.LoadBalancer},
		Affinity:      true,
		Weights:       true,
		IPv6:          true,
		LocalPolicy:   true,
	}
}

// Sync programs the services changed names, or all of s when changed.Full.
// The first Sync loads and attaches the programs. Services that cannot be
// programmed are returned as an lb.ServiceErrors; a failure of the maps
// themselves is returned as is. Map writes are not atomic, so after such a
// failure the bookkeeping is read back from the maps and the next Sync is
// full, whatever changed says (the engine's is full anyway).
func (d *Datapath) Sync(ctx context.Context, s *lb.Snapshot, changed lb.ChangeSet) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ebpf: sync: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	full := changed.Full
	if d.objs == nil {
		if err := d.start(); err != nil {
			return err
		}
		full = true
	} else if full && d.opts.Attach != AttachSocket {
		// Cheap (one link dump) and a safety net for lost events;
		// failures are logged and counted, not the sync's.
		_ = d.reconcileLinks(false)
	}
	if d.reread {
		if err := d.recoverMaps(); err != nil {
			return err
		}
	}
	full = full || d.forceFull
	todo := d.services.Work(s, lb.ChangeSet{Full: full, Changed: changed.Changed})
	p, errs := d.planSync(todo, full, s.Backends())
	if err := d.apply(p); err != nil {
		return errors.Join(err, d.recoverMaps())
	}
	d.commit(p)
	if full {
		d.forceFull = false
	}
	if full || d.touchesNodePorts(todo) {
		if err := d.syncNodeAddrs(); err != nil {
			return err
		}
	}
	d.logSync(full, len(todo), p)
	if len(errs) > 0 {
		for k, err := range errs {
			d.log.Warn("service not programmed", "service", string(k), "error", err)
		}
		return errs
	}
	return nil
}

// start loads the programs, writes the global settings, attaches, and
// starts following the interfaces.
func (d *Datapath) start() error {
	objs, err := load(d.opts)
	if err != nil {
		return err
	}
	d.reset()
	d.objs = objs
	err = d.writeSettings()
	if err == nil {
		err = d.attachAll()
	}
	if err != nil {
		return errors.Join(err, d.stop())
	}
	d.startWatch()
	return nil
}

// stop retires the link watcher, detaches every program, closes the maps
// (which the kernel then frees) and removes every pin.
func (d *Datapath) stop() error {
	d.retireWatch()
	err := d.detachAll()
	if d.objs != nil {
		if cerr := d.objs.close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("ebpf: close maps and programs: %w", cerr))
		}
	}
	d.reset()
	return errors.Join(err, removeStaleFilters(d.opts.Netns), d.removePins())
}

// Cleanup detaches every program and releases every map, pinned ones too,
// also those a previous process left under Options.PinPath. It is safe to
// call more than once; a later Sync starts from scratch. The interface
// watcher has ended when it returns.
func (d *Datapath) Cleanup(ctx context.Context) error {
	d.mu.Lock()
	err := d.stop()
	ws := d.takeRetired()
	d.mu.Unlock()
	waitWatchers(ws)
	return err
}

// release closes this process's handles without detaching or unpinning
// anything, as an exit does: with Options.PinPath the datapath keeps
// working and the next process adopts it.
func (d *Datapath) release() {
	d.mu.Lock()
	d.retireWatch()
	for _, a := range d.attached {
		if a.link != nil {
			_ = a.link.Close()
		}
	}
	for _, st := range d.ifaces {
		for _, a := range append(slices.Clone(st.tc), st.xdp) {
			if a != nil && a.link != nil {
				_ = a.link.Close()
			}
		}
	}
	_ = d.objs.close()
	d.reset()
	ws := d.takeRetired()
	d.mu.Unlock()
	waitWatchers(ws)
}

// Close releases this process's handles and keeps the kernel state, as
// an exit does: with Options.PinPath the programs stay attached and the
// maps pinned, traffic keeps flowing and the next process adopts them;
// without a pin path the kernel frees what nothing holds any more. The
// interface watcher has ended when it returns.
func (d *Datapath) Close() error {
	d.release()
	return nil
}
