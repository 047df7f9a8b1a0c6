package ebpf

import (
	"testing"

	"github.com/lbkit/lbkit/backends/conformance"
	"github.com/lbkit/lbkit/lb"
)

// runConformance runs the suite with datapaths built from opts (Netns and
// Logger come from the scenario).
func runConformance(t *testing.T, opts Options) {
	requireBPF(t)
	dps := make(map[*conformance.Env]*Datapath)
	conformance.Run(t, func(t *testing.T, env *conformance.Env) lb.Datapath {
		o := opts
		o.Netns, o.Logger = env.Netns, env.Logger
		o.MasqueradeAll, o.ClusterCIDRs, o.NodePortAddresses = env.MasqueradeAll, env.ClusterCIDRs, env.NodePortAddresses
		d, err := New(o)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		dps[env] = d
		t.Cleanup(func() { delete(dps, env) })
		return d
	}, conformance.Options{
		KeepsEstablished:  true,
		PreservesClientIP: true,
		// Socket-LB connects clients to backends directly: nothing to
		// masquerade.
		Masquerades:             opts.Attach != AttachSocket,
		ClearsStaleUDP:          true,
		RejectsWithoutEndpoints: true,
		Foreign:                 foreignProgram,
		Disrupt: func(t *testing.T, env *conformance.Env) {
			d := dps[env]
			d.mu.Lock()
			defer d.mu.Unlock()
			clearMap(t, d.objs.LbServices)
		},
		Leftovers: func(t *testing.T, env *conformance.Env) []string {
			left, err := leftovers(env.Netns)
			if err != nil {
				t.Errorf("list leftovers: %v", err)
			}
			if opts.CgroupPath != "" {
				cg, err := cgroupLeftovers(opts.CgroupPath)
				if err != nil {
					t.Errorf("list cgroup leftovers: %v", err)
				}
				left = append(left, cg...)
			}
			return left
		},
	})
}

func TestConformanceTC(t *testing.T) { runConformance(t, Options{}) }

func TestConformanceSocket(t *testing.T) {
	requireBPF(t)
	runConformance(t, Options{Attach: AttachSocket, CgroupPath: testCgroup(t)})
}
