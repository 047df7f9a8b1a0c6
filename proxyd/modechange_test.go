package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lbkit/lbkit/internal/netns"
)

// modeRun is one proxyd mode with its extra flags.
type modeRun struct {
	mode  string
	flags []string
	// lbkit is the lbkit: section of a config file, if any.
	lbkit string
	// leftover reports whether the mode's kernel state is in the node
	// namespace, reading it back with the tools an operator would use.
	leftover func(t *testing.T, node *netns.Host) bool
}

var (
	nftablesRun = modeRun{mode: "nftables", leftover: func(t *testing.T, node *netns.Host) bool {
		return strings.Contains(execIn(t, node, "nft", "list", "tables"), "lbkit")
	}}
	iptablesNftRun = modeRun{mode: "iptables", flags: []string{"--iptables-flavour=nft"}, leftover: func(t *testing.T, node *netns.Host) bool {
		return strings.Contains(execIn(t, node, "iptables-nft-save"), "LBKIT")
	}}
	iptablesLegacyRun = modeRun{mode: "iptables", flags: []string{"--iptables-flavour=legacy"}, leftover: func(t *testing.T, node *netns.Host) bool {
		return strings.Contains(execIn(t, node, "iptables-legacy-save"), "LBKIT")
	}}
)

func execIn(t *testing.T, h *netns.Host, name string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not found: %v", name, err)
	}
	out, err := h.Exec(context.Background(), name, args...)
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// TestModeChangeRemovesOldDatapath runs the real proxyd in one mode, stops
// it (kernel state stays, as on a restart), deletes a service from the
// file and starts proxyd in another mode: the new mode serves, the old
// mode's state is gone (it used to keep serving the deleted service), and
// the log says what was removed.
func TestModeChangeRemovesOldDatapath(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the proxyd binary")
	}
	netns.Require(t)
	bin := buildProxyd(t)
	for _, c := range []struct{ from, to modeRun }{
		{nftablesRun, iptablesLegacyRun},
		{iptablesNftRun, nftablesRun},
		{iptablesLegacyRun, iptablesNftRun},
	} {
		name := fmt.Sprintf("%s%v-to-%s%v", c.from.mode, c.from.flags, c.to.mode, c.to.flags)
		t.Run(name, func(t *testing.T) { modeChange(t, bin, c.from, c.to) })
	}
}

func modeChange(t *testing.T, bin string, from, to modeRun) {
	topo := netns.New(t, netns.Options{Backends: 2})
	web := netip.MustParseAddrPort("198.18.100.10:80")
	gone := netip.MustParseAddrPort("198.18.100.11:80")
	dir := t.TempDir()
	services := filepath.Join(dir, "services.yaml")
	entry := func(name string, vip netip.AddrPort) string {
		s := fmt.Sprintf("  - name: %s\n    frontends:\n      - {ip: %s, port: %d}\n    endpoints:\n", name, vip.Addr(), vip.Port())
		for _, b := range topo.Backends {
			s += fmt.Sprintf("      - {ip: %s, port: %d}\n", b.IPv4, netns.DefaultPort)
		}
		return s
	}
	write := func(body string) {
		if err := os.WriteFile(services, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("services:\n" + entry("web", web) + entry("gone", gone))
	t.Cleanup(func() {
		// Whatever the test did, leave nothing programmed in the namespace.
		_ = exec.Command(bin, "--cleanup", "--netns", topo.Node.Path).Run()
	})
	request := func(vip netip.AddrPort) error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := topo.Client.Request(ctx, "tcp", vip)
		return err
	}

	first, _ := startMode(t, bin, from, topo, services)
	waitFor(t, "both VIPs to answer in "+from.mode, func() bool { return request(web) == nil && request(gone) == nil })
	first.stop(t)
	if !from.leftover(t, topo.Node) {
		t.Fatalf("%s left no state after a normal stop; the test cannot show its removal", from.mode)
	}

	write("services:\n" + entry("web", web))
	second, logs := startMode(t, bin, to, topo, services)
	waitFor(t, "the old mode's state to be removed", func() bool { return !from.leftover(t, topo.Node) })
	if err := request(web); err != nil {
		t.Fatalf("web through %s: %v", to.mode, err)
	}
	if !to.leftover(t, topo.Node) {
		t.Fatalf("%s programmed nothing", to.mode)
	}
	if err := request(gone); err == nil {
		t.Fatal("the deleted service still answers after the mode change")
	}
	if !strings.Contains(logs.String(), "removed the state of a previous datapath") {
		t.Fatalf("the log does not say what was removed:\n%s", logs.String())
	}
	second.stop(t)
}

// startMode starts proxyd in mode m, programming the topology's node.
func startMode(t *testing.T, bin string, m modeRun, topo *netns.Topology, services string) (*proxydProc, *safeBuffer) {
	t.Helper()
	args := append([]string{"--mode", m.mode, "--netns", topo.Node.Path, "--services", services,
		"--metrics-bind-address", freeAddr(t, "tcp"), "--healthz-bind-address", "",
		"--hostname-override", "node-a", "--log-format=console", "--min-sync-period=0"}, m.flags...)
	if m.lbkit != "" {
		cfg := filepath.Join(t.TempDir(), "config.yaml")
		body := "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nlbkit:\n" + m.lbkit
		if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config", cfg)
	}
	p := startProc(t, exec.Command(bin, args...))
	return p, p.logs
}

// TestModeChangeFromEBPF: eBPF programs pinned by an earlier proxyd (so
// they kept serving after it exited) used to stay attached after a switch
// to nftables, stealing its traffic. In a private mount namespace with its
// own bpffs.
func TestModeChangeFromEBPF(t *testing.T) {
	bin := proxydWithPrivateBPFFS(t)
	if bin == "" {
		return
	}
	for _, attach := range []string{"tc", "xdp"} {
		t.Run(attach, func(t *testing.T) {
			pins := "/sys/fs/bpf/lbkit-modechange-" + attach
			ebpfRun := modeRun{mode: "ebpf", flags: []string{"--ebpf-attach=" + attach, "--ebpf-pin-path=" + pins},
				lbkit: "  ebpf:\n    xdpMode: generic\n",
				leftover: func(t *testing.T, _ *netns.Host) bool {
					_, err := os.Stat(pins)
					return err == nil
				}}
			modeChange(t, bin, ebpfRun, nftablesRun)
		})
	}
}
