package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lbkit/lbkit/internal/netns"
	"github.com/lbkit/lbkit/internal/testenv"
)

// TestEndToEndKernelModes runs the real proxyd binary in each landed kernel
// mode, programming a node namespace it does not live in (--netns), and
// sends real traffic from a client namespace through the VIP. iptables and
// nftables must keep forwarding after proxyd exits (kernel state is left
// programmed) until proxyd --cleanup removes it.
func TestEndToEndKernelModes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the proxyd binary")
	}
	netns.Require(t)
	bin := buildProxyd(t)
	for _, mode := range []string{"iptables", "nftables", "ebpf"} {
		t.Run(mode, func(t *testing.T) { kernelE2E(t, bin, mode) })
	}
}

func kernelE2E(t *testing.T, bin, mode string) {
	if mode == "iptables" {
		testenv.RequireTool(t, "iptables", "iptables")
	}
	topo := netns.New(t, netns.Options{Backends: 3})
	vip := netip.AddrPortFrom(netip.MustParseAddr("198.18.100.10"), 80)
	dir := t.TempDir()
	var eps strings.Builder
	for _, b := range topo.Backends {
		fmt.Fprintf(&eps, "      - {ip: %s, port: %d}\n", b.IPv4, netns.DefaultPort)
	}
	services := filepath.Join(dir, "services.yaml")
	body := fmt.Sprintf("services:\n  - name: web\n    frontends:\n      - {ip: %s, port: %d}\n    endpoints:\n%s", vip.Addr(), vip.Port(), eps.String())
	if err := os.WriteFile(services, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	// The eBPF datapath pins nothing here: this machine has no bpffs.
	cfgFile := filepath.Join(dir, "config.yaml")
	cfg := "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nlbkit:\n  ebpf:\n    pinPath: \"\"\n"
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	metricsAddr := freeAddr(t, "tcp")
	args := []string{"--config", cfgFile, "--mode", mode, "--netns", topo.Node.Path, "--services", services,
		"--metrics-bind-address", metricsAddr, "--healthz-bind-address", "",
		"--hostname-override", "node-a", "--log-format=console", "--min-sync-period=0"}
	var logs safeBuffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		// Whatever the test did, leave nothing programmed in the namespace.
		_ = exec.Command(bin, "--cleanup", "--mode", mode, "--netns", topo.Node.Path).Run()
		if t.Failed() {
			t.Logf("proxyd output:\n%s", logs.String())
		}
	})

	request := func() (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		r, err := topo.Client.Request(ctx, "tcp", vip)
		return r.Backend, err
	}
	waitFor(t, "the VIP to answer", func() bool { _, err := request(); return err == nil })
	counts := map[string]int{}
	for range 300 {
		name, err := request()
		if err != nil {
			t.Fatal(err)
		}
		counts[name]++
	}
	for _, b := range topo.Backends {
		if counts[b.Name] < 60 {
			t.Fatalf("%s mode: spread over 300 connections %v; each backend needs at least 20%%", mode, counts)
		}
	}
	out, err := exec.Command(bin, "explain", vip.String(), "--server", metricsAddr).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "datapath   "+mode) || !strings.Contains(string(out), "backends   3") {
		t.Fatalf("explain: %v\n%s", err, out)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err != nil {
		t.Fatalf("proxyd exited with %v after SIGTERM", err)
	}
	if mode == "nftables" || mode == "iptables" {
		if _, err := request(); err != nil {
			t.Fatalf("after proxyd exited the kernel datapath must keep forwarding: %v", err)
		}
	}
	if out, err := exec.Command(bin, "--cleanup", "--mode", mode, "--netns", topo.Node.Path).CombinedOutput(); err != nil {
		t.Fatalf("--cleanup: %v\n%s", err, out)
	}
	if _, err := request(); err == nil {
		t.Fatal("the VIP still answers after --cleanup")
	}
}
