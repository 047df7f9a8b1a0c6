package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/lbkit/lbkit/backends/iptables"
	"github.com/lbkit/lbkit/backends/nftables"
	"github.com/lbkit/lbkit/internal/netns"
	"github.com/lbkit/lbkit/internal/nsutil"
	"github.com/lbkit/lbkit/internal/testenv"
	"github.com/lbkit/lbkit/lb"
	"github.com/lbkit/lbkit/proxyd/config"
)

// cleanupVIP is the frontend the cleanup tests program.
var cleanupVIP = netip.AddrPortFrom(netip.MustParseAddr("198.18.100.20"), 80)

// TestCleanupFindsEverything programs state of several modes with the
// real datapaths (or the real proxyd), then runs the real `proxyd --cleanup` the way an operator
// would, without saying which flavour or pin path was used, and checks
// that nothing of lbkit's is left in the namespace, that the output names
// what was removed, and that a second run removes nothing.
func TestCleanupFindsEverything(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the proxyd binary")
	}
	netns.Require(t)
	bin := buildProxyd(t)

	t.Run("no mode: both iptables flavours and nftables", func(t *testing.T) {
		topo := netns.New(t, netns.Options{Backends: 2})
		programState(t, topo, stateIPTablesLegacy)
		programState(t, topo, stateIPTablesNFT)
		programState(t, topo, stateNFTables)
		out := runCleanup(t, bin, topo, 0)
		for _, want := range []string{
			"iptables-legacy: IPv4 table nat chain LBKIT-SERVICES",
			"iptables-nft: IPv4 table nat chain LBKIT-SERVICES",
			"nftables: table ip lbkit",
		} {
			assertRemoved(t, out, want)
		}
		assertNoState(t, topo)
		assertVIPDead(t, topo)
		assertIdempotent(t, bin, topo)
	})

	t.Run("mode iptables without a flavour removes legacy rules", func(t *testing.T) {
		topo := netns.New(t, netns.Options{Backends: 2})
		runProxyd(t, bin, topo, "iptables", stateIPTablesLegacy, "--iptables-flavour=legacy")
		out := runCleanup(t, bin, topo, 0, "--mode=iptables")
		assertRemoved(t, out, "iptables-legacy: IPv4 table nat chain LBKIT-SERVICES")
		assertNoState(t, topo)
		assertVIPDead(t, topo)
		assertIdempotent(t, bin, topo, "--mode=iptables")
	})

	t.Run("mode ebpf removes unpinned programs of a running proxyd", func(t *testing.T) {
		topo := netns.New(t, netns.Options{Backends: 2})
		stop := startProxydServing(t, bin, topo, "ebpf", "")
		defer stop()
		out := runCleanup(t, bin, topo, 0, "--mode=ebpf")
		assertRemoved(t, out, "ebpf: tcx ingress program lb_tc_ingress")
		assertRemoved(t, out, "ebpf: tcx egress program lb_tc_egress")
		assertNoState(t, topo)
		assertVIPDead(t, topo)
		assertIdempotent(t, bin, topo, "--mode=ebpf")
	})

	t.Run("a table cleanup cannot remove fails the run and is listed", func(t *testing.T) {
		topo := netns.New(t, netns.Options{Backends: 2})
		holdOwnedTable(t, topo.Node.Path, "lbkit")
		out := runCleanup(t, bin, topo, 1, "--mode=nftables")
		if !strings.Contains(out, "still present") || !strings.Contains(out, "nftables: table ip lbkit") {
			t.Fatalf("the output does not list the table that remains:\n%s", out)
		}
		if strings.Contains(out, "\tremoved\t") {
			t.Fatalf("the output claims a removal:\n%s", out)
		}
	})
}

// TestCleanupEBPFPinnedElsewhere: proxyd pinned its eBPF state under a
// pin path of its configuration and exited; the state keeps serving.
// `proxyd --cleanup --mode=ebpf` without that configuration must still find
// the programs (by name, on the namespace's interfaces) and the pins (by
// the maps those programs use) and remove them. TC and XDP. It runs in a
// re-executed copy of the test binary inside a private mount namespace
// (unshare) that mounts its own bpffs on /sys/fs/bpf.
func TestCleanupEBPFPinnedElsewhere(t *testing.T) {
	bin := proxydWithPrivateBPFFS(t)
	if bin == "" {
		return
	}
	for _, attach := range []string{"tc", "xdp"} {
		t.Run(attach, func(t *testing.T) {
			topo := netns.New(t, netns.Options{Backends: 2})
			pins := "/sys/fs/bpf/lbkit-e2e-" + attach
			stop := startProxydServing(t, bin, topo, "ebpf", pins, "--ebpf-attach="+attach)
			stop()
			if err := requestVIP(topo); err != nil {
				t.Fatalf("with pins the datapath must keep serving after proxyd exited: %v", err)
			}
			out := runCleanup(t, bin, topo, 0, "--mode=ebpf")
			assertRemoved(t, out, "ebpf: pinned map "+pins+"/lb_services")
			if attach == "xdp" {
				assertRemoved(t, out, "ebpf: xdp program lb_xdp")
			} else {
				assertRemoved(t, out, "ebpf: tcx ingress program lb_tc_ingress")
			}
			if _, err := os.Stat(pins); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the pin directory %s is still there: %v", pins, err)
			}
			assertNoState(t, topo, pins)
			assertVIPDead(t, topo)
			assertIdempotent(t, bin, topo, "--mode=ebpf")
		})
	}
}

