package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestTopologyHintsWithRealTraffic: endpoints hinted for nodes (as an
// EndpointSlice's hints.forNodes) steer this node's connections to its own
// endpoint, through the real proxyd and real backends.
func TestTopologyHintsWithRealTraffic(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the proxyd binary")
	}
	bin := buildProxyd(t)
	b0, b1 := serveName(t, "b0"), serveName(t, "b1")
	web := freeAddr(t, "tcp")
	host := func(a string) (string, string) { h, p, _ := net.SplitHostPort(a); return h, p }
	wh, wp := host(web)
	h0, p0 := host(b0)
	h1, p1 := host(b1)
	body := fmt.Sprintf(`services:
  - name: web
    frontends: [{ip: %s, port: %s}]
    endpoints:
      - {ip: %s, port: %s, forNodes: [node-a]}
      - {ip: %s, port: %s, forNodes: [node-b]}
`, wh, wp, h0, p0, h1, p1)
	services := filepath.Join(t.TempDir(), "services.yaml")
	if err := os.WriteFile(services, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	for node, want := range map[string]string{"node-a": "b0", "node-b": "b1"} {
		p := startProc(t, exec.Command(bin, "--mode=userspace", "--services", services,
			"--metrics-bind-address", freeAddr(t, "tcp"), "--healthz-bind-address", "",
			"--hostname-override", node, "--log-format=console", "--min-sync-period=0"))
		waitFor(t, "the frontend to answer", func() bool { _, err := ask("tcp", web); return err == nil })
		for range 20 {
			if name, err := ask("tcp", web); err != nil || name != want {
				t.Fatalf("on %s: a connection went to %q (%v), want %s: the endpoint hinted for this node", node, name, err, want)
			}
		}
		p.stop(t)
	}
}
