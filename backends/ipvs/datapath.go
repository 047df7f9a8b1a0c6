package ipvs

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/moby/ipvs"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/lbkit/lbkit/lb"
)

// name is the datapath's Name.
const name = "ipvs"

// Datapath programs IPVS. Create it with New; Sync and Cleanup are called
// by one goroutine at a time (the lb.Engine), Inspect and Stats may be
// called concurrently.
type Datapath struct {
	o   Options
	log *slog.Logger
	c   counters
	now func() time.Time

	mu    sync.Mutex
	ipvs  *ipvsConn // nil until opened
	links *links
	nat   *nat
	// ready: the device, sysctls and timeouts are set up.
	ready bool
	// kvs is the kernel's view of the virtual servers we own, as far as
	// we know it; dirty ones are read back before use.
	kvs   map[vsKey]*virtualServer
	dirty map[vsKey]bool
	// want is the desired state of every service as last synced; svcVS
	// the virtual servers of each service; bindRefs the number of wanted
	// virtual servers on each dummy-device address; bound the addresses
	// on the device.
	want     map[vsKey]*virtualServer
	svcVS    map[lb.ServiceKey][]vsKey
	bindRefs map[netip.Addr]int
	bound    map[netip.Addr]bool
	// states is the state of every service as last programmed without
	// error, from which lb.StaleUDP derives stale UDP conntrack entries.
	states map[lb.ServiceKey]*lb.ServiceState
	// draining real servers, and the timer that checks them.
	draining   map[drainKey]drainState
	drainTimer *time.Timer
	// adopted is the kernel state Adopt read, used by the next full sync
	// instead of reading it again.
	adopted map[vsKey]*virtualServer
}

var (
	_ lb.Datapath  = (*Datapath)(nil)
	_ lb.Inspector = (*Datapath)(nil)
	_ lb.Adopter   = (*Datapath)(nil)
)

// New returns a datapath with nothing programmed; it touches the kernel
// only from the first Adopt, Sync, Inspect or Cleanup on.
func New(opts Options) (*Datapath, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	d := &Datapath{o: o, log: o.Logger.With("datapath", name), now: time.Now}
	d.reset()
	return d, nil
}

// reset forgets all state (after Cleanup).
func (d *Datapath) reset() {
	d.ready = false
	d.kvs, d.dirty = map[vsKey]*virtualServer{}, map[vsKey]bool{}
	d.want, d.svcVS = map[vsKey]*virtualServer{}, map[lb.ServiceKey][]vsKey{}
	d.states = map[lb.ServiceKey]*lb.ServiceState{}
	d.bindRefs, d.bound = map[netip.Addr]int{}, map[netip.Addr]bool{}
	d.draining, d.adopted = map[drainKey]drainState{}, nil
	if d.drainTimer != nil {
		d.drainTimer.Stop()
		d.drainTimer = nil
	}
	if d.nat != nil {
		d.nat.present, d.nat.elems = false, newNatElems()
	}
}

// Name returns "ipvs".
func (d *Datapath) Name() string { return name }

// Capabilities: every scheduler IPVS has a counterpart for (random only
// with Options.Scheduler), TCP, UDP and SCTP, every frontend kind, ClientIP
// affinity (persistence), weights, IPv6 and Local policies (endpoint
// selection is the engine's).
func (d *Datapath) Capabilities() lb.Capabilities {
	return lb.Capabilities{
		Schedulers:    declaredSchedulers(d.o.Scheduler),
		Protocols:     []lb.Protocol{lb.TCP, lb.UDP, lb.SCTP},
		FrontendKinds: []lb.FrontendKind{lb.ClusterIP, lb.NodePort, lb.ExternalIP, lb.LoadBalancer},
		Affinity:      true,
		Weights:       true,
		IPv6:          true,
		LocalPolicy:   true,
	}
}

// Stats returns the netlink requests made so far.
func (d *Datapath) Stats() Stats { return d.c.stats() }

// open creates the netlink handles in the namespace on first use and checks
// that the kernel has IPVS.
func (d *Datapath) open() error {
	if d.ipvs != nil {
		return nil
	}
	// ipvs.New tries modprobe ip_vs once per process, so check after it.
	h, err := ipvs.New(d.o.Netns)
	if err != nil {
		return fmt.Errorf("ipvs: open IPVS netlink socket%s: %w", where(d.o.Netns), err)
	}
	if err := Available(); err != nil {
		h.Close()
		return err
	}
	rt, err := routeHandle(d.o.Netns)
	if err != nil {
		h.Close()
		return err
	}
	g, err := openIPVSGenl(d.o.Netns, d.c.sent)
	if err != nil {
		h.Close()
		rt.Close()
		return fmt.Errorf("ipvs: IPVS batch socket%s: %w", where(d.o.Netns), err)
	}
	routes, err := openBatchSock(d.o.Netns, unix.NETLINK_ROUTE, d.c.sent)
	if err != nil {
		h.Close()
		rt.Close()
		g.close()
		return fmt.Errorf("ipvs: route batch socket%s: %w", where(d.o.Netns), err)
	}
	d.ipvs = &ipvsConn{h: h, g: g, c: &d.c}
	d.links = &links{h: rt, routes: routes, name: d.o.Device, c: &d.c}
	d.nat = &nat{netns: d.o.Netns, c: &d.c, cidrs: d.o.ClusterCIDRs, elems: newNatElems()}
	return nil
}

// routeHandle opens an rtnetlink handle in the namespace (only
// NETLINK_ROUTE: the default set includes xfrm, which may be missing).
func routeHandle(path string) (*netlink.Handle, error) {
	if path == "" {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return nil, fmt.Errorf("ipvs: rtnetlink handle: %w", err)
		}
		return h, nil
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("ipvs: network namespace %s: %w", path, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("ipvs: rtnetlink handle in %s: %w", path, err)
	}
	return h, nil
}

// where names the namespace in errors: "" or " in /var/run/netns/x".
func where(netns string) string {
	if netns == "" {
		return ""
	}
	return " in " + netns
}

// ErrNoIPVS is returned (wrapped) when the kernel has no IPVS.
var ErrNoIPVS = errors.New("the kernel has no IPVS (module ip_vs not loaded)")

// Available returns nil when the kernel has IPVS loaded, else an error
// wrapping ErrNoIPVS. IPVS shows /proc/net/ip_vs in every network namespace
// once loaded (the module is global).
func Available() error {
	if _, err := os.Stat("/proc/net/ip_vs"); err != nil {
		return fmt.Errorf("ipvs: %w: %v", ErrNoIPVS, err)
	}
	return nil
}

// Close releases the netlink handles and stops the drain timer. It leaves
// the kernel state in place (that is what Cleanup removes).
func (d *Datapath) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.drainTimer != nil {
		d.drainTimer.Stop()
		d.drainTimer = nil
	}
	if d.ipvs != nil {
		d.ipvs.h.Close()
		d.ipvs.g.close()
		d.links.h.Close()
		d.links.routes.close()
		d.ipvs, d.links = nil, nil
	}
	return nil
}
