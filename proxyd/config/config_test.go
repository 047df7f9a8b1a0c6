package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const header = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n"

// TestDefaultIsKubeProxys pins the defaults taken from kube-proxy's
// v1alpha1 SetDefaults_KubeProxyConfiguration.
func TestDefaultIsKubeProxys(t *testing.T) {
	d := Default()
	checks := []struct {
		field     string
		got, want any
	}{
		{"mode", d.EffectiveMode(), "iptables"},
		{"bindAddress", d.BindAddress, "0.0.0.0"},
		{"metricsBindAddress", d.MetricsBindAddress, "127.0.0.1:10249"},
		{"healthzBindAddress", d.HealthzBindAddress, "0.0.0.0:10256"},
		{"iptables.masqueradeBit", d.IPTables.MasqueradeBit, int32(14)},
		{"iptables.syncPeriod", d.IPTables.SyncPeriod.Duration, 30 * time.Second},
		{"iptables.minSyncPeriod", d.IPTables.MinSyncPeriod.Duration, time.Second},
		{"iptables.localhostNodePorts", d.IPTables.LocalhostNodePorts, true},
		{"nftables.masqueradeBit", d.NFTables.MasqueradeBit, int32(14)},
		{"nftables.syncPeriod", d.NFTables.SyncPeriod.Duration, 30 * time.Second},
		{"nftables.minSyncPeriod", d.NFTables.MinSyncPeriod.Duration, time.Second},
		{"ipvs.syncPeriod", d.IPVS.SyncPeriod.Duration, 30 * time.Second},
		{"ipvs.minSyncPeriod", d.IPVS.MinSyncPeriod.Duration, time.Duration(0)},
		{"ipvs.scheduler", d.IPVS.Scheduler, "rr"},
		{"conntrack.maxPerCore", d.Conntrack.MaxPerCore, int32(32768)},
		{"conntrack.min", d.Conntrack.Min, int32(131072)},
		{"conntrack.tcpEstablishedTimeout", d.Conntrack.TCPEstablishedTimeout.Duration, 24 * time.Hour},
		{"conntrack.tcpCloseWaitTimeout", d.Conntrack.TCPCloseWaitTimeout.Duration, time.Hour},
		{"lbkit.logFormat", d.Lbkit.LogFormat, "json"},
		{"lbkit.userspace.udpIdleTimeout", d.Lbkit.Userspace.UDPIdleTimeout.Duration, 30 * time.Second},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("default %s = %v, want %v", ch.field, ch.got, ch.want)
		}
	}
	if err := d.Validate(); err != nil {
		t.Errorf("Default() does not validate: %v", err)
	}
}

func TestSyncPeriodsPerMode(t *testing.T) {
	c := Default()
	c.IPTables.SyncPeriod, c.IPTables.MinSyncPeriod = D(1*time.Minute), D(1*time.Second)
	c.NFTables.SyncPeriod, c.NFTables.MinSyncPeriod = D(2*time.Minute), D(2*time.Second)
	c.IPVS.SyncPeriod, c.IPVS.MinSyncPeriod = D(3*time.Minute), D(3*time.Second)
	c.Lbkit.Userspace.SyncPeriod, c.Lbkit.Userspace.MinSyncPeriod = D(4*time.Minute), D(4*time.Second)
	c.Lbkit.EBPF.SyncPeriod, c.Lbkit.EBPF.MinSyncPeriod = D(5*time.Minute), D(5*time.Second)
	for mode, n := range map[string]time.Duration{"": 1, "iptables": 1, "nftables": 2, "ipvs": 3, "userspace": 4, "ebpf": 5} {
		c.Mode = mode
		s, m := c.SyncPeriods()
		if s != n*time.Minute || m != n*time.Second {
			t.Errorf("mode %q: SyncPeriods() = %s, %s; want %s, %s", mode, s, m, n*time.Minute, n*time.Second)
		}
	}
}

