package config

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// runFlags parses args on a fresh flag set and resolves them.
func runFlags(t *testing.T, args ...string) (*Flags, *Config, []string, error) {
	t.Helper()
	fs := flag.NewFlagSet("proxyd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := NewFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	c, warnings, err := f.Resolve(fs)
	return f, c, warnings, err
}

// mustResolve is runFlags that fails the test on an error.
func mustResolve(t *testing.T, args ...string) (*Flags, *Config) {
	t.Helper()
	f, c, _, err := runFlags(t, args...)
	if err != nil {
		t.Fatalf("resolve %q: %v", args, err)
	}
	return f, c
}

func marshal(t *testing.T, c *Config) string {
	t.Helper()
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFlagsDefaultsWithoutFile(t *testing.T) {
	f, c := mustResolve(t)
	if got, want := marshal(t, c), marshal(t, Default()); got != want {
		t.Errorf("no file, no flags:\n%s\nwant Default():\n%s", got, want)
	}
	if f.ConfigFile != "" || f.WriteConfigTo != "" || f.Cleanup {
		t.Errorf("action flags set without being given: %+v", f)
	}
}

func TestFlagsOverrideFile(t *testing.T) {
	_, c := mustResolve(t,
		"--config", "testdata/full.yaml",
		"--mode", "ipvs",
		"--iptables-sync-period", "10s",
		"--masquerade-all=false", // the default value, still overrides the file's true
		"--nodeport-addresses", "198.18.1.0/24, 2001:2:0:1::/64",
		"--ipvs-scheduler", "sh",
		"-v", "3",
		"--log-format", "json",
		"--conntrack-min", "0",
		"--hostname-override", " Worker-9 ",
		"--services", "/srv/services.yaml",
	)
	checks := []struct {
		field     string
		got, want any
	}{
		// Given on the command line: the flag wins.
		{"mode", c.Mode, "ipvs"},
		{"iptables.syncPeriod", c.IPTables.SyncPeriod.Duration, 10 * time.Second},
		{"nftables.syncPeriod", c.NFTables.SyncPeriod.Duration, 10 * time.Second},
		{"nftables.masqueradeAll", c.NFTables.MasqueradeAll, false},
		{"nodePortAddresses", strings.Join(c.NodePortAddresses, ","), "198.18.1.0/24,2001:2:0:1::/64"},
		{"ipvs.scheduler", c.IPVS.Scheduler, "sh"},
		{"lbkit.verbosity", c.Lbkit.Verbosity, 3},
		{"lbkit.logFormat", c.Lbkit.LogFormat, "json"},
		{"conntrack.min", c.Conntrack.Min, int32(0)},
		{"hostnameOverride", c.HostnameOverride, "worker-9"},
		{"lbkit.services", c.Lbkit.Services, "/srv/services.yaml"},
		// Not given: the file's value stays.
		{"clusterCIDR", c.ClusterCIDR, "10.244.0.0/16,fd00:10:244::/56"},
		{"ipvs.syncPeriod", c.IPVS.SyncPeriod.Duration, 45 * time.Second},
		{"iptables.minSyncPeriod", c.IPTables.MinSyncPeriod.Duration, 2 * time.Second},
		{"nftables.masqueradeBit", c.NFTables.MasqueradeBit, int32(12)},
		{"conntrack.maxPerCore", c.Conntrack.MaxPerCore, int32(65536)},
		{"metricsBindAddress", c.MetricsBindAddress, "198.18.0.3:10249"},
		{"clientConnection.kubeconfig", c.ClientConnection.Kubeconfig, "/var/lib/kube-proxy/kubeconfig.conf"},
		{"lbkit.netns", c.Lbkit.Netns, "/var/run/netns/lb"},
		{"iptables.localhostNodePorts", c.IPTables.LocalhostNodePorts, false},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.field, ch.got, ch.want)
		}
	}
}

