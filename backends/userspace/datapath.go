// Package userspace is lbkit's embedded default datapath: a pure-Go L4 proxy
// that needs no privileges. Every frontend is a TCP listener or UDP socket on
// the frontend's address; each new connection (or UDP flow) is balanced to a
// backend by the service's scheduler and relayed both ways.
//
// It implements lb.Datapath and lb.Inspector. See README.md for how it works
// and what it does not do (backends see the proxy's address, not the
// client's).
package userspace

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/lbkit/lbkit/internal/nsutil"
	"github.com/lbkit/lbkit/lb"
)

// name is the datapath's Name.
const name = "userspace"

// Defaults for Options.
const (
	DefaultDialTimeout    = 5 * time.Second
	DefaultUDPIdleTimeout = 30 * time.Second
)

// Options configures a Datapath. The zero value is usable.
type Options struct {
	// Netns, when set (e.g. /var/run/netns/X), makes every socket, listeners
	// and backend dials alike, be created in that network namespace. Empty
	// means the process's own namespace.
	Netns string
	// Logger receives listener events and per-connection failures (at
	// debug level); nil logs nothing.
	Logger *slog.Logger
	// DialTimeout bounds a TCP connect to one backend; zero means
	// DefaultDialTimeout.
	DialTimeout time.Duration
	// UDPIdleTimeout ends a UDP flow (one client address) after this long
	// without a datagram either way; zero means DefaultUDPIdleTimeout.
	UDPIdleTimeout time.Duration
	// Rand, when set, is the source of the random scheduler (used under a
	// mutex), so that tests can be reproducible; nil uses math/rand/v2's
	// global generator.
	Rand rand.Source
}

// Datapath is the userspace proxy. Create it with New; it is safe for
// concurrent use.
type Datapath struct {
	log         *slog.Logger
	netns       string
	dialTimeout time.Duration
	udpIdle     time.Duration
	rnd         func() uint64

	mu  sync.RWMutex
	env *proxyEnv // nil before the first Sync and after Cleanup
	// services holds every service with something open, and the state it
	// was last applied from without any error (nil after an error).
	services  lb.Applied[*service]
	frontends map[lb.FrontendID]lb.ServiceKey // owner of every open frontend
}

var (
	_ lb.Datapath  = (*Datapath)(nil)
	_ lb.Inspector = (*Datapath)(nil)
)