func TestParseEmptyDocuments(t *testing.T) {
	want := marshal(t, Default())
	for _, in := range []string{"", "# only a comment\n", "~\n", "---\n", "null\n"} {
		c, warnings, err := Parse([]byte(in), "x.yaml")
		if err != nil || len(warnings) != 0 {
			t.Errorf("%q: %v %q", in, err, warnings)
			continue
		}
		if got := marshal(t, c); got != want {
			t.Errorf("%q did not give the defaults:\n%s", in, got)
		}
	}
	// A trailing document separator is not a second document.
	if _, _, err := Parse([]byte(header+"mode: ipvs\n---\n"), "x.yaml"); err != nil {
		t.Errorf("trailing ---: %v", err)
	}
}

func TestParseNullAndEmptySectionsKeepDefaults(t *testing.T) {
	c, _, err := Parse([]byte(header+"iptables:\nipvs: {}\nconntrack: ~\nlbkit:\n  userspace: null\n"), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := marshal(t, c), marshal(t, Default()); got != want {
		t.Errorf("null/empty sections changed the config:\n%s", got)
	}
}

func TestParseZeroValuesMeanDefault(t *testing.T) {
	// What kubeadm writes for "unset"; kube-proxy reads all of it as defaults.
	in := header + `bindAddress: ""
healthzBindAddress: ""
metricsBindAddress: ""
iptables: {syncPeriod: 0s, minSyncPeriod: 0s, masqueradeBit: null, localhostNodePorts: null}
nftables: {syncPeriod: 0s, minSyncPeriod: 0s}
ipvs: {syncPeriod: 0s, scheduler: ""}
conntrack: {maxPerCore: null, min: null, tcpEstablishedTimeout: null, tcpCloseWaitTimeout: null}
`
	c, _, err := Parse([]byte(in), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := marshal(t, c), marshal(t, Default()); got != want {
		t.Errorf("zero values did not default:\n%s", got)
	}
	// But an explicit 0 where kube-proxy keeps it (a pointer it got a value
	// for) stays 0.
	c, _, err = Parse([]byte(header+"conntrack: {maxPerCore: 0, tcpEstablishedTimeout: 0s}\nipvs: {minSyncPeriod: 0s}\n"), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Conntrack.MaxPerCore != 0 || c.Conntrack.TCPEstablishedTimeout.Duration != 0 || c.IPVS.MinSyncPeriod.Duration != 0 {
		t.Errorf("explicit zeros not kept: %+v %+v", c.Conntrack, c.IPVS)
	}
}

func TestParseIgnoredFieldsAreNotExamined(t *testing.T) {
	in := header + "portRange:\n  anything: [1, {x: y}]\nfeatureGates: {Foo: true}\nconntrack:\n  tcpBeLiberal: whatever\n"
	_, warnings, err := Parse([]byte(in), "ops.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`ops.yaml:3: field "portRange" accepted but ignored by lbkit`,
		`ops.yaml:5: field "featureGates" accepted but ignored by lbkit`,
		`ops.yaml:7: field "conntrack.tcpBeLiberal" accepted but ignored by lbkit`,
	}
	if !slices.Equal(warnings, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(warnings, "\n"), strings.Join(want, "\n"))
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{header + "IPTables:\n  syncPeriod: 1s\n", `x.yaml:3: unknown field "IPTables" (field names are case-sensitive)`},
		{header + "base: &b {syncPeriod: 1s}\n", `x.yaml:3: unknown field "base"`},
		{header + "iptables:\n  <<: {syncPeriod: 1s}\n", `x.yaml:4: YAML merge keys (<<) are not supported`},
		{header + "? [a]\n: b\n", `x.yaml:3: field names must be strings, got a list`},
		{header + "mode: *nope\n", `x.yaml: invalid YAML: unknown anchor 'nope' referenced`},
		{header + "iptables:\n  syncPeriod: {a: 1}\n", `x.yaml:4: iptables.syncPeriod: expected a duration such as "30s", got a mapping`},
		{header + "mode: 3\n", `x.yaml:3: mode: expected a string, got integer 3`},
		{header + "iptables:\n  masqueradeBit: 1.5\n", `x.yaml:4: iptables.masqueradeBit: expected an integer, got number 1.5`},
		{"apiVersion: [v1]\nkind: KubeProxyConfiguration\n", `x.yaml:1: apiVersion: got a list, want "kubeproxy.config.k8s.io/v1alpha1"`},
		{"42\n", `x.yaml:1: expected a KubeProxyConfiguration mapping, got integer 42`},
	} {
		_, _, err := Parse([]byte(tc.in), "x.yaml")
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q:\n got %v\nwant %s", tc.in, err, tc.want)
		}
	}
}

func TestParseErrorIsTyped(t *testing.T) {
	_, _, err := Parse([]byte(header+"iptables:\n  masqueradeBits: 1\n"), "k.yaml")
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("%v is not a *ParseError", err)
	}
	if pe.File != "k.yaml" || pe.Line != 4 || pe.Field != "iptables.masqueradeBits" {
		t.Errorf("ParseError = %+v", pe)
	}
}

