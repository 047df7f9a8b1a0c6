package lb

import (
	"context"
	"slices"
	"time"
)

// A Datapath realizes the desired state in one kind of dataplane.
//
// The Engine calls Sync and Cleanup from one goroutine at a time. Sync must
// program every service named in changed (or, when changed.Full, the whole
// snapshot) and should touch nothing else. A datapath that fails to program
// some services but not others returns a ServiceErrors naming them; any other
// error makes the engine's next sync a full one.
//
// Every datapath has the same lifecycle:
//
//   - New (in its package) checks its options and returns an error when
//     they cannot work, before anything is programmed.
//   - Sync programs; Adopt (see Adopter), when implemented, takes over what
//     an earlier process left instead of flushing it.
//   - Close releases the process's handles (sockets, file descriptors,
//     goroutines) and keeps the kernel state, so traffic keeps flowing
//     across a restart and the next process adopts it. State that only
//     lives in the process (the userspace proxy's listeners, eBPF programs
//     that are not pinned) ends with it.
//   - Cleanup removes everything the datapath installed, including what an
//     earlier process left; it is idempotent.
type Datapath interface {
	Name() string
	Capabilities() Capabilities
	Sync(ctx context.Context, s *Snapshot, changed ChangeSet) error
	// Cleanup removes everything the datapath ever installed.
	Cleanup(ctx context.Context) error
	// Close releases the datapath's handles and keeps the kernel state.
	Close() error
}

// ChangeSet names the services whose state differs from the last successful
// Sync. A key in Changed that the Snapshot does not hold was deleted.
type ChangeSet struct {
	// Full asks the datapath to make its whole state equal to the snapshot
	// (first sync, after a failure, every SyncPeriod). Changed is still filled.
	Full    bool
	Changed map[ServiceKey]struct{}
}

// Keys returns the changed keys in sorted order.
func (c ChangeSet) Keys() []ServiceKey {
	keys := make([]ServiceKey, 0, len(c.Changed))
	for k := range c.Changed {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Has reports whether key changed.
func (c ChangeSet) Has(key ServiceKey) bool {
	_, ok := c.Changed[key]
	return ok
}

// Capabilities declares what a datapath can express. The Engine rejects a
// service that needs more, with an *UnsupportedError, before it reaches Sync.
type Capabilities struct {
	Schedulers    []Scheduler
	Protocols     []Protocol
	FrontendKinds []FrontendKind
	// Affinity: ClientIP session affinity with a timeout.
	Affinity bool
	// Weights: endpoints of one service may have different weights.
	Weights bool
	// IPv6 frontends and endpoints.
	IPv6 bool
	// LocalPolicy: Local internal and external traffic policies.
	LocalPolicy bool
}

// SupportsScheduler reports whether s is in c.Schedulers.
func (c Capabilities) SupportsScheduler(s Scheduler) bool { return slices.Contains(c.Schedulers, s) }

// SupportsProtocol reports whether p is in c.Protocols.
func (c Capabilities) SupportsProtocol(p Protocol) bool { return slices.Contains(c.Protocols, p) }

// SupportsKind reports whether k is in c.FrontendKinds.
func (c Capabilities) SupportsKind(k FrontendKind) bool { return slices.Contains(c.FrontendKinds, k) }

// Inspector is implemented by datapaths that can read back from the kernel
// (or, for the userspace proxy, from its live state) how a frontend is
// realized. proxyd explain, adoption and drift checks use it.
type Inspector interface {
	Inspect(ctx context.Context, fe FrontendID) (*Inspection, error)
}

// Inspection is how a datapath realizes one frontend right now.
type Inspection struct {
	Datapath  string     `json:"datapath"`
	Service   ServiceKey `json:"service"`
	Frontend  Frontend   `json:"frontend"`
	Scheduler Scheduler  `json:"scheduler"`
	// AffinityTimeout is the ClientIP affinity timeout; zero for none.
	AffinityTimeout time.Duration `json:"affinityTimeout"`
	Backends        []Backend     `json:"backends"`
	// Details are datapath-specific facts for humans (chains, map entries,
	// IPVS flags), one per line.
	Details []string `json:"details,omitempty"`
}

// Adopter is implemented by datapaths that can take over state a previous
// process left behind instead of flushing it, so that a restart drops no
// established connection. The engine calls Adopt once before the first Sync.
type Adopter interface {
	Adopt(ctx context.Context) error
}
