package userspace

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/lbkit/lbkit/lb"
)

// service is the running state of one service: its open frontends, the
// per-backend connection counters its pools share, and its affinity table.
// It is only touched under Datapath.mu.
type service struct {
	key lb.ServiceKey
	// spec is the service definition last configured, for Inspect.
	spec      *lb.Service
	frontends map[lb.FrontendID]frontend
	stats     map[netip.AddrPort]*backendStats
	aff       *affinity
}

func newService(key lb.ServiceKey) *service {
	return &service{
		key:       key,
		frontends: make(map[lb.FrontendID]frontend),
		stats:     make(map[netip.AddrPort]*backendStats),
	}
}

// configure prepares the affinity table for st: kept while the timeout is
// unchanged, replaced when it changes, dropped when affinity is off.
func (s *service) configure(st *lb.ServiceState, env *proxyEnv) {
	s.spec = st.Service
	switch timeout := st.AffinityTimeout(); {
	case timeout == 0:
		s.aff = nil
	case s.aff == nil || s.aff.timeout != timeout:
		s.aff = newAffinity(timeout, env.now)
	}
}

// statsFor returns the connection counter of a backend, creating it.
func (s *service) statsFor(addr netip.AddrPort) *backendStats {
	st, ok := s.stats[addr]
	if !ok {
		st = &backendStats{}
		s.stats[addr] = st
	}
	return st
}

// pruneStats forgets the counters of backends st no longer uses and that
// have no connection left, so that a backend that comes back while old
// connections still run keeps counting them.
func (s *service) pruneStats(st *lb.ServiceState) {
	used := make(map[netip.AddrPort]bool)
	for _, fs := range st.Frontends {
		for _, b := range fs.Backends {
			used[b.Addr] = true
		}
	}
	for addr, c := range s.stats {
		if !used[addr] && c.active.Load() == 0 {
			delete(s.stats, addr)
		}
	}
}

// newPool builds the pool of one frontend of s.
func (s *service) newPool(fs lb.FrontendState, sched lb.Scheduler, rnd func() uint64) (*pool, error) {
	p := &pool{
		fe:       fs.Frontend,
		backends: make([]*backend, len(fs.Backends)),
		index:    make(map[netip.AddrPort]int, len(fs.Backends)),
		aff:      s.aff,
	}
	for i, b := range fs.Backends {
		if j, dup := p.index[b.Addr]; dup {
			return nil, fmt.Errorf("backends[%d] and backends[%d] are both %s", j, i, b.Addr)
		}
		p.backends[i] = &backend{Backend: b, stats: s.statsFor(b.Addr)}
		p.index[b.Addr] = i
	}
	if len(p.backends) > 0 {
		pk, err := newPicker(sched, p.backends, rnd)
		if err != nil {
			return nil, err
		}
		p.picker = pk
	}
	return p, nil
}

// closeAll closes every frontend of s.
func (s *service) closeAll() {
	for id, fe := range s.frontends {
		fe.close()
		delete(s.frontends, id)
	}
}

// pool is the immutable backend set of one frontend with its scheduler. A
// Sync swaps a frontend's pool atomically; connections load it once.
type pool struct {
	fe       lb.Frontend
	backends []*backend
	index    map[netip.AddrPort]int // backend address -> index in backends
	picker   picker                 // nil when backends is empty
	aff      *affinity              // nil without ClientIP affinity
}

// has reports whether addr is one of p's backends.
func (p *pool) has(addr netip.AddrPort) bool {
	_, ok := p.index[addr]
	return ok
}

// errNoBackends is returned by choose for a frontend without backends.
var errNoBackends = errors.New("no backends")

// choose picks a backend for client and calls connect with it. The first
// candidate is the client's affinity backend if it still exists, else the
// scheduler's pick; when connect fails, the following backends in order are
// tried, each at most once. The chosen backend's active count is incremented
// before connect (and undone if it fails): the caller decrements it when the
// connection or flow ends. Affinity is recorded only for a backend that
// connected.
func (p *pool) choose(client netip.AddrPort, connect func(*backend) error) (*backend, error) {
	n := len(p.backends)
	if n == 0 {
		return nil, errNoBackends
	}
	first := -1
	if p.aff != nil {
		if addr, ok := p.aff.lookup(client.Addr()); ok {
			if i, ok := p.index[addr]; ok {
				first = i
			}
		}
	}
	if first < 0 {
		first = p.picker.pick(client)
	}
	var errs []error
	for k := range n {
		b := p.backends[(first+k)%n]
		b.stats.active.Add(1)
		if err := connect(b); err != nil {
			b.stats.active.Add(-1)
			errs = append(errs, fmt.Errorf("backend %s: %w", b.Addr, err))
			continue
		}
		if p.aff != nil {
			p.aff.record(client.Addr(), b.Addr)
		}
		return b, nil
	}
	return nil, joinErrors(errs)
}

// state returns a copy of the frontend and its backends, for Inspect.
func (p *pool) state() *lb.FrontendState {
	fs := &lb.FrontendState{Frontend: p.fe, Backends: make([]lb.Backend, len(p.backends))}
	for i, b := range p.backends {
		fs.Backends[i] = b.Backend
	}
	return fs
}

// active returns the live connection count of every backend, in order.
func (p *pool) active() []int64 {
	a := make([]int64, len(p.backends))
	for i, b := range p.backends {
		a[i] = b.stats.active.Load()
	}
	return a
}

// activeCount returns the live connections and flows to addr.
func (s *service) activeCount(addr netip.AddrPort) int64 {
	if c := s.stats[addr]; c != nil {
		return c.active.Load()
	}
	return 0
}