func TestParseAliasesResolve(t *testing.T) {
	in := header + "iptables: &sync\n  syncPeriod: 10s\n  minSyncPeriod: 2s\nnftables: *sync\n"
	c, _, err := Parse([]byte(in), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.NFTables.SyncPeriod.Duration != 10*time.Second || c.NFTables.MinSyncPeriod.Duration != 2*time.Second {
		t.Errorf("alias not followed: %+v", c.NFTables)
	}
}

func TestValidateWithoutSource(t *testing.T) {
	c := Default()
	c.IPTables.MasqueradeBit = 32
	c.Lbkit.Userspace.MinSyncPeriod = D(-time.Second)
	err := c.Validate()
	want := "iptables.masqueradeBit: invalid value 32: must be within 0-31\n" +
		"lbkit.userspace.minSyncPeriod: invalid value -1s: must not be negative"
	if err == nil || err.Error() != want {
		t.Fatalf("got\n%v\nwant\n%s", err, want)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "iptables.masqueradeBit" || fe.Value != "32" || fe.Source != "" {
		t.Errorf("first FieldError = %+v", fe)
	}
}

func TestValidateAcceptsKubeProxyForms(t *testing.T) {
	c := Default()
	c.ClusterCIDR = "10.244.0.0/16,fd00::/56"
	c.NodePortAddresses = []string{"primary"}
	c.MetricsBindAddress = ""       // disabled
	c.HealthzBindAddress = "[::]:0" // any free port
	c.BindAddress = "2001:2::1"     // IPv6
	c.IPVS.ExcludeCIDRs = []string{"198.18.0.0/15", "2001:2::/48"}
	for _, s := range IPVSSchedulers() {
		c.IPVS.Scheduler = s
		if err := c.Validate(); err != nil {
			t.Errorf("scheduler %s: %v", s, err)
		}
	}
	for _, m := range Modes() {
		c.Mode = m
		if err := c.Validate(); err != nil {
			t.Errorf("mode %s: %v", m, err)
		}
	}
}

func TestDurationYAML(t *testing.T) {
	var v struct {
		D Duration `yaml:"d"`
	}
	if err := yaml.Unmarshal([]byte("d: 1h30m\n"), &v); err != nil || v.D.Duration != 90*time.Minute {
		t.Fatalf("unmarshal: %v %v", v.D, err)
	}
	out, err := yaml.Marshal(v)
	if err != nil || string(out) != "d: 1h30m0s\n" {
		t.Errorf("marshal: %q %v", out, err)
	}
	err = yaml.Unmarshal([]byte("d: 90\n"), &v)
	if err == nil || !strings.Contains(err.Error(), `invalid duration "90": time: missing unit in duration`) {
		t.Errorf("bad duration: %v", err)
	}
}

func TestMarshalFillsTypeMeta(t *testing.T) {
	out, err := (&Config{}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), header) {
		t.Errorf("Marshal of a zero Config starts\n%s", out[:80])
	}
}