// programState programs one service in the node namespace with the
// datapath of a kind of state, in this process, and leaves it programmed.
// (A proxyd start removes other modes' state, so state of several modes
// at once is made this way.)
func programState(t *testing.T, topo *netns.Topology, kind string) {
	t.Helper()
	var dp lb.Datapath
	var err error
	switch kind {
	case stateIPTablesLegacy, stateIPTablesNFT:
		f := iptables.Flavour(strings.TrimPrefix(kind, "iptables-"))
		dp, err = iptables.New(iptables.Options{Netns: topo.Node.Path, Flavour: f})
	case stateNFTables:
		dp, err = nftables.New(nftables.Options{Netns: topo.Node.Path})
	default:
		t.Fatalf("programState: unknown kind %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	svc := &lb.Service{Key: "web", Frontends: []lb.Frontend{{
		Addr: cleanupVIP.Addr(), Port: cleanupVIP.Port(), Protocol: lb.TCP, Kind: lb.ClusterIP,
	}}}
	var eps []lb.Endpoint
	for _, b := range topo.Backends {
		eps = append(eps, lb.ReadyEndpoint(netip.AddrPortFrom(b.IPv4, netns.DefaultPort)))
	}
	testenv.Program(t, dp, svc, eps)
	t.Cleanup(func() { _ = dp.Cleanup(context.Background()) })
	if found := scanKinds(t, scanConfig(topo))[kind]; len(found) == 0 {
		t.Fatalf("no %s state found after programming it", kind)
	}
}

// runProxyd runs proxyd in mode until the state kind appears in the node
// namespace, then stops it (kernel state stays programmed).
func runProxyd(t *testing.T, bin string, topo *netns.Topology, mode, kind string, extra ...string) {
	t.Helper()
	stop := startProxyd(t, bin, topo, mode, "", extra...)
	defer stop()
	cfg := scanConfig(topo)
	waitFor(t, kind+" state from proxyd --mode="+mode, func() bool {
		return len(scanKinds(t, cfg)[kind]) > 0
	})
}

// startProxydServing starts proxyd and waits until the VIP answers. The
// returned function stops proxyd with SIGTERM.
func startProxydServing(t *testing.T, bin string, topo *netns.Topology, mode, pinPath string, extra ...string) func() {
	t.Helper()
	stop := startProxyd(t, bin, topo, mode, pinPath, extra...)
	waitFor(t, "the VIP to answer through proxyd --mode="+mode, func() bool { return requestVIP(topo) == nil })
	return stop
}

// startProxyd starts proxyd programming the node namespace with one
// service on cleanupVIP. The returned function stops it (SIGTERM, then
// waits); it may be called more than once.
func startProxyd(t *testing.T, bin string, topo *netns.Topology, mode, pinPath string, extra ...string) func() {
	t.Helper()
	dir := t.TempDir()
	var eps strings.Builder
	for _, b := range topo.Backends {
		fmt.Fprintf(&eps, "      - {ip: %s, port: %d}\n", b.IPv4, netns.DefaultPort)
	}
	services := filepath.Join(dir, "services.yaml")
	body := fmt.Sprintf("services:\n  - name: web\n    frontends:\n      - {ip: %s, port: %d}\n    endpoints:\n%s",
		cleanupVIP.Addr(), cleanupVIP.Port(), eps.String())
	cfgFile := filepath.Join(dir, "config.yaml")
	cfg := fmt.Sprintf("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nlbkit:\n  ebpf:\n    pinPath: %q\n    xdpMode: generic\n", pinPath)
	for path, data := range map[string]string{services: body, cfgFile: cfg} {
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := append([]string{"--config", cfgFile, "--mode", mode, "--netns", topo.Node.Path, "--services", services,
		"--metrics-bind-address", freeAddr(t, "tcp"), "--healthz-bind-address", "",
		"--hostname-override", "node-a", "--log-format=console", "--min-sync-period=0"}, extra...)
	p := startProc(t, exec.Command(bin, args...))
	var stopped bool
	stop := func() {
		if !stopped {
			stopped = true
			p.stop(t)
		}
	}
	t.Cleanup(func() {
		stop()
		// Whatever the test did, leave nothing programmed.
		_ = exec.Command(bin, "--cleanup", "--netns", topo.Node.Path).Run()
	})
	return stop
}

// runCleanup runs `proxyd --cleanup` on the node namespace with args and
// checks its exit code; it returns the output.
func runCleanup(t *testing.T, bin string, topo *netns.Topology, wantCode int, args ...string) string {
	t.Helper()
	args = append([]string{"--cleanup", "--netns", topo.Node.Path, "--log-format=console"}, args...)
	out, err := exec.Command(bin, args...).CombinedOutput()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	t.Logf("proxyd %s (exit code %d):\n%s", strings.Join(args, " "), code, out)
	if code != wantCode {
		t.Fatalf("proxyd %s exited with %d, want %d:\n%s", strings.Join(args, " "), code, wantCode, out)
	}
	return string(out)
}

// assertRemoved checks that a line of out says an object starting with
// object was removed.
func assertRemoved(t *testing.T, out, object string) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "\tremoved\t") && strings.Contains(line, `"object": "`+object) {
			return
		}
	}
	t.Fatalf("the output does not say %q was removed:\n%s", object, out)
}

