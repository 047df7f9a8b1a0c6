package userspace_test

import (
	"testing"

	"github.com/lbkit/lbkit/backends/conformance"
	"github.com/lbkit/lbkit/backends/userspace"
	"github.com/lbkit/lbkit/lb"
)

// TestConformance runs the datapath conformance suite: in network namespaces
// as root, on 127.0.0.1 otherwise.
func TestConformance(t *testing.T) {
	conformance.Run(t, func(t *testing.T, env *conformance.Env) lb.Datapath {
		d, err := userspace.New(userspace.Options{Netns: env.Netns, Logger: env.Logger})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}, conformance.Options{LocalVIPs: true, Loopback: true, KeepsEstablished: true})
}
