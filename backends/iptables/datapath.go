// Package iptables is lbkit's iptables datapath: it realizes services with
// NAT rules in the nat and filter tables of the network namespace it runs
// in, kube-proxy style, through iptables-legacy or iptables-nft.
//
// Every sync is one iptables-restore call per address family, with the
// input built in memory. A partial sync rewrites only the chains of the
// services that changed (and the few shared rules they touch); a full sync
// rewrites every chain of ours. Rules of other programs in the same tables
// are never flushed: lbkit declares and flushes only its own LBKIT- chains,
// and the only rules it writes elsewhere are the jumps from the built-in
// chains into them, checked once per full sync (read with
// github.com/coreos/go-iptables on iptables-nft). README.md draws the chain
// layout and explains, with measurements, why it is fast on both flavours.
//
// It implements lb.Datapath, lb.Inspector (read back from the kernel) and
// lb.Adopter (a restarted process takes the chains over without dropping a
// connection).
package iptables

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/lbkit/lbkit/lb"
)

// name is the datapath's Name.
const name = "iptables"

// DefaultMasqueradeBit is the fwmark bit that asks for masquerading, as in
// kube-proxy.
const DefaultMasqueradeBit = 14

// Options configures a Datapath.
type Options struct {
	// Netns, when set (e.g. /var/run/netns/X), is the network namespace
	// whose tables the datapath programs; empty means the process's own.
	Netns string
	// Logger receives sync and cleanup events; nil logs nothing.
	Logger *slog.Logger
	// Flavour picks iptables-legacy or iptables-nft; empty means the one
	// the system's iptables command is (DetectFlavour).
	Flavour Flavour
	// MasqueradeBit is the bit of the packet mark (1-31) that asks for
	// masquerading; zero means DefaultMasqueradeBit.
	MasqueradeBit int
	// MasqueradeAll masquerades all traffic to ClusterIP frontends.
	MasqueradeAll bool
	// ClusterCIDRs are the cluster's pod ranges: traffic from outside them
	// to a ClusterIP frontend is masqueraded. Empty disables the check.
	ClusterCIDRs []netip.Prefix
	// NodePortAddresses restricts NodePort frontends on every node address
	// (0.0.0.0 / ::) to the node's addresses inside these prefixes. Empty
	// means every local address except loopback ones.
	NodePortAddresses []netip.Prefix
	// NodeName is this node's name (lb.Config.NodeName). When set, the
	// rules that masquerade hairpin traffic (a backend balanced to itself)
	// are written only for backends on this node: a backend elsewhere
	// reaches services through its own node's rules. Empty writes them for
	// every backend.
	NodeName string
	// OnFallback, when set, is called each time a partial sync fails and
	// the datapath falls back to a full one (proxyd counts it in a metric).
	OnFallback func()
}

// Datapath programs iptables. Create it with New; it is safe for concurrent
// use (the engine syncs from one goroutine; Inspect may run meanwhile).
type Datapath struct {
	log        *slog.Logger
	flavour    Flavour
	netns      string
	run        runner
	onFallback func()

	mu sync.Mutex // held by Sync, Adopt and Cleanup
	// fams are IPv4 and IPv6.
	fams [2]*family
	// synced: a full sync succeeded since New or Cleanup, so partial
	// syncs can trust the recorded state.
	synced bool
	// adopted: the kernel's chains of ours were read (Adopt, or the first
	// full sync).
	adopted bool
	// timing accumulates where syncs spend their time, for benchmarks.
	timing timing
}

// timing is the time syncs spent generating rules (CPU of this process) and
// in iptables-restore (wall clock, and the CPU the program used).
type timing struct {
	generate, restore, restoreCPU time.Duration
}

// family is one address family's programs, rule settings and state.
type family struct {
	v6    bool
	tools tools
	gen   genConfig
	state *famState
	boot  *bootstrapper
	// buf is the storage of the last restore input, reused by the next.
	buf []byte
	// clean: the kernel is known to hold nothing of ours in this family
	// (read by Adopt, or after Cleanup), so the jumps need no reading.
	clean bool
}

// missingJumps returns the jumps the family lacks.
func (f *family) missingJumps(ctx context.Context) ([]jump, error) {
	if f.clean {
		return jumps(), nil
	}
	return f.boot.missing(ctx)
}

var (
	_ lb.Datapath  = (*Datapath)(nil)
	_ lb.Inspector = (*Datapath)(nil)
	_ lb.Adopter   = (*Datapath)(nil)
)