func TestFlagsEveryOverrideWithoutFile(t *testing.T) {
	_, c := mustResolve(t,
		"--proxy-mode", "nftables",
		"--kubeconfig", "/etc/kubeconfig",
		"--service-proxy-name", "lbkit",
		"--netns", "/var/run/netns/x",
		"--cluster-cidr", "10.0.0.0/8",
		"--bind-address", "198.18.0.9",
		"--metrics-bind-address", "0.0.0.0",
		"--healthz-bind-address", "",
		"--masquerade-all",
		"--iptables-masquerade-bit", "9",
		"--iptables-localhost-nodeports=false",
		"--iptables-min-sync-period", "0s",
		"--ipvs-sync-period", "1m",
		"--ipvs-min-sync-period", "3s",
		"--ipvs-exclude-cidrs", "198.18.5.0/24",
		"--ipvs-exclude-cidrs", "198.18.6.0/24",
		"--ipvs-strict-arp",
		"--ipvs-tcp-timeout", "1m",
		"--ipvs-tcpfin-timeout", "2m",
		"--ipvs-udp-timeout", "3m",
		"--conntrack-max-per-core", "100",
		"--conntrack-tcp-timeout-established", "2h",
		"--conntrack-tcp-timeout-close-wait", "30s",
	)
	checks := []struct {
		field     string
		got, want any
	}{
		{"mode", c.Mode, "nftables"},
		{"clientConnection.kubeconfig", c.ClientConnection.Kubeconfig, "/etc/kubeconfig"},
		{"lbkit.netns", c.Lbkit.Netns, "/var/run/netns/x"},
		{"lbkit.serviceProxyName", c.Lbkit.ServiceProxyName, "lbkit"},
		{"clusterCIDR", c.ClusterCIDR, "10.0.0.0/8"},
		{"bindAddress", c.BindAddress, "198.18.0.9"},
		{"metricsBindAddress", c.MetricsBindAddress, "0.0.0.0:10249"},
		{"healthzBindAddress", c.HealthzBindAddress, ""},
		{"iptables.masqueradeAll", c.IPTables.MasqueradeAll, true},
		{"nftables.masqueradeAll", c.NFTables.MasqueradeAll, true},
		{"iptables.masqueradeBit", c.IPTables.MasqueradeBit, int32(9)},
		{"nftables.masqueradeBit", c.NFTables.MasqueradeBit, int32(9)},
		{"iptables.localhostNodePorts", c.IPTables.LocalhostNodePorts, false},
		// A flag's zero is literal, unlike a file's.
		{"iptables.minSyncPeriod", c.IPTables.MinSyncPeriod.Duration, time.Duration(0)},
		{"nftables.minSyncPeriod", c.NFTables.MinSyncPeriod.Duration, time.Duration(0)},
		{"ipvs.syncPeriod", c.IPVS.SyncPeriod.Duration, time.Minute},
		{"ipvs.minSyncPeriod", c.IPVS.MinSyncPeriod.Duration, 3 * time.Second},
		{"ipvs.excludeCIDRs", strings.Join(c.IPVS.ExcludeCIDRs, ","), "198.18.5.0/24,198.18.6.0/24"},
		{"ipvs.strictARP", c.IPVS.StrictARP, true},
		{"ipvs.tcpTimeout", c.IPVS.TCPTimeout.Duration, time.Minute},
		{"ipvs.tcpFinTimeout", c.IPVS.TCPFinTimeout.Duration, 2 * time.Minute},
		{"ipvs.udpTimeout", c.IPVS.UDPTimeout.Duration, 3 * time.Minute},
		{"conntrack.maxPerCore", c.Conntrack.MaxPerCore, int32(100)},
		{"conntrack.tcpEstablishedTimeout", c.Conntrack.TCPEstablishedTimeout.Duration, 2 * time.Hour},
		{"conntrack.tcpCloseWaitTimeout", c.Conntrack.TCPCloseWaitTimeout.Duration, 30 * time.Second},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.field, ch.got, ch.want)
		}
	}
}

func TestFlagsKubeProxyNames(t *testing.T) {
	fs := flag.NewFlagSet("proxyd", flag.ContinueOnError)
	NewFlags(fs)
	for _, name := range []string{
		"config", "write-config-to", "cleanup", "mode", "proxy-mode", "services", "kubeconfig",
		"hostname-override", "cluster-cidr", "bind-address", "metrics-bind-address",
		"healthz-bind-address", "nodeport-addresses", "masquerade-all", "ipvs-scheduler",
		"log-format", "v", "sync-period", "min-sync-period",
		"iptables-masquerade-bit", "iptables-localhost-nodeports", "iptables-sync-period",
		"iptables-min-sync-period", "ipvs-sync-period", "ipvs-min-sync-period",
		"ipvs-exclude-cidrs", "ipvs-strict-arp", "ipvs-tcp-timeout", "ipvs-tcpfin-timeout",
		"ipvs-udp-timeout", "conntrack-max-per-core", "conntrack-min",
		"conntrack-tcp-timeout-established", "conntrack-tcp-timeout-close-wait",
	} {
		if fs.Lookup(name) == nil {
			t.Errorf("flag --%s is not registered", name)
		}
	}
}