// New returns a datapath with nothing programmed, or an error naming the
// option that cannot work.
func New(opts Options) (*Datapath, error) {
	switch {
	case opts.DialTimeout < 0:
		return nil, fmt.Errorf("userspace: DialTimeout %s is negative", opts.DialTimeout)
	case opts.UDPIdleTimeout < 0:
		return nil, fmt.Errorf("userspace: UDPIdleTimeout %s is negative", opts.UDPIdleTimeout)
	case opts.Netns != "" && runtime.GOOS != "linux":
		return nil, fmt.Errorf("userspace: Netns %q: network namespaces are only supported on Linux, not %s", opts.Netns, runtime.GOOS)
	}
	d := &Datapath{
		log:         opts.Logger,
		netns:       opts.Netns,
		dialTimeout: opts.DialTimeout,
		udpIdle:     opts.UDPIdleTimeout,
		rnd:         rand.Uint64,
		frontends:   make(map[lb.FrontendID]lb.ServiceKey),
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.dialTimeout == 0 {
		d.dialTimeout = DefaultDialTimeout
	}
	if d.udpIdle == 0 {
		d.udpIdle = DefaultUDPIdleTimeout
	}
	if src := opts.Rand; src != nil {
		var mu sync.Mutex
		d.rnd = func() uint64 {
			mu.Lock()
			defer mu.Unlock()
			return src.Uint64()
		}
	}
	return d, nil
}

// Name returns "userspace".
func (d *Datapath) Name() string { return name }

// Capabilities reports what the proxy implements. Endpoint selection (Local
// policies, terminating fallback) is done by the engine, so LocalPolicy is
// free.
func (d *Datapath) Capabilities() lb.Capabilities {
	return lb.Capabilities{
		Schedulers:    []lb.Scheduler{lb.Random, lb.RR, lb.WRR, lb.LC, lb.SH, lb.Maglev},
		Protocols:     []lb.Protocol{lb.TCP, lb.UDP},
		FrontendKinds: []lb.FrontendKind{lb.ClusterIP, lb.NodePort, lb.ExternalIP, lb.LoadBalancer},
		Affinity:      true,
		Weights:       true,
		IPv6:          true,
		LocalPolicy:   true,
	}
}

// work is one service a Sync reconciles (lb.Applied's work item).
type work = lb.Work[*service]

// Sync opens, updates and closes frontends so that the services changed
// names (or all of them, when changed.Full) run as s describes. Services
// that fail, e.g. because a port is in use, are returned as an
// lb.ServiceErrors; they keep what of them worked before and are tried again
// when a later Sync names them.
func (d *Datapath) Sync(ctx context.Context, s *lb.Snapshot, changed lb.ChangeSet) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("userspace: sync: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.env == nil {
		d.env = &proxyEnv{
			log: d.log, netns: d.netns, dialTimeout: d.dialTimeout, udpIdle: d.udpIdle,
			now: time.Now, reg: newRegistry(),
		}
	}
	todo := d.workList(s, changed)
	// Close the frontends that go away first, so that a frontend moving
	// from one service to another within this Sync is free to open.
	for _, w := range todo {
		d.dropFrontends(w)
	}
	errs := lb.ServiceErrors{}
	for _, w := range todo {
		if w.State == nil {
			continue
		}
		if err := d.apply(w.Key, w.State); err != nil {
			errs[w.Key] = err
			d.log.Warn("service not fully programmed", "service", string(w.Key), "error", err)
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// workList returns, sorted by key, the services Sync must reconcile. A full
// Sync skips services whose state pointer is the one last applied without
// error: snapshots share unchanged states.
func (d *Datapath) workList(s *lb.Snapshot, changed lb.ChangeSet) []work {
	todo := d.services.Pending(s, changed)
	if changed.Full {
		slices.SortFunc(todo, func(a, b work) int { return cmp.Compare(a.Key, b.Key) })
	}
	return todo
}

// dropFrontends closes the frontends of w's service that its new state no
// longer has (all of them when the service is deleted, which also forgets
// it).
func (d *Datapath) dropFrontends(w work) {
	if !w.Has {
		return
	}
	svc := w.Old
	want := make(map[lb.FrontendID]bool)
	if w.State != nil {
		for _, fs := range w.State.Frontends {
			want[fs.ID()] = true
		}
	}
	for id, fe := range svc.frontends {
		if !want[id] {
			fe.close()
			delete(svc.frontends, id)
			delete(d.frontends, id)
			d.log.Info("frontend closed", "service", string(w.Key), "frontend", id.String())
		}
	}
	if w.State == nil {
		d.services.Delete(w.Key)
	}
}

// apply programs one service: new pools for its open frontends, listeners
// for its new ones. Every frontend is attempted; the errors are joined.
func (d *Datapath) apply(key lb.ServiceKey, st *lb.ServiceState) error {
	sched := st.Scheduler()
	if !d.Capabilities().SupportsScheduler(sched) {
		return unsupported(key, "scheduler", string(sched))
	}
	svc, _, ok := d.services.Get(key)
	if !ok {
		svc = newService(key)
	}
	svc.configure(st, d.env)
	var errs []error
	seen := make(map[lb.FrontendID]int)
	for i, fs := range st.Frontends {
		id := fs.ID()
		if j, dup := seen[id]; dup {
			errs = append(errs, fmt.Errorf("frontends[%d] %s repeats frontends[%d]", i, fs.Frontend, j))
			continue
		}
		seen[id] = i
		if fs.Protocol != lb.TCP && fs.Protocol != lb.UDP {
			errs = append(errs, unsupported(key, fmt.Sprintf("frontends[%d].protocol", i), fs.Protocol.String()))
			continue
		}
		p, err := svc.newPool(fs, sched, d.rnd)
		if err != nil {
			errs = append(errs, fmt.Errorf("frontend %s: %w", fs.Frontend, err))
			continue
		}
		if fe, ok := svc.frontends[id]; ok {
			fe.setPool(p)
			continue
		}
		if owner, ok := d.frontends[id]; ok {
			errs = append(errs, fmt.Errorf("frontend %s is already served for service %q", fs.Frontend, owner))
			continue
		}
		fe, err := d.open(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		svc.frontends[id] = fe
		d.frontends[id] = key
		d.log.Info("frontend open", "service", string(key), "frontend", fs.Frontend.String(),
			"backends", len(p.backends))
	}
	svc.pruneStats(st)
	if len(errs) > 0 {
		// Held with what it opened, applied from no state: a full
		// Sync tries it again.
		d.services.Set(key, svc, nil)
		return fmt.Errorf("userspace: %w", joinErrors(errs))
	}
	d.services.Set(key, svc, st)
	return nil
}

// open binds the socket of p's frontend (in the datapath's namespace) and
// starts serving it.
func (d *Datapath) open(p *pool) (frontend, error) {
	fe := p.fe
	ip := fe.Addr.Unmap()
	family := "4"
	if ip.Is6() {
		family = "6"
	}
	addr := netip.AddrPortFrom(ip, fe.Port).String()
	var lc net.ListenConfig
	var f frontend
	err := nsutil.Do(d.netns, func() error {
		switch fe.Protocol {
		case lb.TCP:
			ln, err := lc.Listen(context.Background(), "tcp"+family, addr)
			if err != nil {
				return err
			}
			f = newTCPFrontend(d.env, ln.(*net.TCPListener), p)
		case lb.UDP:
			pc, err := lc.ListenPacket(context.Background(), "udp"+family, addr)
			if err != nil {
				return err
			}
			f = newUDPFrontend(d.env, pc.(*net.UDPConn), p)
		}
		return nil
	})
	if err != nil {
		return nil, &ListenError{Frontend: fe, Err: err}
	}
	if !f.start() {
		f.close()
		return nil, fmt.Errorf("frontend %s: datapath is shutting down", fe)
	}
	return f, nil
}

// Inspect returns the frontend as it is being served: its kind and the
// backends new connections are balanced over.
func (d *Datapath) Inspect(_ context.Context, id lb.FrontendID) (*lb.Inspection, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	key, ok := d.frontends[id]
	if !ok {
		return nil, fmt.Errorf("userspace: frontend %s is not served", id)
	}
	svc, _, _ := d.services.Get(key)
	st := svc.frontends[id].currentPool().state()
	in := &lb.Inspection{Datapath: name, Service: key, Frontend: st.Frontend, Backends: st.Backends}
	if svc.spec != nil {
		in.Scheduler = svc.spec.EffectiveScheduler()
		in.AffinityTimeout = svc.spec.AffinityTimeout()
	}
	for _, b := range st.Backends {
		in.Details = append(in.Details, fmt.Sprintf("backend %s: %d active connections/flows", b.Addr, svc.activeCount(b.Addr)))
	}
	return in, nil
}

// Cleanup closes every listener, connection and flow, and waits (within ctx)
// for their goroutines to end. It is safe to call more than once; a later
// Sync starts from scratch.
func (d *Datapath) Cleanup(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, svc := range d.services.All() {
		svc.closeAll()
	}
	d.services.Reset(0)
	clear(d.frontends)
	env := d.env
	d.env = nil
	if env == nil {
		return nil
	}
	env.reg.shutdown()
	if err := env.reg.wait(ctx); err != nil {
		return fmt.Errorf("userspace: cleanup: %w", err)
	}
	return nil
}

// Close is Cleanup without a deadline.
func (d *Datapath) Close() error { return d.Cleanup(context.Background()) }

// proxyEnv is what frontends of one datapath generation share.
type proxyEnv struct {
	log         *slog.Logger
	netns       string
	dialTimeout time.Duration
	udpIdle     time.Duration
	now         func() time.Time
	reg         *registry
}

// dial connects to a backend from the datapath's namespace; network is
// "tcp" or "udp". Cleanup cancels pending dials.
func (e *proxyEnv) dial(network string, addr netip.AddrPort) (net.Conn, error) {
	var c net.Conn
	err := nsutil.Do(e.netns, func() error {
		dl := net.Dialer{Timeout: e.dialTimeout}
		var err error
		c, err = dl.DialContext(e.reg.ctx, network, addr.String())
		return err
	})
	return c, err
}

// frontend is one open listener (TCP) or socket (UDP).
type frontend interface {
	// start launches the serving goroutine; false if the datapath is
	// shutting down.
	start() bool
	// setPool swaps in a new backend set.
	setPool(*pool)
	currentPool() *pool
	// close stops serving new connections. TCP connections continue;
	// UDP flows end, as their replies can no longer be sent.
	close()
}
