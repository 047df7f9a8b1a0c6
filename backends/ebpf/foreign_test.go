package ebpf

import (
	"fmt"
	"net"
	"slices"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"

	"github.com/lbkit/lbkit/backends/conformance"
	"github.com/lbkit/lbkit/internal/netns"
	"github.com/lbkit/lbkit/internal/nsutil"
)

// foreignProgram attaches someone else's TC program (it passes every packet
// on: TCX_NEXT) to ingress of the node's client link and returns a check
// that it is still attached. It is detached when the test ends.
func foreignProgram(t *testing.T, env *conformance.Env) func(t *testing.T, after string) {
	t.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "foreign", Type: ebpf.SchedCLS, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, -1), asm.Return()},
	})
	if err != nil {
		t.Fatalf("load the foreign program: %v", err)
	}
	t.Cleanup(func() { prog.Close() })
	info, err := prog.Info()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := info.ID()
	var ifindex int
	var l link.Link
	err = nsutil.Do(env.Netns, func() error {
		ifc, err := net.InterfaceByName(netns.NodeClientLink)
		if err != nil {
			return err
		}
		ifindex = ifc.Index
		l, err = link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: prog, Attach: ebpf.AttachTCXIngress})
		return err
	})
	if err != nil {
		t.Fatalf("attach the foreign program: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return func(t *testing.T, after string) {
		t.Helper()
		var ids []ebpf.ProgramID
		err := nsutil.Do(env.Netns, func() error {
			res, err := link.QueryPrograms(link.QueryOptions{Target: ifindex, Attach: ebpf.AttachTCXIngress})
			if err != nil {
				return fmt.Errorf("query tcx ingress: %w", err)
			}
			for _, p := range res.Programs {
				ids = append(ids, p.ID)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(ids, id) {
			t.Errorf("after %s the foreign TCX program %d is gone from %s (attached: %v)", after, id, netns.NodeClientLink, ids)
		}
	}
}
