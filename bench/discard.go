package bench

import (
	"context"

	"github.com/lbkit/lbkit/lb"
)

// Discard is a datapath that programs nothing and supports everything; with
// it a benchmark measures the engine alone.
type Discard struct{}

// Name returns "discard".
func (Discard) Name() string { return "discard" }

// Capabilities declares everything.
func (Discard) Capabilities() lb.Capabilities {
	return lb.Capabilities{
		Schedulers:    lb.Schedulers(),
		Protocols:     []lb.Protocol{lb.TCP, lb.UDP, lb.SCTP},
		FrontendKinds: []lb.FrontendKind{lb.ClusterIP, lb.NodePort, lb.ExternalIP, lb.LoadBalancer},
		Affinity:      true, Weights: true, IPv6: true, LocalPolicy: true,
	}
}

// Sync does nothing.
func (Discard) Sync(context.Context, *lb.Snapshot, lb.ChangeSet) error { return nil }

// Cleanup does nothing.
func (Discard) Cleanup(context.Context) error { return nil }

// Close releases nothing.
func (Discard) Close() error { return nil }