// New checks opts, finds the programs of the flavour and returns a datapath
// with nothing programmed yet.
func New(opts Options) (*Datapath, error) {
	bit := opts.MasqueradeBit
	if bit == 0 {
		bit = DefaultMasqueradeBit
	}
	if bit < 1 || bit > 31 {
		return nil, fmt.Errorf("iptables: MasqueradeBit %d: want 1-31 (0 means %d)", opts.MasqueradeBit, DefaultMasqueradeBit)
	}
	f, err := ParseFlavour(string(opts.Flavour))
	if err != nil {
		return nil, err
	}
	if f == FlavourAuto {
		if f, err = DetectFlavour(context.Background()); err != nil {
			return nil, err
		}
	}
	if err := checkPrefixes("ClusterCIDRs", opts.ClusterCIDRs); err != nil {
		return nil, err
	}
	if err := checkPrefixes("NodePortAddresses", opts.NodePortAddresses); err != nil {
		return nil, err
	}
	d := &Datapath{
		log:        opts.Logger,
		flavour:    f,
		netns:      opts.Netns,
		run:        runner{netns: opts.Netns},
		onFallback: opts.OnFallback,
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.log = d.log.With("flavour", string(f))
	for i, v6 := range []bool{false, true} {
		t, err := lookTools(f, v6)
		if err != nil {
			return nil, err
		}
		d.fams[i] = &family{
			v6: v6, tools: t, state: newFamState(),
			gen: genConfig{
				v6: v6, mark: markOf(bit), masqAll: opts.MasqueradeAll,
				clusterCIDRs:  ofFamily(opts.ClusterCIDRs, v6),
				nodePortAddrs: ofFamily(opts.NodePortAddresses, v6),
				nodeName:      opts.NodeName,
			},
			boot: newBootstrapper(f, t, v6, d.run),
		}
	}
	return d, nil
}

// checkPrefixes rejects invalid prefixes and ones with host bits set.
func checkPrefixes(field string, ps []netip.Prefix) error {
	for i, p := range ps {
		switch {
		case !p.IsValid():
			return fmt.Errorf("iptables: %s[%d]: invalid prefix %q", field, i, p)
		case p.Addr().Is4In6():
			return fmt.Errorf("iptables: %s[%d]: %s is IPv4-mapped; write it as IPv4", field, i, p)
		case p.Masked() != p:
			return fmt.Errorf("iptables: %s[%d]: %s has host bits set (did you mean %s?)", field, i, p, p.Masked())
		}
	}
	return nil
}

// ofFamily returns the prefixes of one family.
func ofFamily(ps []netip.Prefix, v6 bool) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		if p.Addr().Is6() == v6 {
			out = append(out, p)
		}
	}
	return out
}

// Name returns "iptables".
func (d *Datapath) Name() string { return name }

// Flavour returns the flavour the datapath uses.
func (d *Datapath) Flavour() Flavour { return d.flavour }

// Capabilities: random (weighted) scheduling only, as -m statistic picks
// the backend; ClientIP affinity with -m recent; all protocols and kinds.
// Endpoint selection (Local policies, terminating fallback) is done by the
// engine.
func (d *Datapath) Capabilities() lb.Capabilities {
	return lb.Capabilities{
		Schedulers:    []lb.Scheduler{lb.Random},
		Protocols:     []lb.Protocol{lb.TCP, lb.UDP, lb.SCTP},
		FrontendKinds: []lb.FrontendKind{lb.ClusterIP, lb.NodePort, lb.ExternalIP, lb.LoadBalancer},
		Affinity:      true,
		Weights:       true,
		IPv6:          true,
		LocalPolicy:   true,
	}
}

// Sync programs the services changed names, or all of them when
// changed.Full (or before the first full sync). A failed partial sync falls
// back at once to a full one (Options.OnFallback is called). Services the
// datapath cannot express are returned in an lb.ServiceErrors and keep what
// was programmed for them before.
func (d *Datapath) Sync(ctx context.Context, s *lb.Snapshot, changed lb.ChangeSet) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("iptables: sync: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	bad := d.unsupported(s, changed)
	var err error
	if changed.Full || !d.synced {
		err = d.syncFull(ctx, s, bad)
	} else if err = d.syncPartial(ctx, s, changed, bad); err != nil {
		d.log.Warn("partial sync failed; falling back to a full sync", "error", err)
		if d.onFallback != nil {
			d.onFallback()
		}
		err = d.syncFull(ctx, s, bad)
	}
	if err != nil {
		return err
	}
	if len(bad) > 0 {
		errs := make(lb.ServiceErrors, len(bad))
		for k, e := range bad {
			errs[k] = e
		}
		return errs
	}
	return nil
}

// unsupported returns the services of the sync the datapath cannot express
// (the engine rejects them first; this guards direct callers).
func (d *Datapath) unsupported(s *lb.Snapshot, changed lb.ChangeSet) map[lb.ServiceKey]error {
	bad := map[lb.ServiceKey]error{}
	caps := d.Capabilities()
	check := func(st *lb.ServiceState) {
		if err := lb.CheckCapabilities(caps, name, st.Service, st.Endpoints); err != nil {
			bad[st.Key()] = err
		}
	}
	if changed.Full || !d.synced {
		s.Range(func(st *lb.ServiceState) bool { check(st); return true })
	} else {
		for k := range changed.Changed {
			if st, ok := s.Service(k); ok {
				check(st)
			}
		}
	}
	return bad
}

