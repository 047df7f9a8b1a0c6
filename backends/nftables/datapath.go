// Package nftables is lbkit's nftables datapath: it realizes the desired
// state in two tables of its own, "ip lbkit" and "ip6 lbkit" (DefaultTable;
// one per family, so that each family's keys keep their natural layout),
// over netlink with github.com/google/nftables — no nft binary at run time.
//
// Each table is flat: a verdict map sends a new connection to a frontend's
// chain, and one named map holds every frontend's backends, keyed by
// frontend address . protocol . port . slot. The chains depend only on the
// number of slots and a few flags, so a service change rewrites a handful
// of map elements, whatever the number of services. See README.md for the
// layout and the reasons.
//
// Datapath implements lb.Datapath, lb.Inspector (read back from the
// kernel) and lb.Adopter (a restart keeps the tables, their affinity
// entries and every connection).
package nftables

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/lbkit/lbkit/internal/nftutil"
	"github.com/lbkit/lbkit/lb"
)

// name is the datapath's Name.
const name = "nftables"

// Datapath programs one network namespace's nftables table. Create it with
// New; it is safe for concurrent use (syncs are serialized).
type Datapath struct {
	cfg *config

	mu sync.Mutex
	// Bookkeeping of what the tables hold since the last successful sync,
	// changed only once the kernel accepted a sync's transaction.
	// services holds, per programmed service, the state it was last
	// programmed from (shared with the engine's snapshots, not copied; the
	// value is empty: the elements derive from the state, and a failed
	// transaction changes nothing, so a held service always has its
	// state). hairpin counts, per backend address, the programmed services
	// that use it; chains are the frontend chains that exist. ready says
	// the bookkeeping matches the tables, so a partial sync may rely on it.
	services lb.Applied[struct{}]
	hairpin  map[netip.Addr]int32
	chains   map[chainKey]struct{}
	ready    bool
	// gen is the namespace's ruleset generation right after the
	// datapath's last transaction, when nobody else committed between its
	// reads and that transaction; 0 when unknown. A full sync that finds
	// the same generation knows the tables are exactly as the bookkeeping
	// says and only programs what differs from the snapshot, instead of
	// reading the tables back.
	gen uint32
}

var (
	_ lb.Datapath  = (*Datapath)(nil)
	_ lb.Inspector = (*Datapath)(nil)
	_ lb.Adopter   = (*Datapath)(nil)
)

// New checks opts and returns a datapath with nothing programmed yet.
func New(opts Options) (*Datapath, error) {
	cfg, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	return &Datapath{
		cfg:     cfg,
		hairpin: make(map[netip.Addr]int32),
		chains:  make(map[chainKey]struct{}),
	}, nil
}

// Name returns "nftables".
func (d *Datapath) Name() string { return name }

// Capabilities: weighted random selection, TCP, UDP and SCTP, every
// frontend kind, ClientIP affinity, IPv6 and Local policies (the engine
// selects the endpoints).
func (d *Datapath) Capabilities() lb.Capabilities { return capabilities() }

// capabilities is what the nftables datapath can express.
func capabilities() lb.Capabilities {
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

// TableName returns the name of the ip and ip6 tables the datapath owns.
func (d *Datapath) TableName() string { return d.cfg.table }

// Sync programs the services changed names, or the whole snapshot when
// changed.Full (or when the datapath does not know the table's state, e.g.
// after a failure or Cleanup). Either way the kernel changes in one
// transaction: traffic sees the old state or the new one, never a mix.
// Services the datapath cannot express keep their previous programming and
// are returned in an lb.ServiceErrors.
func (d *Datapath) Sync(ctx context.Context, s *lb.Snapshot, changed lb.ChangeSet) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("nftables: sync: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	start := time.Now()
	var res syncResult
	var err error
	if changed.Full || !d.ready {
		res, err = d.fullSync(s)
	} else {
		res, err = d.partialSync(d.services.Work(s, changed))
	}
	if err != nil {
		d.ready = false
		return err
	}
	d.cfg.log.Debug("nftables synced", "full", changed.Full || res.full, "services", d.services.Len(),
		"elementsAdded", res.added, "elementsDeleted", res.deleted,
		"tableRecreated", res.recreated, "generationUnchanged", res.trusted,
		"duration", time.Since(start))
	if len(res.errs) > 0 {
		return res.errs
	}
	return nil
}

// work is one service a sync reconciles (lb.Applied's work item).
type work = lb.Work[struct{}]

// syncResult is what a sync did, for logs and per-service errors.
type syncResult struct {
	full, recreated bool
	trusted         bool // a full sync that relied on the generation
	added, deleted  int
	errs            lb.ServiceErrors
}

// check returns an *lb.UnsupportedError when the service asks for something
// the datapath cannot express (the engine rejects such services before;
// snapshots built by hand may still hold them).
func check(st *lb.ServiceState) error {
	unsupported := func(field, value string) error {
		return &lb.UnsupportedError{Service: st.Key(), Field: field, Value: value, Datapath: name}
	}
	if err := lb.CheckCapabilities(capabilities(), name, st.Service, st.Endpoints); err != nil {
		return err
	}
	for i, fs := range st.Frontends {
		if nftutil.ProtoNum(fs.Protocol) == 0 {
			return unsupported(fmt.Sprintf("frontends[%d].protocol", i), fs.Protocol.String())
		}
		if !fs.Addr.IsValid() || fs.Addr.Is4In6() || (fs.Addr.IsUnspecified() && fs.Kind != lb.NodePort) {
			return unsupported(fmt.Sprintf("frontends[%d].ip", i), fs.Addr.String())
		}
		for j, b := range fs.Backends {
			if b.Addr.Addr().Unmap().Is6() != fs.Addr.Is6() {
				return unsupported(fmt.Sprintf("frontends[%d].backends[%d]", i, j), b.Addr.String()+" (another IP family than the frontend)")
			}
		}
	}
	return nil
}

// Cleanup removes the datapath's table (and with it everything it
// installed). It is safe to call more than once; a later Sync starts over.
func (d *Datapath) Cleanup(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("nftables: cleanup: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.forget()
	cn, err := d.cfg.dial()
	if err != nil {
		return err
	}
	defer cn.close()
	cn.deleteTables()
	if err := cn.flush(); err != nil {
		return fmt.Errorf("nftables: cleanup: delete tables ip and ip6 %s%s: %w", d.cfg.table, d.cfg.where(), err)
	}
	return nil
}

// forget drops the bookkeeping: the next sync is a full one.
func (d *Datapath) forget() {
	d.ready, d.gen = false, 0
	d.services.Reset(0)
	clear(d.hairpin)
	clear(d.chains)
}
