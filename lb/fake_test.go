package lb

import (
	"context"
	"net/netip"
	"sync"
)

// recorder is a Datapath that records what it is asked to do; a fake is
// fine here because these tests check the engine's logic, not a dataplane.
type recorder struct {
	name     string
	mu       sync.Mutex
	cleaned  int // Cleanup calls
	closed   int // Close calls
	cleanErr error
	caps     Capabilities
	syncs    []ChangeSet
	snaps    []*Snapshot
	failN    int           // fail this many syncs as a whole
	failKey  ServiceKey    // return ServiceErrors for this key
	gate     chan struct{} // when set, each Sync waits for a token
	entered  chan struct{} // signalled when Sync starts
	notify   chan ChangeSet
}

func allCaps() Capabilities {
	return Capabilities{
		Schedulers:    Schedulers(),
		Protocols:     []Protocol{TCP, UDP, SCTP},
		FrontendKinds: []FrontendKind{ClusterIP, NodePort, ExternalIP, LoadBalancer},
		Affinity:      true, Weights: true, IPv6: true, LocalPolicy: true,
	}
}

func (r *recorder) Name() string {
	if r.name == "" {
		return "recorder"
	}
	return r.name
}

func (r *recorder) Capabilities() Capabilities { return r.caps }

func (r *recorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed++
	return nil
}

func (r *recorder) Cleanup(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleaned++
	return r.cleanErr
}

func (r *recorder) cleanups() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cleaned
}

func (r *recorder) Sync(ctx context.Context, s *Snapshot, cs ChangeSet) error {
	if r.entered != nil {
		r.entered <- struct{}{}
	}
	if r.gate != nil {
		<-r.gate
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.syncs = append(r.syncs, cs)
	r.snaps = append(r.snaps, s)
	if r.notify != nil {
		defer func() { r.notify <- cs }()
	}
	if r.failN > 0 {
		r.failN--
		return errTest
	}
	if r.failKey != "" && cs.Has(r.failKey) {
		return ServiceErrors{r.failKey: errTest}
	}
	return nil
}

func (r *recorder) last() (ChangeSet, *Snapshot) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.syncs[len(r.syncs)-1], r.snaps[len(r.snaps)-1]
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.syncs)
}

type testErr struct{}

func (testErr) Error() string { return "injected failure" }

var errTest error = testErr{}

func svc(key string, vip string, port uint16) *Service {
	return &Service{Key: ServiceKey(key), Frontends: []Frontend{{
		Addr: netip.MustParseAddr(vip), Port: port, Protocol: TCP, Kind: ClusterIP}}}
}

func ep(addr string) Endpoint { return ReadyEndpoint(netip.MustParseAddrPort(addr)) }
