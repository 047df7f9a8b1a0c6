package ebpf

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/lbkit/lbkit/internal/nsutil"
)

// requireBPF skips unless the test can load BPF programs (root).
func requireBPF(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("ebpf: loading BPF programs needs root")
	}
}

// leftovers lists the BPF programs attached to any interface of netns
// (TCX, clsact filters, XDP): after Cleanup there must be none.
func leftovers(netns string) ([]string, error) {
	var out []string
	err := nsutil.Do(netns, func() error {
		links, err := netlink.LinkList()
		if err != nil {
			return fmt.Errorf("list links: %w", err)
		}
		for _, l := range links {
			a := l.Attrs()
			for _, at := range []ebpf.AttachType{ebpf.AttachTCXIngress, ebpf.AttachTCXEgress} {
				res, err := link.QueryPrograms(link.QueryOptions{Target: a.Index, Attach: at})
				if errors.Is(err, unix.ENODEV) {
					break // the link went away since the listing (e.g. its peer's namespace was deleted)
				}
				if err != nil && !errors.Is(err, ebpf.ErrNotSupported) {
					return fmt.Errorf("query %s on %s: %w", at, a.Name, err)
				}
				if res != nil && len(res.Programs) > 0 {
					out = append(out, fmt.Sprintf("%s: %d %s programs", a.Name, len(res.Programs), at))
				}
			}
			for _, parent := range []uint32{parentIngress, parentEgress} {
				fs, err := netlink.FilterList(l, parent)
				if err != nil {
					continue // no clsact qdisc
				}
				if len(fs) > 0 {
					out = append(out, fmt.Sprintf("%s: %d tc filters under %#x", a.Name, len(fs), parent))
				}
			}
			qs, err := netlink.QdiscList(l)
			if err == nil {
				for _, q := range qs {
					if q.Type() == "clsact" {
						out = append(out, a.Name+": clsact qdisc")
					}
				}
			}
			if a.Xdp != nil && a.Xdp.Attached {
				out = append(out, a.Name+": xdp program")
			}
		}
		return nil
	})
	return out, err
}

// clearMap deletes every entry of m.
func clearMap(t testing.TB, m *ebpf.Map) {
	t.Helper()
	var keys [][]byte
	var k []byte
	it := m.Iterate()
	var v []byte
	for it.Next(&k, &v) {
		keys = append(keys, append([]byte(nil), k...))
	}
	if err := it.Err(); err != nil {
		t.Fatalf("iterate %s: %v", m, err)
	}
	for _, k := range keys {
		if err := m.Delete(k); err != nil {
			t.Fatalf("delete from %s: %v", m, err)
		}
	}
}

// benchNS numbers the benchmark namespaces of this process.
var benchNS = &counter{}

type counter struct {
	mu sync.Mutex
	n  int
}

func (c *counter) next() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return c.n
}
