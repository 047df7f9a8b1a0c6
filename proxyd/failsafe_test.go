package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestFailingDatapathIsQuietAndUnhealthy runs the real proxyd in nftables
// mode as an unprivileged user, so that every sync fails with "operation
// not permitted" (the first one included): the loop must back off instead
// of retrying at once, log the repeated error once, answer /healthz with
// 503 because nothing is programmed, and stop at once on SIGTERM.
func TestFailingDatapathIsQuietAndUnhealthy(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the proxyd binary")
	}
	dir := t.TempDir()
	// nobody must be able to reach the binary and the services file.
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "proxyd")
	exe, err := os.ReadFile(buildProxyd(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, exe, 0o755); err != nil {
		t.Fatal(err)
	}
	services := filepath.Join(dir, "services.yaml")
	body := "services:\n  - name: web\n    frontends:\n      - {ip: 198.18.100.10, port: 80}\n    endpoints:\n      - {ip: 198.18.2.10, port: 8080}\n"
	if err := os.WriteFile(services, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	metricsAddr, healthzAddr := freeAddr(t, "tcp"), freeAddr(t, "tcp")
	cmd := exec.Command(bin, "--mode=nftables", "--services", services,
		"--metrics-bind-address", metricsAddr, "--healthz-bind-address", healthzAddr,
		"--hostname-override", "node-a", "--log-format=console")
	if os.Geteuid() == 0 {
		// Drop every privilege: the datapath can then program nothing,
		// anywhere (and this test never touches the root namespace).
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	p := startProc(t, cmd)
	logs := p.logs

	// Three failed syncs take three seconds with a 1 s, 2 s backoff; the
	// old loop ran hundreds a second.
	waitFor(t, "three failed syncs", func() bool {
		return metricValue(t, metricsAddr, `lbkit_sync_errors_total{datapath="nftables",kind="datapath"}`) >= 3
	})
	if n := strings.Count(logs.String(), "sync failed"); n != 1 {
		t.Errorf("%d failures of the same error logged %d times, want once", 3, n)
	}
	if n := strings.Count(logs.String(), "\n"); n > 30 {
		t.Errorf("proxyd wrote %d log lines in three failed syncs", n)
	}

	resp, err := http.Get("http://" + healthzAddr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var report struct {
		Status, Reason, LastError string
	}
	if err := json.Unmarshal(raw, &report); err != nil {
		t.Fatalf("healthz body %q: %v", raw, err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(report.Reason, "nothing programmed yet") || report.LastError == "" {
		t.Errorf("healthz with nothing programmed: %d %s", resp.StatusCode, raw)
	}

	p.stop(t)
	if n := strings.Count(logs.String(), "context canceled"); n > 1 {
		t.Errorf("shutdown logged %d context-canceled errors", n)
	}
}

// TestWaitsForAMissingServicesFile: a services file that is not there yet
// (a volume still being mounted) is waited for with /healthz at 503 naming
// it, and served as soon as it appears.
func TestWaitsForAMissingServicesFile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the proxyd binary")
	}
	bin := buildProxyd(t)
	backend := serveName(t, "b0")
	web, dns := freeAddr(t, "tcp"), freeAddr(t, "udp")
	metricsAddr, healthzAddr := freeAddr(t, "tcp"), freeAddr(t, "tcp")
	services := filepath.Join(t.TempDir(), "services.yaml")
	p := startProc(t, exec.Command(bin, "--mode=userspace", "--services", services,
		"--metrics-bind-address", metricsAddr, "--healthz-bind-address", healthzAddr,
		"--hostname-override", "node-a", "--log-format=console", "--min-sync-period=0"))
	logs := p.logs
	healthz := func() (int, string) {
		resp, err := http.Get("http://" + healthzAddr + "/healthz")
		if err != nil {
			return 0, ""
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	waitFor(t, "/healthz to answer", func() bool { code, _ := healthz(); return code != 0 })
	if code, body := healthz(); code != http.StatusServiceUnavailable || !strings.Contains(body, "services-file") {
		t.Fatalf("healthz while the file is missing: %d %s", code, body)
	}
	if !strings.Contains(logs.String(), "does not exist; waiting for it") {
		t.Fatalf("the log does not say the file is waited for:\n%s", logs.String())
	}
	writeServices(t, services, web, dns, []string{backend}, serveUDPName(t, "u0"))
	waitFor(t, "the service to answer once the file appears", func() bool { name, _ := ask("tcp", web); return name == "b0" })
	waitFor(t, "/healthz to turn ok", func() bool { code, _ := healthz(); return code == http.StatusOK })
}
