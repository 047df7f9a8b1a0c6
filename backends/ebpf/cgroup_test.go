package ebpf

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// testCgroup creates a child cgroup v2 for the test, moves this test
// process (all its threads) into it, and in t.Cleanup moves the process
// back and removes the cgroup. Socket-LB programs attached to it then see
// every socket the test opens, in whatever namespace, and no other
// process's.
func testCgroup(t *testing.T) string {
	t.Helper()
	root := (&Datapath{}).cgroupRoot()
	if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err != nil {
		t.Skipf("no cgroup v2 hierarchy at %s: %v", root, err)
	}
	orig, err := ownCgroup()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(root, "lbkit-test-")
	if err != nil {
		t.Fatalf("create a test cgroup: %v", err)
	}
	pid := []byte(strconv.Itoa(os.Getpid()))
	t.Cleanup(func() {
		if err := os.WriteFile(filepath.Join(root, orig, "cgroup.procs"), pid, 0); err != nil {
			t.Errorf("move the test process back to cgroup %s: %v", orig, err)
		}
		if err := os.Remove(dir); err != nil {
			t.Errorf("remove test cgroup: %v", err)
		}
	})
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), pid, 0); err != nil {
		t.Fatalf("move the test process into %s: %v", dir, err)
	}
	return dir
}

// cgroupLeftovers lists the socket-LB programs attached to the cgroup at
// dir.
func cgroupLeftovers(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	for _, at := range []ebpf.AttachType{
		ebpf.AttachCGroupInet4Connect, ebpf.AttachCGroupInet6Connect,
		ebpf.AttachCGroupUDP4Sendmsg, ebpf.AttachCGroupUDP6Sendmsg,
		ebpf.AttachCGroupUDP4Recvmsg, ebpf.AttachCGroupUDP6Recvmsg,
		ebpf.AttachCgroupInet4GetPeername, ebpf.AttachCgroupInet6GetPeername,
	} {
		res, err := link.QueryPrograms(link.QueryOptions{Target: int(f.Fd()), Attach: at})
		if err != nil {
			return out, fmt.Errorf("query %s: %w", at, err)
		}
		if len(res.Programs) > 0 {
			out = append(out, fmt.Sprintf("cgroup %s: %d %s programs", dir, len(res.Programs), at))
		}
	}
	return out, nil
}

// ownCgroup returns this process's cgroup v2 path ("0::/path").
func ownCgroup() (string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "0::"); ok {
			return p, nil
		}
	}
	return "", fmt.Errorf("/proc/self/cgroup has no cgroup v2 line")
}
