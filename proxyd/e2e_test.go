package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lbkit/lbkit/lb"
)

// e2eWait bounds how long the end-to-end test waits for proxyd to reach a
// state (it polls; nothing asserts how fast that happens).
const e2eWait = 60 * time.Second

// TestEndToEnd runs the real proxyd binary in userspace mode (no privileges
// needed) with real backends and a real client on 127.0.0.1: balanced
// traffic, hot reload of the services file, a bad edit kept out, /metrics,
// /healthz, /livez, explain, and a clean SIGTERM exit.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the proxyd binary")
	}
	bin := buildProxyd(t)
	backends := []string{serveName(t, "b0"), serveName(t, "b1"), serveName(t, "b2")}
	udpBackend := serveUDPName(t, "u0")
	web, dns := freeAddr(t, "tcp"), freeAddr(t, "udp")
	metricsAddr, healthzAddr := freeAddr(t, "tcp"), freeAddr(t, "tcp")

	dir := t.TempDir()
	servicesFile := filepath.Join(dir, "services.yaml")
	writeServices(t, servicesFile, web, dns, backends, udpBackend)

	p := startProc(t, exec.Command(bin, "--mode=userspace", "--services", servicesFile,
		"--metrics-bind-address", metricsAddr, "--healthz-bind-address", healthzAddr,
		"--hostname-override", "e2e-node", "--log-format=console", "--min-sync-period=0"))
	logs := p.logs

	// Balanced traffic: rr over three backends is exact.
	waitFor(t, "web frontend to answer", func() bool { _, err := ask("tcp", web); return err == nil })
	counts := map[string]int{}
	for range 30 {
		name, err := ask("tcp", web)
		if err != nil {
			t.Fatal(err)
		}
		counts[name]++
	}
	if counts["b0"] != 10 || counts["b1"] != 10 || counts["b2"] != 10 {
		t.Fatalf("rr spread over 30 connections: %v, want 10 each", counts)
	}
	if name, err := ask("udp", dns); err != nil || name != "u0" {
		t.Fatalf("udp frontend: %q, %v", name, err)
	}

	// Hot reload: drop b2; only b0 and b1 answer afterwards.
	writeServices(t, servicesFile, web, dns, backends[:2], udpBackend)
	waitFor(t, "b2 to leave the rotation", func() bool {
		for range 6 {
			if name, _ := ask("tcp", web); name == "b2" || name == "" {
				return false
			}
		}
		return true
	})

	// A bad edit is rejected, counted, and the last good state keeps serving.
	if err := os.WriteFile(servicesFile, []byte("services:\n  - name: web\n    frontends:\n      - {ip: 127.0.0.1, port: 0}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the bad edit to be counted", func() bool {
		return metricValue(t, metricsAddr, `lbkit_config_reload_errors_total{source="file"}`) >= 1
	})
	if name, err := ask("tcp", web); err != nil || (name != "b0" && name != "b1") {
		t.Fatalf("after a bad edit the last good state must serve: %q, %v", name, err)
	}
	if l := logs.String(); !strings.Contains(l, `"line": 4`) || !strings.Contains(l, "services[0].frontends[0].port") {
		t.Fatalf("the bad edit's log does not name file and line:\n%s", logs.String())
	}

	// Metrics under kube-proxy's names.
	for _, m := range []string{
		"kubeproxy_sync_proxy_rules_duration_seconds_count",
		"kubeproxy_sync_full_proxy_rules_duration_seconds_count",
		"kubeproxy_sync_partial_proxy_rules_duration_seconds_count",
		"kubeproxy_network_programming_duration_seconds_count",
		"kubeproxy_sync_proxy_rules_service_changes_total",
		"kubeproxy_sync_proxy_rules_endpoint_changes_total",
		"kubeproxy_sync_proxy_rules_last_timestamp_seconds",
	} {
		if v := metricValue(t, metricsAddr, m); v < 1 {
			t.Errorf("metric %s = %v, want >= 1", m, v)
		}
	}
	if v := metricValue(t, metricsAddr, `lbkit_services_programmed{datapath="userspace"}`); v != 2 {
		t.Errorf("lbkit_services_programmed = %v, want 2", v)
	}

	// Health.
	var hz struct {
		Status   string
		NodeName string
		Services int
	}
	code := getJSON(t, "http://"+healthzAddr+"/healthz", &hz)
	if code != 200 || hz.Status != "ok" || hz.NodeName != "e2e-node" || hz.Services != 2 {
		t.Fatalf("/healthz: %d %+v", code, hz)
	}
	if code := getJSON(t, "http://"+healthzAddr+"/livez", &hz); code != 200 {
		t.Fatalf("/livez: %d", code)
	}

	// explain reads the live datapath.
	out, err := exec.Command(bin, "explain", web+"/tcp", "--server", metricsAddr).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "scheduler  rr") || !strings.Contains(string(out), backends[1]) ||
		strings.Contains(string(out), backends[2]) {
		t.Fatalf("explain: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "explain", web, "-o", "json", "--server", metricsAddr).Output()
	var in lb.Inspection
	if err != nil || json.Unmarshal(out, &in) != nil || len(in.Backends) != 2 || in.Service != "web" {
		t.Fatalf("explain -o json: %v\n%s", err, out)
	}

	// SIGTERM: a clean exit.
	p.stop(t)
	for _, want := range []string{"proxyd started", "synced", "proxyd stopping"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

// built is the proxyd binary this test binary built, once, for every test.
var built struct {
	once     sync.Once
	dir, bin string
	err      error
	noGo     bool // no go command: the tests that need the binary skip
}

// buildProxyd returns the path of a proxyd binary built from this tree;
// the first call builds it, into a directory TestMain removes.
func buildProxyd(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		gobin, err := exec.LookPath("go")
		if err != nil {
			built.err, built.noGo = fmt.Errorf("the go command is not on PATH, cannot build proxyd: %w", err), true
			return
		}
		if built.dir, err = os.MkdirTemp("", "proxyd-test-"); err != nil {
			built.err = err
			return
		}
		built.bin = filepath.Join(built.dir, "proxyd")
		if out, err := exec.Command(gobin, "build", "-o", built.bin, ".").CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if built.noGo {
		t.Skip(built.err)
	}
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin
}

// TestMain removes the proxyd binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

func writeServices(t *testing.T, path, web, dns string, backends []string, udpBackend string) {
	t.Helper()
	host := func(a string) (string, string) { h, p, _ := net.SplitHostPort(a); return h, p }
	var b strings.Builder
	wh, wp := host(web)
	fmt.Fprintf(&b, "services:\n  - name: web\n    scheduler: rr\n    frontends:\n      - {ip: %s, port: %s}\n    endpoints:\n", wh, wp)
	for _, be := range backends {
		h, p := host(be)
		fmt.Fprintf(&b, "      - {ip: %s, port: %s}\n", h, p)
	}
	dh, dp := host(dns)
	uh, up := host(udpBackend)
	fmt.Fprintf(&b, "  - name: dns\n    frontends:\n      - {ip: %s, port: %s, protocol: udp}\n    endpoints:\n      - {ip: %s, port: %s}\n", dh, dp, uh, up)
	// Atomic replace, as editors and ConfigMap mounts do.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// serveName starts a TCP server on 127.0.0.1 answering "<name>\n".
func serveName(t *testing.T, name string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, name)
			c.Close()
		}
	}()
	return ln.Addr().String()
}

func serveUDPName(t *testing.T, name string) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(name+"\n"), from)
		}
	}()
	return pc.LocalAddr().String()
}

// freeAddr returns a 127.0.0.1 address with a port free at the time.
func freeAddr(t *testing.T, network string) string {
	t.Helper()
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		return pc.LocalAddr().String()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func ask(network, addr string) (string, error) {
	c, err := net.DialTimeout(network, addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if network == "udp" {
		if _, err := c.Write([]byte("ping")); err != nil {
			return "", err
		}
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(e2eWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// metricValue scrapes /metrics and returns the value of the series whose
// name (with labels, as exposed) is series; -1 when absent.
func metricValue(t *testing.T, addr, series string) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	return resp.StatusCode
}

// safeBuffer is a bytes.Buffer safe for a process's concurrent writes.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
