package userspace

import (
	"fmt"
	"math/bits"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/lbkit/lbkit/lb"
	"github.com/lbkit/lbkit/lb/maglev"
)

// backendStats counts the proxy's own open connections (TCP) and flows (UDP)
// to one backend of one service. It outlives a backend set: a connection
// decrements the object it incremented even after a Sync replaced the set.
type backendStats struct {
	active atomic.Int64
}

// backend is one entry of a pool: the backend as the snapshot gave it, with
// its connection counter.
type backend struct {
	lb.Backend
	stats *backendStats
}

// weight returns the backend's weight, a zero weight counting as 1 (lb
// documents zero as the default weight).
func (b *backend) weight() uint32 {
	if b.Weight == 0 {
		return 1
	}
	return b.Weight
}

// A picker chooses the index of a backend for a new connection or flow from
// client. Pickers are built for one non-empty backend set and are safe for
// concurrent use.
type picker interface {
	pick(client netip.AddrPort) int
}

// newPicker builds the picker of scheduler s over bs (len(bs) > 0). rnd
// returns uniformly distributed 64-bit values and must be safe for
// concurrent use.
func newPicker(s lb.Scheduler, bs []*backend, rnd func() uint64) (picker, error) {
	switch s {
	case lb.Random:
		return newRandomPicker(bs, rnd), nil
	case lb.RR:
		return &rrPicker{n: uint64(len(bs))}, nil
	case lb.WRR:
		return newWRRPicker(bs), nil
	case lb.LC:
		return &lcPicker{bs: bs}, nil
	case lb.SH:
		return newHashPicker(bs, false)
	case lb.Maglev:
		return newHashPicker(bs, true)
	}
	return nil, fmt.Errorf("scheduler %q is not supported", s)
}

// randomPicker picks a backend with probability proportional to its weight.
type randomPicker struct {
	cum   []uint64 // cum[i] = sum of the weights of bs[0..i]
	total uint64
	rnd   func() uint64
}

func newRandomPicker(bs []*backend, rnd func() uint64) *randomPicker {
	p := &randomPicker{cum: make([]uint64, len(bs)), rnd: rnd}
	for i, b := range bs {
		p.total += uint64(b.weight())
		p.cum[i] = p.total
	}
	return p
}

func (p *randomPicker) pick(netip.AddrPort) int {
	// r is uniform in [0, total): the high word of rnd()*total.
	r, _ := bits.Mul64(p.rnd(), p.total)
	return sort.Search(len(p.cum), func(i int) bool { return p.cum[i] > r })
}

// rrPicker rotates over the backends in order, ignoring weights.
type rrPicker struct {
	n    uint64
	next atomic.Uint64
}

func (p *rrPicker) pick(netip.AddrPort) int {
	return int((p.next.Add(1) - 1) % p.n)
}

// wrrPicker is IPVS's weighted round robin: it sweeps the backends in order
// with a current weight cw that starts at the largest weight and drops by the
// weights' gcd after every sweep; a backend is chosen when its weight is at
// least cw. Heavier backends are thus interleaved with lighter ones: weights
// (1, 2) give b1 b0 b1, b1 b0 b1, ...
type wrrPicker struct {
	w        []uint32
	gcd, max int64

	mu sync.Mutex
	i  int   // last chosen index, -1 before the first pick
	cw int64 // current weight
}

func newWRRPicker(bs []*backend) *wrrPicker {
	p := &wrrPicker{w: make([]uint32, len(bs)), i: -1}
	for i, b := range bs {
		w := b.weight()
		p.w[i] = w
		p.gcd = gcd(p.gcd, int64(w))
		p.max = max(p.max, int64(w))
	}
	return p
}

func (p *wrrPicker) pick(netip.AddrPort) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		p.i = (p.i + 1) % len(p.w)
		if p.i == 0 {
			p.cw -= p.gcd
			if p.cw <= 0 {
				p.cw = p.max
			}
		}
		if int64(p.w[p.i]) >= p.cw {
			return p.i
		}
	}
}

// gcd returns the greatest common divisor of a and b (gcd(0, b) = b).
func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// lcPicker picks the backend with the fewest active connections through this
// proxy. Ties go to the first candidate in a rotation that advances on every
// pick, so idle backends share new connections evenly.
type lcPicker struct {
	bs   []*backend
	next atomic.Uint64
}

func (p *lcPicker) pick(netip.AddrPort) int {
	n := uint64(len(p.bs))
	start := (p.next.Add(1) - 1) % n
	best, bestActive := -1, int64(0)
	for k := range n {
		i := int((start + k) % n)
		if a := p.bs[i].stats.active.Load(); best < 0 || a < bestActive {
			best, bestActive = i, a
		}
	}
	return best
}

// hashPicker looks the client up in a Maglev table: sh hashes the client IP
// only (a client sticks to one backend), maglev hashes IP and port (each flow
// is placed independently, consistently across backend changes).
type hashPicker struct {
	table    *maglev.Table
	withPort bool
}

func newHashPicker(bs []*backend, withPort bool) (*hashPicker, error) {
	mb := make([]maglev.Backend, len(bs))
	for i, b := range bs {
		mb[i] = maglev.Backend{Name: b.Addr.String(), Weight: b.weight()}
	}
	// The default size fits up to 16381 backends; beyond that, the next
	// prime (maglev.New rejects sizes above maglev.MaxSize).
	size := uint64(maglev.DefaultSize)
	if n := uint64(len(bs)); n > size {
		for size = n; !maglev.IsPrime(size); size++ {
		}
	}
	t, err := maglev.New(mb, size)
	if err != nil {
		return nil, fmt.Errorf("build maglev table: %w", err)
	}
	return &hashPicker{table: t, withPort: withPort}, nil
}

func (p *hashPicker) pick(client netip.AddrPort) int {
	if i := p.table.Lookup(flowHash(client, p.withPort)); i >= 0 {
		return i
	}
	return 0
}

// FNV-1a 64-bit parameters.
const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// flowHash is FNV-1a 64 over the client IP's bytes (4 for IPv4, 16 for IPv6)
// followed, when withPort, by the port in network byte order, then mixed
// with splitmix64's finalizer: FNV alone maps sequential ports to correlated
// table slots, which skews the spread of a client's consecutive connections.
// It is fixed and process independent, so sh and maglev choices survive
// restarts.
func flowHash(client netip.AddrPort, withPort bool) uint64 {
	h := uint64(fnvOffset64)
	add := func(c byte) {
		h ^= uint64(c)
		h *= fnvPrime64
	}
	ip := client.Addr().Unmap()
	if ip.Is4() {
		a := ip.As4()
		for _, c := range a {
			add(c)
		}
	} else {
		a := ip.As16()
		for _, c := range a {
			add(c)
		}
	}
	if withPort {
		add(byte(client.Port() >> 8))
		add(byte(client.Port()))
	}
	return mix64(h)
}

// mix64 is splitmix64's finalizer: a bijection that spreads every input bit
// over the whole output.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