// keepSet turns the failed services into the set a plan must not touch.
func keepSet(bad map[lb.ServiceKey]error) map[lb.ServiceKey]bool {
	keep := make(map[lb.ServiceKey]bool, len(bad))
	for k := range bad {
		keep[k] = true
	}
	return keep
}

// syncFull rewrites every chain of ours in both families.
func (d *Datapath) syncFull(ctx context.Context, s *lb.Snapshot, bad map[lb.ServiceKey]error) error {
	if !d.adopted {
		if err := d.readKernel(ctx); err != nil {
			return err
		}
	}
	keep := keepSet(bad)
	var changes []change
	for _, f := range d.fams {
		start := time.Now()
		p := f.state.planFull(&f.gen, s, keep)
		d.timing.generate += time.Since(start)
		if p == nil {
			continue
		}
		if err := d.executeFull(ctx, f, p); err != nil {
			return fmt.Errorf("iptables: full sync: %w", err)
		}
		changes = append(changes, p.changes...)
	}
	d.synced = true
	d.clearConntrack(changes)
	return nil
}

// syncPartial rewrites the chains of the changed services.
func (d *Datapath) syncPartial(ctx context.Context, s *lb.Snapshot, changed lb.ChangeSet, bad map[lb.ServiceKey]error) error {
	var keys []lb.ServiceKey
	for _, k := range changed.Keys() {
		if _, skip := bad[k]; !skip {
			keys = append(keys, k)
		}
	}
	var changes []change
	for _, f := range d.fams {
		start := time.Now()
		p := f.state.planPartial(&f.gen, s, keys, f.buf)
		in := p.input()
		d.timing.generate += time.Since(start)
		if p == nil {
			continue
		}
		if p.static {
			// The first service of this family: add the jumps.
			missing, err := f.missingJumps(ctx)
			if err != nil {
				return fmt.Errorf("iptables: partial sync: %s: %w", familyName(f.v6), err)
			}
			in = withJumps(in, missing)
		}
		if err := d.execute(ctx, f, p, in); err != nil {
			return fmt.Errorf("iptables: partial sync: %w", err)
		}
		changes = append(changes, p.changes...)
	}
	d.clearConntrack(changes)
	return nil
}

// executeFull renders and runs one family's full plan and makes sure the
// jumps into our chains exist. When they were installed before, the input
// checks them itself, which costs nothing when they are there; otherwise,
// or when a check fails, the jumps are read first and the missing ones are
// inserted by the same input (see bootstrapper).
func (d *Datapath) executeFull(ctx context.Context, f *family, p *famPlan) error {
	if f.state.ready {
		err := d.execute(ctx, f, p, d.render(f, p, checkAll()))
		var re *RestoreError
		if !errors.As(err, &re) || !strings.HasPrefix(re.Input, "-C ") {
			return err
		}
		d.log.Warn("a jump into lbkit's chains is missing; adding it", "family", familyName(f.v6), "check", re.Input)
	}
	missing, err := f.missingJumps(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", familyName(f.v6), err)
	}
	return d.execute(ctx, f, p, d.render(f, p, insert(missing)))
}

// render writes a full plan's restore input into the family's buffer,
// counting the time as rule generation.
func (d *Datapath) render(f *family, p *famPlan, tail jumpTail) []byte {
	start := time.Now()
	in := p.render(&f.gen, f.buf, tail)
	d.timing.generate += time.Since(start)
	return in
}

// execute runs one family's plan, whose restore input is in, and records
// its outcome.
func (d *Datapath) execute(ctx context.Context, f *family, p *famPlan, in []byte) error {
	if in == nil {
		f.state = f.state.apply(p)
		return nil
	}
	if cap(in) > cap(f.buf) {
		f.buf = in[:0]
	}
	start := time.Now()
	cpu, err := d.run.restore(ctx, f.tools, in)
	d.timing.restore += time.Since(start)
	d.timing.restoreCPU += cpu
	if err != nil {
		return fmt.Errorf("%s: %w", familyName(f.v6), err)
	}
	f.state = f.state.apply(p)
	f.clean = false
	return nil
}

// familyName returns "IPv4" or "IPv6".
func familyName(v6 bool) string {
	if v6 {
		return "IPv6"
	}
	return "IPv4"
}

// Adopt reads the chains a previous process left, so that the first full
// sync rewrites them in place (the restore is atomic, and established
// connections follow their conntrack entries, so none is dropped) and
// deletes those no service needs any more.
func (d *Datapath) Adopt(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.readKernel(ctx)
}

// Cleanup removes every chain of ours and every rule that jumps into one,
// in both families, reading what exists from the kernel. It is idempotent;
// a later Sync starts from scratch.
func (d *Datapath) Cleanup(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for _, f := range d.fams {
		err := d.cleanFamily(ctx, f)
		if err != nil {
			errs = append(errs, fmt.Errorf("iptables: cleanup %s: %w", familyName(f.v6), err))
		}
		f.state, f.clean = newFamState(), err == nil
	}
	// When everything went, the next sync need not read the kernel.
	d.synced, d.adopted = false, len(errs) == 0
	return errors.Join(errs...)
}
