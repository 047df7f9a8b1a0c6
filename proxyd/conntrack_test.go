package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/lbkit/lbkit/proxyd/config"
)

func TestConntrackSysctls(t *testing.T) {
	c := config.ConntrackConfig{MaxPerCore: 32768, Min: 131072,
		TCPEstablishedTimeout: config.D(24 * time.Hour), TCPCloseWaitTimeout: config.D(time.Hour)}
	got := conntrackSysctls(c, 2)
	want := []sysctl{
		{"net/netfilter/nf_conntrack_max", 131072}, // 2 x 32768 < min
		{"net/netfilter/nf_conntrack_tcp_timeout_established", 86400},
		{"net/netfilter/nf_conntrack_tcp_timeout_close_wait", 3600},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if got := conntrackSysctls(c, 8); got[0].value != 8*32768 {
		t.Fatalf("8 CPUs: nf_conntrack_max %d, want %d", got[0].value, 8*32768)
	}
	if got := conntrackSysctls(config.ConntrackConfig{}, 8); len(got) != 0 {
		t.Fatalf("zero config must leave everything alone, got %v", got)
	}
}

// TestApplySysctls writes into a scratch directory standing in for
// /proc/sys (never the real one): a differing value is written, an equal one
// left, and a missing or unwritable file only warns.
func TestApplySysctls(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "net/netfilter")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, v string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("nf_conntrack_max", "65536")
	write("nf_conntrack_tcp_timeout_established", "86400")
	applySysctls(root, "", []sysctl{
		{"net/netfilter/nf_conntrack_max", 131072},
		{"net/netfilter/nf_conntrack_tcp_timeout_established", 86400},
		{"net/netfilter/absent/nf_conntrack_tcp_timeout_close_wait", 3600},
	}, zap.NewNop())
	if b, _ := os.ReadFile(filepath.Join(dir, "nf_conntrack_max")); string(b) != "131072" {
		t.Fatalf("nf_conntrack_max = %q, want 131072", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "nf_conntrack_tcp_timeout_established")); string(b) != "86400\n" {
		t.Fatalf("an equal value was rewritten: %q", b)
	}
}

// TestConntrackMaxPerCoreZeroLeavesMaxAlone: --conntrack-max-per-core=0
// leaves nf_conntrack_max as it is, whatever conntrack.min says (as in
// kube-proxy, and as the flag's help promises).
func TestConntrackMaxPerCoreZeroLeavesMaxAlone(t *testing.T) {
	c := config.ConntrackConfig{MaxPerCore: 0, Min: 131072, TCPEstablishedTimeout: config.D(time.Hour)}
	for _, s := range conntrackSysctls(c, 4) {
		if s.key == "net/netfilter/nf_conntrack_max" {
			t.Fatalf("maxPerCore 0 with min %d still sets nf_conntrack_max = %d", c.Min, s.value)
		}
	}
	if got := conntrackSysctls(c, 4); len(got) != 1 {
		t.Fatalf("got %v, want only the established timeout", got)
	}
}

// TestApplySysctlsReadOnlySaidOnceAtInfo: sysctls that are read-only here
// (nf_conntrack_max outside the initial network namespace) are left alone
// and said once, at info level, not warned about one by one. It uses a
// scratch directory standing in for /proc/sys, never the real one.
func TestApplySysctlsReadOnlySaidOnceAtInfo(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "net/netfilter")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"nf_conntrack_max", "nf_conntrack_tcp_timeout_established"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("65536\n"), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	core, logs := observer.New(zapcore.DebugLevel)
	applySysctls(root, "", []sysctl{
		{"net/netfilter/nf_conntrack_max", 131072},
		{"net/netfilter/nf_conntrack_tcp_timeout_established", 86400},
	}, zap.New(core))
	if b, _ := os.ReadFile(filepath.Join(dir, "nf_conntrack_max")); string(b) != "65536\n" {
		t.Fatalf("a read-only sysctl was written: %q", b)
	}
	entries := logs.All()
	if len(entries) != 1 || entries[0].Level != zapcore.InfoLevel {
		t.Fatalf("logged %v; want one info line for both read-only sysctls", entries)
	}
	if got := entries[0].ContextMap()["sysctls"]; len(got.([]any)) != 2 {
		t.Fatalf("the info line names %v, want both sysctls", got)
	}
}