func TestFlagsHelpDefaultsAreDefault(t *testing.T) {
	fs := flag.NewFlagSet("proxyd", flag.ContinueOnError)
	NewFlags(fs)
	for name, want := range map[string]string{
		"iptables-sync-period":    "30s",
		"iptables-masquerade-bit": "14",
		"conntrack-min":           "131072",
		"metrics-bind-address":    "127.0.0.1:10249",
		"log-format":              "json",
		"ipvs-scheduler":          "rr",
	} {
		if got := fs.Lookup(name).DefValue; got != want {
			t.Errorf("--%s default shown as %q, want %q", name, got, want)
		}
	}
}

func TestFlagsWriteConfigToIsOnlyRecorded(t *testing.T) {
	out := filepath.Join(t.TempDir(), "written.yaml")
	f, _ := mustResolve(t, "--write-config-to", out, "--cleanup")
	if f.WriteConfigTo != out || !f.Cleanup {
		t.Errorf("WriteConfigTo = %q, Cleanup = %v; want %q, true", f.WriteConfigTo, f.Cleanup, out)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Resolve touched %s (stat: %v); writing it is the daemon's job", out, err)
	}
}

func TestFlagsInvalidValueNamesTheFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--iptables-masquerade-bit", "40"}, []string{
			"flag --iptables-masquerade-bit: iptables.masqueradeBit: invalid value 40: must be within 0-31",
			"flag --iptables-masquerade-bit: nftables.masqueradeBit: invalid value 40: must be within 0-31",
		}},
		{[]string{"--proxy-mode", "kernelspace"}, []string{
			`flag --proxy-mode: mode: invalid value "kernelspace": must be one of`,
		}},
		{[]string{"--nodeport-addresses", "198.18.0.0/24,bogus"}, []string{
			`flag --nodeport-addresses: nodePortAddresses[1]: invalid value "bogus": not a CIDR`,
		}},
		{[]string{"--config", "testdata/minimal.yaml", "--ipvs-min-sync-period", "1h"}, []string{
			"flag --ipvs-min-sync-period: ipvs.minSyncPeriod: invalid value 1h0m0s: must not exceed ipvs.syncPeriod (30s)",
		}},
		// A bad value from the file is still traced to its line.
		{[]string{"--config", "testdata/err-masquerade-bit.yaml", "--mode", "ipvs"}, []string{
			"testdata/err-masquerade-bit.yaml:4: iptables.masqueradeBit: invalid value 40",
		}},
	} {
		_, _, _, err := runFlags(t, tc.args...)
		if err == nil {
			t.Errorf("%q: no error", tc.args)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error\n%v\ndoes not contain\n%s", tc.args, err, w)
			}
		}
		var ve *ValidationError
		if !errors.As(err, &ve) || len(ve.Errors) != len(tc.want) {
			t.Errorf("%q: want a *ValidationError with %d problems, got %#v", tc.args, len(tc.want), err)
		}
	}
}

func TestFlagsFileErrors(t *testing.T) {
	_, _, _, err := runFlags(t, "--config", "testdata/err-unknown-nested.yaml", "--mode", "ipvs")
	want := `testdata/err-unknown-nested.yaml:7: unknown field "iptables.masqueradeBits"`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	_, _, _, err = runFlags(t, "--config", missing)
	if err == nil || !strings.Contains(err.Error(), missing) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: got %v, want an os.ErrNotExist naming %s", err, missing)
	}
}

func TestFlagsWarningsPassThrough(t *testing.T) {
	_, _, warnings, err := runFlags(t, "--config", "testdata/json.json")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`testdata/json.json:16: field "oomScoreAdj" accepted but ignored by lbkit`}
	if !slices.Equal(warnings, want) {
		t.Errorf("warnings = %q, want %q", warnings, want)
	}
}

