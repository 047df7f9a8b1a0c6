package ebpf

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/lbkit/lbkit/lb"
)

// TestHotplugOverrun: when the link-event subscription overruns (the
// watcher was held up while many interfaces appeared, and its tiny socket
// buffer overflowed), the watcher lists the links again and attaches to
// every one of them.
func TestHotplugOverrun(t *testing.T) {
	h := newHookEnvWith(t, Options{}, lb.ClusterIP, lb.PolicyCluster, hookSetup{tweak: func(d *Datapath) {
		d.watchBuf, d.watchRcvBuf = 1, 1024
	}})
	// Once the watcher attached a new interface, its subscription is
	// live (it subscribes before it lists the links).
	ipCmd(t, "-n", h.topo.Node.NS, "link", "add", "name", "lbsync", "type", "veth", "peer", "name", "lbsyncp")
	waitStatus(t, h.d, "attached to lbsync", func(s AttachStatus) bool { return programCount(s, "lbsync") == 2 })
	const pairs = 16
	var batch strings.Builder
	for i := range pairs {
		fmt.Fprintf(&batch, "link add name lbov%d type veth peer name lbov%dp\n", i, i)
	}
	// Hold the datapath's lock: the watcher cannot apply events meanwhile.
	h.d.mu.Lock()
	cmd := exec.Command("ip", "-n", h.topo.Node.NS, "-batch", "-")
	cmd.Stdin = strings.NewReader(batch.String())
	out, err := cmd.CombinedOutput()
	h.d.mu.Unlock()
	if err != nil {
		t.Fatalf("ip -batch: %v: %s", err, out)
	}
	s := waitStatus(t, h.d, "attached to every new interface", func(s AttachStatus) bool {
		for i := range pairs {
			if programCount(s, fmt.Sprintf("lbov%d", i)) != 2 || programCount(s, fmt.Sprintf("lbov%dp", i)) != 2 {
				return false
			}
		}
		return true
	})
	if s.WatchErrors == 0 {
		t.Errorf("status %+v: no overrun counted, so this test did not exercise the re-listing", s)
	}
	if s.Errors != 0 || !s.Watching {
		t.Errorf("status %+v: want no attach errors and the watcher running", s)
	}
	for i := range pairs {
		if got := programsOn(t, h.topo.Node.Path, fmt.Sprintf("lbov%d", i)); len(got) != 2 {
			t.Errorf("lbov%d: the kernel shows %v, want the 2 TCX programs", i, got)
		}
	}
}

// TestFullSyncReconcilesLinks: a full Sync compares the links with the
// attachments, so that interfaces whose events were lost (here: no
// watcher at all) are attached and forgotten anyway.
func TestFullSyncReconcilesLinks(t *testing.T) {
	h := newHookEnv(t, Options{}, lb.ClusterIP, lb.PolicyCluster)
	h.d.mu.Lock()
	h.d.retireWatch()
	ws := h.d.takeRetired()
	h.d.mu.Unlock()
	waitWatchers(ws)

	node := h.topo.Node.NS
	ipCmd(t, "-n", node, "link", "add", "name", "lbfs0", "type", "veth", "peer", "name", "lbfs0p")
	ipCmd(t, "-n", node, "link", "del", "lbback0") // a bridge port, attached at the first Sync
	s := h.d.AttachStatus()
	if s.Watching || programCount(s, "lbfs0") >= 0 || programCount(s, "lbback0") != 2 {
		t.Fatalf("without a watcher: %+v, want lbfs0 unknown and lbback0 still listed", s)
	}
	h.eng.RequestFullSync()
	if err := h.eng.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	s = h.d.AttachStatus()
	if programCount(s, "lbfs0") != 2 || programCount(s, "lbfs0p") != 2 || programCount(s, "lbback0") >= 0 {
		t.Errorf("after a full Sync: %+v, want lbfs0 and lbfs0p attached and lbback0 forgotten", s)
	}
	checkConsistent(t, s, 2)
	if got := programsOn(t, h.topo.Node.Path, "lbfs0"); len(got) != 2 {
		t.Errorf("lbfs0: the kernel shows %v, want the 2 TCX programs", got)
	}
}
