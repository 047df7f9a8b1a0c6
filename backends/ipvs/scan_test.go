package ipvs

import (
	"os/exec"
	"slices"
	"testing"

	"github.com/lbkit/lbkit/internal/netns"
)

// TestScanAndCleanupWithoutIPVS: on a kernel without IPVS (this machine's;
// the guest tests have it), the dummy device and the masquerade tables can
// still be there (the module was unloaded after a run). Scan finds them,
// and Cleanup removes them instead of failing on the missing module.
func TestScanAndCleanupWithoutIPVS(t *testing.T) {
	if Available() == nil {
		t.Skip("the kernel has IPVS; this test is for kernels without it")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skipf("no nft command (install the nftables package): %v", err)
	}
	topo := netns.New(t, netns.Options{Backends: 1})
	var want []string
	// Some kernels have no dummy devices either.
	if exec.Command("ip", "-n", topo.Node.NS, "link", "add", DefaultDevice, "type", "dummy").Run() == nil {
		want = append(want, "ipvs: dummy device lbkit-ipvs0")
	}
	for _, args := range [][]string{
		{"ip", "netns", "exec", topo.Node.NS, "nft", "add", "table", "ip", natTable},
		{"ip", "netns", "exec", topo.Node.NS, "nft", "add", "table", "ip6", natTable},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	o := ScanOptions{Netns: topo.Node.Path}
	found, err := Scan(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, "ipvs: nftables table ip lbkit-ipvs", "ipvs: nftables table ip6 lbkit-ipvs")
	if !slices.Equal(found, want) {
		t.Fatalf("Scan: %q, want %q", found, want)
	}
	d, err := New(Options{Netns: topo.Node.Path})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Cleanup(t.Context()); err != nil {
		t.Fatalf("Cleanup without IPVS: %v", err)
	}
	if left, err := Scan(t.Context(), o); err != nil || len(left) > 0 {
		t.Fatalf("Scan after Cleanup: %q, %v", left, err)
	}
}