func TestFlagsBadSyntaxIsRejectedByParse(t *testing.T) {
	for _, args := range [][]string{
		{"--conntrack-min", "many"},
		{"--conntrack-min", "4294967296"},
		{"--iptables-sync-period", "30"},
		{"--masquerade-all=maybe"},
	} {
		fs := flag.NewFlagSet("proxyd", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		NewFlags(fs)
		if err := fs.Parse(args); err == nil {
			t.Errorf("%q parsed without error", args)
		}
	}
}

func TestFlagsResolveNeedsParsedFlagSet(t *testing.T) {
	fs := flag.NewFlagSet("proxyd", flag.ContinueOnError)
	f := NewFlags(fs)
	if _, _, err := f.Resolve(fs); err == nil {
		t.Error("Resolve on an unparsed flag set: no error")
	}
}

func TestFlagsBindAddressFamily(t *testing.T) {
	// IPv6 bind address, no server address given: kube-proxy's IPv6 defaults.
	_, c := mustResolve(t, "--bind-address", "2001:2::1")
	if c.HealthzBindAddress != "[::]:10256" || c.MetricsBindAddress != "[::1]:10249" {
		t.Errorf("healthz %q metrics %q, want [::]:10256 [::1]:10249", c.HealthzBindAddress, c.MetricsBindAddress)
	}
	// A server address given by flag or file is kept.
	_, c = mustResolve(t, "--bind-address", "2001:2::1", "--metrics-bind-address", "[2001:2::1]:9000")
	if c.HealthzBindAddress != "[::]:10256" || c.MetricsBindAddress != "[2001:2::1]:9000" {
		t.Errorf("healthz %q metrics %q, want [::]:10256 [2001:2::1]:9000", c.HealthzBindAddress, c.MetricsBindAddress)
	}
	_, c = mustResolve(t, "--config", "testdata/full.yaml", "--bind-address", "2001:2::3")
	if c.HealthzBindAddress != "0.0.0.0:10256" || c.MetricsBindAddress != "198.18.0.3:10249" {
		t.Errorf("file's addresses replaced: healthz %q metrics %q", c.HealthzBindAddress, c.MetricsBindAddress)
	}
	// The file left them out: they follow the flag's family.
	_, c = mustResolve(t, "--config", "testdata/minimal.yaml", "--bind-address", "::")
	if c.HealthzBindAddress != "[::]:10256" || c.MetricsBindAddress != "[::1]:10249" {
		t.Errorf("healthz %q metrics %q, want IPv6 defaults", c.HealthzBindAddress, c.MetricsBindAddress)
	}
}

func TestFlagsSyncPeriodFollowsActiveMode(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		section func(*Config) SyncConfig
	}{
		{[]string{"--mode", "userspace"}, func(c *Config) SyncConfig { return c.Lbkit.Userspace.SyncConfig }},
		{[]string{"--mode", "ebpf"}, func(c *Config) SyncConfig { return c.Lbkit.EBPF.SyncConfig }},
		{[]string{"--mode", "ipvs"}, func(c *Config) SyncConfig { return SyncConfig{c.IPVS.SyncPeriod, c.IPVS.MinSyncPeriod} }},
		{[]string{"--mode", "nftables"}, func(c *Config) SyncConfig { return SyncConfig{c.NFTables.SyncPeriod, c.NFTables.MinSyncPeriod} }},
		{nil, func(c *Config) SyncConfig { return SyncConfig{c.IPTables.SyncPeriod, c.IPTables.MinSyncPeriod} }},
		// The mode comes from the file here, the periods from flags.
		{[]string{"--config", "testdata/ipv6.yaml"}, func(c *Config) SyncConfig { return c.Lbkit.EBPF.SyncConfig }},
	} {
		args := append(slices.Clone(tc.args), "--sync-period", "7s", "--min-sync-period", "0s")
		_, c := mustResolve(t, args...)
		if got := tc.section(c); got.SyncPeriod.Duration != 7*time.Second || got.MinSyncPeriod.Duration != 0 {
			t.Errorf("%q: section has %s/%s, want 7s/0s", args, got.SyncPeriod, got.MinSyncPeriod)
		}
		if s, m := c.SyncPeriods(); s != 7*time.Second || m != 0 {
			t.Errorf("%q: SyncPeriods() = %s, %s; want 7s, 0s", args, s, m)
		}
		// Other sections keep their defaults.
		if c.EffectiveMode() != ModeIPTables && c.IPTables.SyncPeriod.Duration != 30*time.Second {
			t.Errorf("%q: iptables.syncPeriod changed to %s", args, c.IPTables.SyncPeriod)
		}
	}
}

func TestFlagsListRepeatAndEmpty(t *testing.T) {
	_, c := mustResolve(t, "--config", "testdata/full.yaml", "--nodeport-addresses", "")
	if c.NodePortAddresses == nil || len(c.NodePortAddresses) != 0 {
		t.Errorf("--nodeport-addresses '' gave %q, want an empty list (all addresses)", c.NodePortAddresses)
	}
	_, c = mustResolve(t, "--nodeport-addresses", "198.18.0.0/24", "--nodeport-addresses", "198.18.1.0/24,198.18.2.0/24")
	if got := strings.Join(c.NodePortAddresses, ","); got != "198.18.0.0/24,198.18.1.0/24,198.18.2.0/24" {
		t.Errorf("repeated flag gave %q", got)
	}
}