// assertIdempotent runs the cleanup again: it must succeed and remove
// nothing.
func assertIdempotent(t *testing.T, bin string, topo *netns.Topology, args ...string) {
	t.Helper()
	out := runCleanup(t, bin, topo, 0, args...)
	if strings.Contains(out, "\tremoved\t") {
		t.Fatalf("a second cleanup removed something:\n%s", out)
	}
}

// assertNoState checks, with proxyd's scans and with the tools an operator
// would use, that the namespace holds nothing of lbkit's.
func assertNoState(t *testing.T, topo *netns.Topology, pinPaths ...string) {
	t.Helper()
	cfg := scanConfig(topo)
	for _, p := range pinPaths {
		cfg.Lbkit.EBPF.PinPath = p
	}
	for kind, found := range scanKinds(t, cfg) {
		if len(found) > 0 {
			t.Errorf("%s state left: %q", kind, found)
		}
	}
	for _, tool := range [][]string{{"iptables-legacy-save"}, {"iptables-nft-save"}, {"nft", "list", "ruleset"}} {
		if _, err := exec.LookPath(tool[0]); err != nil {
			continue
		}
		var out []byte
		err := nsutil.Do(topo.Node.Path, func() error {
			var err error
			out, err = exec.Command(tool[0], tool[1:]...).CombinedOutput()
			return err
		})
		if err != nil {
			t.Fatalf("%s: %v\n%s", tool[0], err, out)
		}
		if strings.Contains(strings.ToLower(string(out)), "lbkit") {
			t.Errorf("%s in the node namespace still shows lbkit state:\n%s", strings.Join(tool, " "), out)
		}
	}
}

// assertVIPDead checks that the VIP no longer answers.
func assertVIPDead(t *testing.T, topo *netns.Topology) {
	t.Helper()
	if err := requestVIP(topo); err == nil {
		t.Fatal("the VIP still answers after --cleanup")
	}
}

// requestVIP sends one request to cleanupVIP from the client.
func requestVIP(topo *netns.Topology) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := topo.Client.Request(ctx, "tcp", cleanupVIP)
	return err
}

// scanConfig is the configuration of a proxyd programming the node
// namespace, with defaults.
func scanConfig(topo *netns.Topology) *config.Config {
	cfg := config.Default()
	cfg.Lbkit.Netns = topo.Node.Path
	return cfg
}

// scanKinds scans every kind of state; a kind that cannot exist here is
// left out.
func scanKinds(t *testing.T, cfg *config.Config) map[string][]string {
	t.Helper()
	kinds, err := stateKinds(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, k := range kinds {
		found, err := k.scan(context.Background())
		if errors.Is(err, errNothingToScan) {
			continue
		}
		if err != nil {
			t.Fatalf("scan %s: %v", k.name, err)
		}
		out[k.name] = found
	}
	return out
}

// holdOwnedTable creates an nftables table with the owner flag in the
// namespace, from an `nft -i` process that keeps it: only that process may
// change or delete the table, so a cleanup from another process finds it
// and cannot remove it. The table goes when the test ends.
func holdOwnedTable(t *testing.T, nsPath, name string) {
	t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skipf("no nft command (install the nftables package): %v", err)
	}
	cmd := exec.Command("nft", "-i")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := nsutil.Do(nsPath, cmd.Start); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	})
	if _, err := io.WriteString(stdin, "add table ip "+name+" { flags owner; }\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the owned table", func() bool {
		found, err := nftables.Scan(context.Background(), nftables.ScanOptions{Netns: nsPath, Table: name})
		return err == nil && len(found) > 0
	})
}
